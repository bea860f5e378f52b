"""Salesforce constants Revflow relies on: API version, objects, Revflow's custom fields, limits."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCOUNT",
    "ACCOUNT_FIELDS",
    "API_VERSION",
    "BILLING_FIELD_MAP",
    "CONCURRENT_LIMIT_RETRY_AFTER",
    "DAILY_LIMIT_RETRY_AFTER",
    "DAILY_LIMIT_WINDOW_SECONDS",
    "DATE_PROPERTIES",
    "DEFAULT_SETTLE_SECONDS",
    "DEFAULT_STAGE",
    "EXTERNAL_ID_FIELD",
    "LOST_STAGE",
    "NUMBER_PROPERTIES",
    "OPPORTUNITY",
    "OPPORTUNITY_FIELDS",
    "WON_STAGE",
]

#: REST API version the adapter speaks (simple-salesforce's default; upsert answers carry ``created``
#: from 46.0 on).
API_VERSION: Final = "59.0"

ACCOUNT: Final = "Account"
OPPORTUNITY: Final = "Opportunity"

#: The custom External ID + Unique text field on Account and Opportunity that holds Revflow's id
#: (customer id on Account, subscription id on Opportunity). Every upsert goes through it.
EXTERNAL_ID_FIELD: Final = "Revflow_Id__c"

#: Revflow's billing property (``services.ports.BILLING_FIELDS``) → Salesforce field API name, on both
#: objects. ``currency`` is the record currency of a multi-currency org (``CurrencyIsoCode``), which is also
#: the currency of the ``Revflow_MRR__c`` / ``Revflow_Overdue_Balance__c`` Currency fields.
BILLING_FIELD_MAP: Final[dict[str, str]] = {
    "revflow_id": EXTERNAL_ID_FIELD,
    "plan": "Revflow_Plan__c",
    "mrr": "Revflow_MRR__c",
    "currency": "CurrencyIsoCode",
    "status": "Revflow_Status__c",
    "next_renewal": "Revflow_Next_Renewal__c",
    "payment_status": "Revflow_Payment_Status__c",
    "overdue_balance": "Revflow_Overdue_Balance__c",
    "last_invoice_number": "Revflow_Last_Invoice_Number__c",
    "last_invoice_total": "Revflow_Last_Invoice_Total__c",
    "last_invoice_status": "Revflow_Last_Invoice_Status__c",
}
#: Properties sent as Salesforce Currency fields (decimal strings, major units).
NUMBER_PROPERTIES: Final = frozenset({"mrr", "overdue_balance", "last_invoice_total"})
#: Properties sent as Salesforce Date fields (ISO ``YYYY-MM-DD``).
DATE_PROPERTIES: Final = frozenset({"next_renewal"})

#: The default sales process's won and lost stages, and the stage a new opportunity gets when Revflow names
#: none.
WON_STAGE: Final = "Closed Won"
LOST_STAGE: Final = "Closed Lost"
DEFAULT_STAGE: Final = "Prospecting"

#: Fields read back (get and polling). ``CurrencyIsoCode`` is dropped for single-currency orgs.
ACCOUNT_FIELDS: Final = ("Id", "Name", "Website", "LastModifiedDate", *BILLING_FIELD_MAP.values())
OPPORTUNITY_FIELDS: Final = (
    "Id",
    "Name",
    "AccountId",
    "StageName",
    "IsClosed",
    "IsWon",
    "Amount",
    "CloseDate",
    "LastModifiedDate",
    *BILLING_FIELD_MAP.values(),
)

#: DailyApiRequests is a rolling 24-hour allowance (``Sforce-Limit-Info: api-usage=used/max``).
DAILY_LIMIT_WINDOW_SECONDS: Final = 24 * 3600.0
#: Salesforce sends no Retry-After with REQUEST_LIMIT_EXCEEDED. The daily allowance frees up only as calls
#: older than 24 hours age out, so Revflow looks again after an hour; the per-org concurrent long-request
#: limit ("ConcurrentPerOrgLongTxn") clears as soon as running requests finish, so after a minute.
DAILY_LIMIT_RETRY_AFTER: Final = 3600.0
CONCURRENT_LIMIT_RETRY_AFTER: Final = 60.0

#: Polling returns a record only once its LastModifiedDate is this many seconds before the second in which
#: Salesforce answered: later writes can still be stamped with a second the cursor has reached (same-second
#: edits, transactions committing after their timestamp). Raise it for orgs with long-running automation.
DEFAULT_SETTLE_SECONDS: Final = 5.0

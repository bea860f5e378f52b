"""HubSpot constants Revflow relies on: property names, stages, association types, webhook headers, limits."""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_BASE",
    "CLOSED_STAGES",
    "COMPANY_PROPERTIES",
    "DEAL_PROPERTIES",
    "DEAL_TO_COMPANY_DEFAULT",
    "DEAL_TO_COMPANY_PRIMARY",
    "FIELD_PROPERTIES",
    "RATE_LIMIT_HEADERS",
    "SEARCH_MAX_LIMIT",
    "SIGNATURE_V3_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_TOLERANCE_SECONDS",
    "WON_STAGES",
]

API_BASE: Final = "https://api.hubapi.com"

#: Revflow billing field (``services.ports.BILLING_FIELDS``) → the HubSpot custom property that holds it, on
#: companies and deals alike. ``revflow_id`` is a unique-value property: HubSpot refuses a second object
#: with the same value (409), and objects can be read by it (``idProperty``), which makes creates idempotent.
FIELD_PROPERTIES: Final[dict[str, str]] = {
    "revflow_id": "revflow_id",
    "plan": "revflow_plan",
    "mrr": "revflow_mrr",
    "currency": "revflow_currency",
    "status": "revflow_status",
    "next_renewal": "revflow_next_renewal",
    "payment_status": "revflow_payment_status",
    "overdue_balance": "revflow_overdue_balance",
    "last_invoice_number": "revflow_last_invoice_number",
    "last_invoice_total": "revflow_last_invoice_total",
    "last_invoice_status": "revflow_last_invoice_status",
}

#: Standard properties the connector reads.
COMPANY_PROPERTIES: Final = ("name", "domain", "hs_lastmodifieddate")
DEAL_PROPERTIES: Final = (
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "deal_currency_code",
    "hs_is_closed_won",
    "hs_is_closed",
    "hs_lastmodifieddate",
)

#: Deal stages (internal ids) that count as closed-won; ``hs_is_closed_won`` covers custom pipelines.
WON_STAGES: Final = frozenset({"closedwon"})
#: The default pipeline's closed stages; ``hs_is_closed`` covers custom pipelines.
CLOSED_STAGES: Final = frozenset({"closedwon", "closedlost"})

#: HUBSPOT_DEFINED association types "deal to company": unlabeled (the default association Revflow creates),
#: and "Primary" (the company a deal is shown under).
DEAL_TO_COMPANY_DEFAULT: Final = 341
DEAL_TO_COMPANY_PRIMARY: Final = 5

#: https://developers.hubspot.com/docs/api/crm/search: at most 200 objects a page.
SEARCH_MAX_LIMIT: Final = 200

SIGNATURE_V3_HEADER: Final = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER: Final = "X-HubSpot-Request-Timestamp"
#: HubSpot: reject a request whose timestamp is older than 5 minutes.
WEBHOOK_TOLERANCE_SECONDS: Final = 300

RATE_LIMIT_HEADERS: Final = {
    "max": "X-HubSpot-RateLimit-Max",
    "remaining": "X-HubSpot-RateLimit-Remaining",
    "interval_ms": "X-HubSpot-RateLimit-Interval-Milliseconds",
    "daily": "X-HubSpot-RateLimit-Daily",
    "daily_remaining": "X-HubSpot-RateLimit-Daily-Remaining",
}

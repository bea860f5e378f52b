"""Salesforce mapping and error translation, without a server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
)

from revflow.adapters.crm.salesforce.client import json_body, translate
from revflow.adapters.crm.salesforce.mapping import (
    UnmappableValue,
    account_fields,
    company_from_record,
    creation_defaults,
    deal_from_record,
    format_soql_datetime,
    opportunity_fields,
    parse_datetime,
)
from revflow.services.ports import BILLING_FIELDS, CrmCompany, CrmDeal, RateLimited


class TestOutbound:
    def test_every_billing_field_has_a_salesforce_field(self) -> None:
        company = CrmCompany(
            external_id=None,
            name="Acme",
            domain="acme.example",
            properties={
                "revflow_id": "cus_1",
                "plan": "pro",
                "mrr": "99.90",
                "currency": "eur",
                "status": "active",
                "next_renewal": "2026-04-01T00:00:00+00:00",
                "payment_status": "paid",
                "overdue_balance": "0.00",
                "last_invoice_number": "ACME-0007",
                "last_invoice_total": "1234.50",
                "last_invoice_status": "paid",
            },
        )

        fields = account_fields(company)

        assert set(company.properties) == set(BILLING_FIELDS)
        assert fields == {
            "Name": "Acme",
            "Website": "acme.example",
            "Revflow_Id__c": "cus_1",
            "Revflow_Plan__c": "pro",
            "Revflow_MRR__c": Decimal("99.90"),
            "CurrencyIsoCode": "EUR",
            "Revflow_Status__c": "active",
            "Revflow_Next_Renewal__c": "2026-04-01",
            "Revflow_Payment_Status__c": "paid",
            "Revflow_Overdue_Balance__c": Decimal("0.00"),
            "Revflow_Last_Invoice_Number__c": "ACME-0007",
            "Revflow_Last_Invoice_Total__c": Decimal("1234.50"),
            "Revflow_Last_Invoice_Status__c": "paid",
        }

    def test_blank_values_clear_fields_and_single_currency_orgs_get_no_currency(self) -> None:
        company = CrmCompany(external_id="001", name="Acme", properties={"plan": "", "currency": "EUR"})

        assert account_fields(company, multi_currency=False) == {"Name": "Acme", "Revflow_Plan__c": None}

    @pytest.mark.parametrize(
        "properties", [{"seats": "3"}, {"mrr": "ninety"}, {"mrr": "Infinity"}, {"next_renewal": "soon"}]
    )
    def test_unmappable_values(self, properties: dict[str, str]) -> None:
        with pytest.raises(UnmappableValue):
            account_fields(CrmCompany(external_id=None, name="Acme", properties=properties))

    def test_opportunity_fields_prefer_the_deal_attributes(self) -> None:
        deal = CrmDeal(
            external_id=None,
            name="Acme Pro",
            company_external_id="0018d00000000G8AAI",
            won=True,
            plan_code="pro",
            amount=Decimal("1198.80"),
            currency="eur",
            properties={"plan": "basic", "currency": "USD", "revflow_id": "sub_1"},
        )

        assert opportunity_fields(deal) == {
            "Name": "Acme Pro",
            "AccountId": "0018d00000000G8AAI",
            "StageName": "Closed Won",
            "Revflow_Plan__c": "pro",
            "Amount": Decimal("1198.80"),
            "CurrencyIsoCode": "EUR",
            "Revflow_Id__c": "sub_1",
        }

    def test_json_body_writes_decimals_as_exact_numbers(self) -> None:
        body = json_body({"Name": "Ünï", "Amount": Decimal("12345678901234567.89"), "Website": None})

        assert body == '{"Name":"\\u00dcn\\u00ef","Amount":12345678901234567.89,"Website":null}'
        assert json.loads(body, parse_float=Decimal)["Amount"] == Decimal("12345678901234567.89")

    def test_creation_defaults(self) -> None:
        assert creation_defaults(date(2026, 2, 28)) == {"StageName": "Prospecting", "CloseDate": "2026-02-28"}


class TestInbound:
    def test_account_record(self) -> None:
        record = {
            "attributes": {"type": "Account", "url": "/services/data/v59.0/sobjects/Account/001"},
            "Id": "0018d00000000G8AAI",
            "Name": "Acme",
            "Website": "https://acme.example/",
            "LastModifiedDate": "2026-03-02T09:30:00.000+0000",
            "Revflow_Id__c": "cus_1",
            "Revflow_MRR__c": Decimal("99.9"),
            "Revflow_Next_Renewal__c": "2026-04-01",
            "Revflow_Plan__c": None,
        }

        company = company_from_record(record)

        assert company == CrmCompany(
            external_id="0018d00000000G8AAI",
            name="Acme",
            domain="acme.example",
            properties={"revflow_id": "cus_1", "mrr": "99.9", "next_renewal": "2026-04-01"},
            updated_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        )

    def test_opportunity_won_comes_from_is_won(self) -> None:
        record = {
            "Id": "0068d00000000G9AAI",
            "Name": "Acme Pro",
            "AccountId": "0018d00000000G8AAI",
            "StageName": "Signed",  # an org's own closed/won stage
            "IsWon": True,
            "Amount": Decimal("1198.8"),
            "CurrencyIsoCode": "EUR",
            "Revflow_Plan__c": "pro",
            "LastModifiedDate": "2026-03-02T09:30:00.000+0000",
        }

        deal = deal_from_record(record)

        assert (deal.won, deal.stage, deal.plan_code, deal.amount) == (
            True,
            "Signed",
            "pro",
            Decimal("1198.8"),
        )
        assert deal.properties == {"plan": "pro", "currency": "EUR"}

    @pytest.mark.parametrize(
        ("record", "won_closed"),
        [
            ({"StageName": "Lost to rival", "IsClosed": True, "IsWon": False}, (False, True)),
            ({"StageName": "Closed Lost"}, (False, True)),
            ({"StageName": "Closed Won"}, (True, True)),
            ({"StageName": "Negotiation/Review", "IsClosed": False, "IsWon": False}, (False, False)),
        ],
    )
    def test_opportunity_closed_comes_from_is_closed(
        self, record: dict[str, object], won_closed: tuple[bool, bool]
    ) -> None:
        deal = deal_from_record({"Id": "0068d00000000G9AAI", **record})

        assert (deal.won, deal.closed) == won_closed

    def test_datetimes(self) -> None:
        paris = timezone(timedelta(hours=1))

        assert parse_datetime("2026-03-02T09:30:00.000+0000") == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
        assert parse_datetime("2026-03-02T10:30:00Z") == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
        assert (
            format_soql_datetime(datetime(2026, 3, 2, 10, 30, 5, 999, tzinfo=paris)) == "2026-03-02T09:30:05Z"
        )


class TestErrors:
    def test_concurrent_request_limit_retries_sooner(self) -> None:
        exc = SalesforceRefusedRequest(
            "u",
            403,
            "query",
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded."}],  # type: ignore[arg-type]
        )

        err = translate(exc, "query")

        assert isinstance(err, RateLimited) and err.retry_after == 60.0

    @pytest.mark.parametrize(
        ("exc", "code", "retryable"),
        [
            (SalesforceGeneralError("u", 429, "", b"Too Many Requests"), "rate_limited", True),
            (SalesforceGeneralError("u", 502, "", b"<html>"), "SERVER_ERROR", True),
            (
                SalesforceMalformedRequest("u", 400, "", [{"errorCode": "INVALID_FIELD", "message": "x"}]),
                "INVALID_FIELD",
                False,
            ),  # type: ignore[arg-type]
            (
                SalesforceRefusedRequest(
                    "u", 403, "", [{"errorCode": "INSUFFICIENT_ACCESS", "message": "x"}]
                ),
                "INSUFFICIENT_ACCESS",
                False,
            ),  # type: ignore[arg-type]
            (SalesforceMoreThanOneRecord("u", 300, "", ["/a", "/b"]), "MULTIPLE_CHOICES", False),  # type: ignore[arg-type]
            (SalesforceAuthenticationFailed("INVALID_LOGIN", "bad"), "INVALID_LOGIN", False),
            (requests.ConnectionError("refused"), "connection_error", True),
            (requests.ReadTimeout("slow"), "timeout", True),
            (ValueError("Expecting value"), "malformed_response", True),
        ],
    )
    def test_translation(self, exc: Exception, code: str, retryable: bool) -> None:
        err = translate(exc, "call")

        assert (err.code, err.retryable) == (code, retryable)

"""Revflow's CRM dataclasses ↔ HubSpot properties, and webhook events → CrmChange, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from revflow.adapters.crm.hubspot.consts import FIELD_PROPERTIES
from revflow.adapters.crm.hubspot.mapping import (
    company_from_hubspot,
    company_to_hubspot,
    deal_from_hubspot,
    deal_to_hubspot,
    parse_timestamp,
    property_definitions,
    revflow_property_name,
)
from revflow.adapters.crm.hubspot.webhooks import normalise_uri, parse_webhook
from revflow.services.ports import BILLING_FIELDS, CrmCompany, CrmDeal, WebhookSignatureError
from tests.fakes.hubspot import sign_v3

URL = "https://revflow.example.com/v1/webhooks/hubspot"


class TestPropertyDefinitions:
    def test_every_billing_field_has_one_property_and_only_revflow_id_is_unique(self) -> None:
        for object_type in ("companies", "deals"):
            defs = property_definitions(object_type)

            assert [d["name"] for d in defs] == [FIELD_PROPERTIES[f] for f in BILLING_FIELDS]
            assert [d["name"] for d in defs if d["hasUniqueValue"]] == ["revflow_id"]
            assert {d["groupName"] for d in defs} == {
                "companyinformation" if object_type == "companies" else "dealinformation"
            }

    def test_amounts_are_numbers_and_the_renewal_a_date(self) -> None:
        types = {d["name"]: (d["type"], d["fieldType"]) for d in property_definitions("deals")}

        assert types["revflow_mrr"] == ("number", "number")
        assert types["revflow_overdue_balance"] == ("number", "number")
        assert types["revflow_next_renewal"] == ("date", "date")
        assert types["revflow_plan"] == ("string", "text")


class TestOutbound:
    def test_company_properties(self) -> None:
        company = CrmCompany(None, "Acme", "acme.io", {"revflow_id": "cus_1", "mrr": "99.00", "plan": "pro"})

        assert company_to_hubspot(company) == {
            "name": "Acme",
            "domain": "acme.io",
            "revflow_id": "cus_1",
            "revflow_mrr": "99.00",
            "revflow_plan": "pro",
        }

    def test_deal_properties_plan_code_wins_and_amount_keeps_its_digits(self) -> None:
        deal = CrmDeal(
            None,
            "Acme Pro",
            stage="closedwon",
            plan_code="pro",
            amount=Decimal("1188.50"),
            currency="eur",
            properties={"plan": "basic", "status": "active"},
        )

        assert deal_to_hubspot(deal) == {
            "dealname": "Acme Pro",
            "dealstage": "closedwon",
            "revflow_plan": "pro",
            "revflow_status": "active",
            "amount": "1188.50",
            "deal_currency_code": "EUR",
        }

    def test_a_field_that_is_not_a_billing_field_is_refused(self) -> None:
        with pytest.raises(ValueError, match="favourite_colour"):
            company_to_hubspot(CrmCompany(None, "Acme", properties={"favourite_colour": "blue"}))


class TestInbound:
    def test_company_keeps_only_set_billing_fields(self) -> None:
        props = {
            "name": "Acme",
            "domain": None,
            "revflow_plan": "pro",
            "revflow_mrr": "",
            "industry": "x",
            "hs_lastmodifieddate": "2026-01-31T23:59:59.123Z",
        }

        company = company_from_hubspot("42", props)

        assert company == CrmCompany(
            "42",
            "Acme",
            None,
            {"plan": "pro"},
            datetime(2026, 1, 31, 23, 59, 59, 123000, tzinfo=UTC),
        )

    @pytest.mark.parametrize(
        ("props", "won"),
        [
            ({"dealstage": "closedwon"}, True),
            ({"dealstage": "contractsent"}, False),
            ({"dealstage": "custom_won_stage", "hs_is_closed_won": "true"}, True),
            ({}, False),
        ],
    )
    def test_deal_won(self, props: dict[str, str], won: bool) -> None:
        assert deal_from_hubspot("7", props).won is won

    @pytest.mark.parametrize(
        ("props", "won_closed"),
        [
            ({"dealstage": "closedwon"}, (True, True)),
            ({"dealstage": "closedlost"}, (False, True)),
            ({"dealstage": "custom_lost_stage", "hs_is_closed": "true"}, (False, True)),
            ({"dealstage": "contractsent", "hs_is_closed": "false"}, (False, False)),
        ],
    )
    def test_deal_closed_lost_is_closed_and_not_won(
        self, props: dict[str, str], won_closed: tuple[bool, bool]
    ) -> None:
        deal = deal_from_hubspot("7", props)

        assert (deal.won, deal.closed) == won_closed

    def test_deal_fields(self) -> None:
        deal = deal_from_hubspot(
            "7",
            {"dealname": "D", "amount": "10.5", "deal_currency_code": "USD", "revflow_plan": "pro"},
            company_id="3",
        )

        assert (deal.plan_code, deal.amount, deal.currency, deal.company_external_id) == (
            "pro",
            Decimal("10.5"),
            "USD",
            "3",
        )
        assert deal.properties == {"plan": "pro"}

    def test_a_non_numeric_amount_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="non-numeric amount"):
            deal_from_hubspot("7", {"amount": "ten"})

    def test_timestamps_in_both_formats(self) -> None:
        assert parse_timestamp("1700000000123") == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
        assert parse_timestamp("2023-11-14T22:13:20.123Z") == parse_timestamp("1700000000123")
        assert parse_timestamp(None) is None

    def test_property_names_in_revflows_terms(self) -> None:
        assert revflow_property_name("deals", "revflow_plan") == "plan"
        assert revflow_property_name("deals", "dealstage") == "stage"
        assert revflow_property_name("companies", "name") == "name"
        assert revflow_property_name("deals", "hs_priority") == "hs_priority"


class TestWebhookParsing:
    def _event(self, **kw: object) -> dict[str, object]:
        return {
            "eventId": 100,
            "subscriptionId": 5,
            "portalId": 62515,
            "appId": 1,
            "occurredAt": 1_700_000_000_000,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "propertyName": "revflow_plan",
            "propertyValue": "pro",
            "changeSource": "CRM_UI",
            **kw,
        }

    def _parse(self, events: list[dict[str, object]], *, now: float = 1_700_000_000.0) -> list[object]:
        body = json.dumps(events).encode()
        headers = sign_v3(body, "secret", url=URL, timestamp_ms=int(now * 1000))
        return list(parse_webhook(body, headers, method="POST", url=URL, secret="secret", now=lambda: now))

    def test_maps_every_change_kind(self) -> None:
        events = [
            self._event(subscriptionType="deal.creation", propertyName=None, propertyValue=None),
            self._event(eventId=101),
            self._event(eventId=102, subscriptionType="company.deletion", propertyName=None),
        ]

        changes = self._parse(events)

        assert [(c.object_type, c.change, c.property_name) for c in changes] == [  # type: ignore[attr-defined]
            ("deal", "created", None),
            ("deal", "updated", "plan"),
            ("company", "deleted", None),
        ]
        assert changes[1].event_id == "62515-123-101-1700000000000"  # type: ignore[attr-defined]
        assert changes[1].occurred_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)  # type: ignore[attr-defined]

    def test_the_timestamp_must_be_within_five_minutes(self) -> None:
        body = json.dumps([self._event()]).encode()
        headers = sign_v3(body, "secret", url=URL, timestamp_ms=1_700_000_000_000)

        ok = parse_webhook(
            body, headers, method="POST", url=URL, secret="secret", now=lambda: 1_700_000_299.0
        )
        with pytest.raises(WebhookSignatureError, match="300 seconds"):
            parse_webhook(body, headers, method="POST", url=URL, secret="secret", now=lambda: 1_700_000_301.0)

        assert len(ok) == 1

    def test_uri_characters_are_decoded_as_hubspot_signs_them(self) -> None:
        assert normalise_uri("https://h/x?a=b%3Ac%2Cd%40e") == "https://h/x?a=b:c,d@e"
        assert normalise_uri("https://h/x?q=%20") == "https://h/x?q=%20"  # others stay encoded

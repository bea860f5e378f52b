"""The demo organization: a year billed on a test clock and collected by the worker's own jobs."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.jobs.demo import load_demo
from revflow.jobs.worker import reconcile_payments
from revflow.storage.models import Organization
from revflow.storage.usage_models import UsageEvent
from tests.conftest import Tenant


def _all(t: Tenant, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {"limit": 100, **params, **({"starting_after": after} if after else {})}
        body = t.get(path, params=query).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        after = body["data"][-1]["id"]


def _payments(t: Tenant, **where: str) -> list[dict[str, Any]]:
    """Payments matching ``where`` (``/v1/payments`` filters by invoice only)."""
    return [p for p in _all(t, "/v1/payments") if all(p[k] == v for k, v in where.items())]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TestDemo:
    def test_the_demo_year_is_collected_dunned_recovered_and_metered(
        self, container: Container, client: TestClient
    ) -> None:
        # The demo takes seconds to load: load it once per backend and check each story on it.
        org, secret, created = load_demo(container)
        demo = Tenant(org.id, secret, "", client)

        assert created
        self.check_a_year_of_invoices_is_collected_as_the_worker_collects_it(demo)
        self.check_open_invoices_are_the_ones_a_real_business_would_have_open(demo)
        self.check_ach_debits_settle_four_days_after_the_charge(demo)
        self.check_the_declining_card_goes_through_dunning_and_is_recovered(demo)
        self.check_the_net_30_customer_pays_by_bank_transfer(demo)
        self.check_usage_is_ingested_billed_and_visible_in_real_time(demo, container)
        self.check_loading_twice_adds_nothing_and_the_gateway_agrees(demo, container)

    def check_a_year_of_invoices_is_collected_as_the_worker_collects_it(self, demo: Tenant) -> None:
        invoices = _all(demo, "/v1/invoices")
        payments = _all(demo, "/v1/payments")
        subs = _all(demo, "/v1/subscriptions")

        assert Counter(i["status"] for i in invoices) == {"paid": 61, "open": 4, "draft": 1}
        assert Counter((p["status"], p["method"]) for p in payments) == {
            ("succeeded", "card"): 46,
            ("succeeded", "us_bank_account"): 13,
            ("processing", "us_bank_account"): 1,
            ("succeeded", "bank_transfer"): 2,
            ("failed", "card"): 3,
        }
        assert sorted(s["status"] for s in subs) == ["active"] * 5 + ["canceled"]
        assert {i["currency"] for i in invoices} == {"USD", "EUR", "JPY"}
        reasons = {i["billing_reason"] for i in invoices}
        assert {"manual", "subscription_create", "subscription_cycle", "subscription_update"} <= reasons

    def check_open_invoices_are_the_ones_a_real_business_would_have_open(self, demo: Tenant) -> None:
        customers = {c["id"]: c["name"] for c in _all(demo, "/v1/customers")}

        still_open = sorted(
            (customers[i["customer_id"]], i["collection_method"], i["total"])
            for i in _all(demo, "/v1/invoices", status="open")
        )

        assert len(customers) == 9
        assert still_open == [
            ("Berliner Software GmbH", "send_invoice", 130000),  # one-off, awaiting payment
            ("Globex Corporation", "send_invoice", 1000000),  # renewal, net 30, not yet due
            ("Northwind Traders", "charge_automatically", 42500),  # ACH debit still in flight
            ("Tokyo Apps KK", "send_invoice", 9800),
        ]

    def check_ach_debits_settle_four_days_after_the_charge(self, demo: Tenant) -> None:
        northwind = _all(demo, "/v1/customers", email="billing@northwind.example")[0]["id"]

        debits = _payments(demo, customer_id=northwind)

        settled = [p for p in debits if p["status"] == "succeeded"]
        assert len(settled) == 13 and {p["method"] for p in debits} == {"us_bank_account"}
        for p in settled:
            waited = _at(p["paid_at"]) - _at(p["created_at"])
            assert timedelta(days=4) <= waited <= timedelta(days=4, hours=2), p

    def check_the_declining_card_goes_through_dunning_and_is_recovered(self, demo: Tenant) -> None:
        munich = _all(demo, "/v1/customers", email="billing@münchner.example")[0]["id"]
        failed = _payments(demo, customer_id=munich, status="failed")
        invoice = failed[0]["invoice_id"]

        collection = demo.get(f"/v1/invoices/{invoice}/collection").json()
        emails = _all(demo, "/v1/emails", object_id=invoice)
        methods = demo.get(f"/v1/customers/{munich}/payment_methods").json()["data"]

        assert {p["invoice_id"] for p in failed} == {invoice}
        assert (collection["status"], collection["invoice_status"], collection["attempts"]) == (
            "recovered",
            "paid",
            3,
        )
        attempts = [(p["attempt_number"], p["status"], p["decline_code"]) for p in collection["payments"]]
        assert attempts == [
            (1, "failed", "generic_decline"),
            (2, "failed", "generic_decline"),
            (3, "failed", "generic_decline"),
            (4, "succeeded", None),
        ]
        assert _at(collection["ended_at"]) - _at(collection["started_at"]) < timedelta(days=4)
        assert sorted((e["template"], e["status"]) for e in emails) == [
            ("recovered", "stored"),
            ("retry", "stored"),
            ("retry", "stored"),
            ("retry", "stored"),
        ]
        assert [(m["brand"], m["is_default"]) for m in methods if m["status"] == "active"] == [
            ("mastercard", True)
        ]
        assert (
            demo.get("/v1/subscriptions", params={"customer_id": munich}).json()["data"][0]["status"]
            == "active"
        )

    def check_the_net_30_customer_pays_by_bank_transfer(self, demo: Tenant) -> None:
        globex = _all(demo, "/v1/customers", email="billing@globex.example")[0]["id"]

        invoices = sorted(_all(demo, "/v1/invoices", customer_id=globex), key=lambda i: i["created_at"])
        payments = _payments(demo, customer_id=globex)

        assert [(i["discount"], i["total"], i["status"]) for i in invoices] == [
            (200000, 800000, "paid"),
            (0, 1000000, "open"),
        ]
        assert [(p["method"], p["amount"], p["reference"]) for p in payments] == [
            ("bank_transfer", 800000, f"WIRE-{invoices[0]['number']}")
        ]

    def check_usage_is_ingested_billed_and_visible_in_real_time(
        self, demo: Tenant, container: Container
    ) -> None:
        lumen = _all(demo, "/v1/customers", email="billing@lumen.example")[0]["id"]
        invoices = _all(demo, "/v1/invoices", customer_id=lumen)

        usage_lines = [
            line
            for i in invoices
            for line in i["lines"]
            if line.get("metadata", {}).get("metric_code") == "api_calls"
        ]
        live = demo.get(f"/v1/customers/{lumen}/usage").json()
        period = live["subscriptions"][0]
        with container.sessions() as session:
            events = session.scalar(select(func.count()).select_from(UsageEvent))
            distinct = session.scalar(select(func.count(func.distinct(UsageEvent.transaction_id))))
            so_far = session.scalars(
                select(UsageEvent.properties).where(
                    UsageEvent.timestamp >= _at(period["period_start"]),
                    UsageEvent.timestamp < _at(live["as_of"]),
                )
            ).all()

        assert Counter(i["status"] for i in invoices) == {"paid": 12}
        assert len(usage_lines) == 11 and all(line["amount"] > 0 for line in usage_lines)
        assert events == distinct and events > 330  # one a day; the resent ones were deduplicated
        api_line = next(line for line in period["lines"] if line["metric_code"] == "api_calls")
        assert Decimal(api_line["units"]) == sum(int(p["calls"]) for p in so_far)
        assert Decimal(api_line["projected_units"]) > Decimal(api_line["units"]) > 0

    def check_loading_twice_adds_nothing_and_the_gateway_agrees(
        self, demo: Tenant, container: Container
    ) -> None:
        before = len(_all(demo, "/v1/payments")), len(_all(demo, "/v1/invoices"))

        org, secret, created = load_demo(container)

        assert not created and org.id == demo.org_id and secret != demo.key
        assert (len(_all(demo, "/v1/payments")), len(_all(demo, "/v1/invoices"))) == before
        assert reconcile_payments(container, force=True) == 0
        with container.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Organization)) == 1

"""Late usage (ADR 0034): an event for a period already invoiced is accepted with a warning, listed as
late, and billed on the subscription's next invoice as a usage line of the earlier service period."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price
from tests.integration.usage_helpers import batch, metric


def _advance(t: Tenant, clock: str, to: str) -> None:
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text


def _setup(t: Tenant, container: Container) -> tuple[str, str, str]:
    """A customer on a clock from 2024-06-03 with a monthly subscription to 10 per call, in arrears."""
    metric(t, "calls")
    price = make_price(container, t.org_id, name="Usage", model="per_unit", unit="10", metric="calls")
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-03T00:00:00Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}).json()["id"]
    r = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    return clock, customer, r.json()["id"]


def _call(tx: str, customer: str, at: str) -> dict[str, Any]:
    return {"transaction_id": tx, "customer_id": customer, "metric_code": "calls", "timestamp": at}


def _invoices(t: Tenant, customer: str) -> list[dict[str, Any]]:
    data = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    return list(reversed(data))


def _usage(inv: dict[str, Any]) -> list[tuple[Decimal, int, str, str]]:
    return [
        (Decimal(li["quantity"]), li["amount"], li["period_start"][:10], li["period_end"][:10])
        for li in inv["lines"]
        if li["description"].startswith("Usage")
    ]


def _late(t: Tenant) -> list[dict[str, Any]]:
    r = t.get("/v1/usage_events", params={"status": "late"})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


class TestLateUsage:
    def test_a_late_event_is_flagged_listed_and_billed_on_the_next_invoice(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _sub = _setup(tenant, container)
        batch(
            tenant,
            [_call("a1", customer, "2024-06-10T00:00:00Z"), _call("a2", customer, "2024-06-11T00:00:00Z")],
        )
        _advance(tenant, clock, "2024-07-04T00:00:00Z")
        june = _invoices(tenant, customer)[-1]

        out = batch(
            tenant,
            [
                _call("late", customer, "2024-06-20T00:00:00Z"),
                _call("now", customer, "2024-07-04T00:00:00Z"),
                _call("late", customer, "2024-06-20T00:00:00Z"),
            ],
        )
        listed = _late(tenant)
        _advance(tenant, clock, "2024-08-04T00:00:00Z")
        invoices = _invoices(tenant, customer)
        settled = _late(tenant)
        _advance(tenant, clock, "2024-09-04T00:00:00Z")
        later = _invoices(tenant, customer)

        assert _usage(june) == [(Decimal(2), 20, "2024-06-03", "2024-07-03")]
        assert [(d["status"], d.get("warning")) for d in out["data"]] == [
            ("accepted", "period_invoiced"),
            ("accepted", None),
            ("duplicate", None),
        ]
        assert [
            (e["transaction_id"], e["late"]["invoice_id"], e["late"]["settled_invoice_id"]) for e in listed
        ] == [("late", june["id"], None)]
        august = invoices[-1]
        assert august["id"] != june["id"]
        assert sorted(_usage(august)) == [
            (Decimal(1), 10, "2024-07-03", "2024-08-03"),  # July
            (Decimal(3), 10, "2024-06-03", "2024-07-03"),  # June re-measured: 3 calls owe 30, 20 billed
        ]
        assert [(e["transaction_id"], e["late"]["settled_invoice_id"]) for e in settled] == [
            ("late", august["id"])
        ]
        assert all(_usage(inv) == [] for inv in later[len(invoices) :])  # June is not billed again

    def test_a_late_event_voided_before_the_next_invoice_is_not_billed(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _sub = _setup(tenant, container)
        batch(tenant, [_call("a1", customer, "2024-06-10T00:00:00Z")])
        _advance(tenant, clock, "2024-07-04T00:00:00Z")
        out = batch(tenant, [_call("late", customer, "2024-06-20T00:00:00Z")])

        r = tenant.post(f"/v1/usage_events/{out['data'][0]['id']}/void")
        _advance(tenant, clock, "2024-08-04T00:00:00Z")
        invoices = _invoices(tenant, customer)
        listed = _late(tenant)

        assert r.status_code == 200, r.text
        assert [_usage(inv) for inv in invoices if _usage(inv)] == [
            [(Decimal(1), 10, "2024-06-03", "2024-07-03")]
        ]
        assert [
            (e["status"], e["late"]["settled_invoice_id"] is None, e["late"]["settled_at"] is not None)
            for e in listed
        ] == [("voided", True, True)]

    def test_a_single_late_event_answers_the_warning(self, tenant: Tenant, container: Container) -> None:
        clock, customer, _sub = _setup(tenant, container)
        _advance(tenant, clock, "2024-07-04T00:00:00Z")

        r = tenant.post("/v1/usage_events", _call("late", customer, "2024-06-20T00:00:00Z"))

        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["warning"]) == ("accepted", "period_invoiced")

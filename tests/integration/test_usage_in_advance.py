"""Usage billed in advance (``billing_timing: "in_advance"`` on a usage price, ADR 0034): each ingestion
request's new usage is invoiced at once; the period-end invoice bills only what was not billed yet."""

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


def _setup(t: Tenant, container: Container, **customer: Any) -> tuple[str, str, str]:
    metric(t, "calls")
    price = make_price(
        container, t.org_id, name="Usage", model="per_unit", unit="10", metric="calls", timing="in_advance"
    )
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-03T00:00:00Z"}).json()["id"]
    cus = t.post(
        "/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock, **customer}
    ).json()["id"]
    r = t.post("/v1/subscriptions", {"customer_id": cus, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    return clock, cus, r.json()["id"]


def _calls(tag: str, n: int, at: str, **who: str) -> list[dict[str, Any]]:
    return [{"transaction_id": f"{tag}{i}", "metric_code": "calls", "timestamp": at, **who} for i in range(n)]


def _usage_invoices(t: Tenant, customer: str) -> list[tuple[str, str, list[tuple[Decimal, int]]]]:
    """(billing_reason, status, usage lines (units, amount)) of each invoice with usage, oldest first."""
    data = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    out = []
    for inv in reversed(data):
        lines = [
            (Decimal(li["quantity"]), li["amount"])
            for li in inv["lines"]
            if li["description"].startswith("Usage")
        ]
        if lines:
            out.append((inv["billing_reason"], inv["status"], lines))
    return out


class TestUsageInAdvance:
    def test_each_request_is_invoiced_at_once_and_the_period_end_bills_the_rest(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _sub = _setup(tenant, container)

        first = batch(tenant, _calls("a", 3, "2024-06-03T00:10:00Z", customer_id=customer))
        again = batch(tenant, _calls("a", 3, "2024-06-03T00:10:00Z", customer_id=customer))
        batch(tenant, _calls("b", 2, "2024-06-03T00:30:00Z", customer_id=customer))
        after_requests = _usage_invoices(tenant, customer)
        _advance(tenant, clock, "2024-07-04T00:00:00Z")
        after_period = _usage_invoices(tenant, customer)

        assert (first["accepted"], again["duplicate"]) == (3, 3)
        assert after_requests == [
            ("usage_in_advance", "open", [(Decimal(3), 30)]),
            ("usage_in_advance", "open", [(Decimal(5), 20)]),  # 5 calls owe 50; 30 were billed
        ]
        assert after_period == after_requests  # nothing left for the period end: 50 billed once

    def test_usage_not_billed_in_advance_is_billed_at_the_period_end(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _sub = _setup(tenant, container)
        batch(tenant, _calls("a", 1, "2024-06-03T00:00:00Z", customer_id=customer))
        # unknown at first: stored unmatched, then recovered once the customer carries the external id
        batch(tenant, _calls("x", 2, "2024-06-03T00:00:00Z", external_customer_id="acct-9"))
        r = tenant.patch(f"/v1/customers/{customer}", {"external_ids": {"crm": "acct-9"}})
        assert r.status_code == 200, r.text
        recovered = tenant.get("/v1/usage_events", params={"customer_id": customer}).json()["data"]
        voided = next(e["id"] for e in recovered if e["transaction_id"] == "x0")

        void = tenant.post(f"/v1/usage_events/{voided}/void")
        _advance(tenant, clock, "2024-07-04T00:00:00Z")

        assert void.status_code == 200, void.text
        assert _usage_invoices(tenant, customer) == [
            ("usage_in_advance", "open", [(Decimal(1), 10)]),
            ("subscription_cycle", "open", [(Decimal(2), 10)]),  # x1 only: the voided x0 is never billed
        ]

    def test_an_event_billed_in_advance_then_voided_is_credited_at_the_period_end(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _sub = _setup(tenant, container)
        out = batch(tenant, _calls("a", 2, "2024-06-03T00:00:00Z", customer_id=customer))

        void = tenant.post(f"/v1/usage_events/{out['data'][0]['id']}/void")
        _advance(tenant, clock, "2024-07-04T00:00:00Z")
        closed = tenant.post(f"/v1/usage_events/{out['data'][1]['id']}/void")

        assert void.status_code == 200, void.text
        assert _usage_invoices(tenant, customer) == [
            ("usage_in_advance", "open", [(Decimal(2), 20)]),
            ("subscription_cycle", "paid", [(Decimal(1), -10)]),  # the period owes 1 call: 10 credited
        ]
        assert (closed.status_code, closed.json()["code"]) == (409, "period_invoiced")

    def test_the_catalog_accepts_in_advance_usage_prices(self, tenant: Tenant) -> None:
        metric(tenant, "calls")
        product = tenant.post("/v1/products", {"name": "API"}).json()["id"]

        r = tenant.post(
            "/v1/prices",
            {
                "product_id": product,
                "currency": "USD",
                "type": "recurring",
                "interval": "month",
                "model": "per_unit",
                "unit_amount": "10",
                "metric_code": "calls",
                "billing_timing": "in_advance",
            },
        )

        assert r.status_code == 201, r.text
        assert (r.json()["billing_timing"], r.json()["metric_code"]) == ("in_advance", "calls")

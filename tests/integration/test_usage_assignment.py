"""Events are assigned to one subscription (ADR 0033): two subscriptions of one customer that price the
same metric never bill the same events, and real-time usage and thresholds follow the same rule."""

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


def _subscribe(t: Tenant, customer: str, price: str) -> str:
    r = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _calls(tag: str, n: int, at: str, **who: str) -> list[dict[str, Any]]:
    return [{"transaction_id": f"{tag}{i}", "metric_code": "calls", "timestamp": at, **who} for i in range(n)]


def _usage_lines(t: Tenant, customer: str) -> dict[str, list[tuple[Decimal, int, str]]]:
    """Usage lines per subscription: (units, amount, service period start)."""
    invoices = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    out: dict[str, list[tuple[Decimal, int, str]]] = {}
    for inv in reversed(invoices):
        for li in inv["lines"]:
            if li["description"].startswith("Usage"):
                out.setdefault(li["subscription_id"], []).append(
                    (Decimal(li["quantity"]), li["amount"], li["period_start"])
                )
    return out


def _live(t: Tenant, customer: str) -> dict[str, tuple[Decimal, int]]:
    r = t.get(f"/v1/customers/{customer}/usage")
    assert r.status_code == 200, r.text
    return {
        s["subscription_id"]: (Decimal(s["lines"][0]["units"]), s["lines"][0]["amount"])
        for s in r.json()["subscriptions"]
    }


def _who(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["data"]["object"]["subscription_id"], e["data"]["object"]["observed"]) for e in events]


def _two_subscriptions(t: Tenant, container: Container) -> tuple[str, str, str, str]:
    """Customer on a clock; A (10 per call) starts 2024-06-03, B (7 per call) 2024-06-05."""
    metric(t, "calls")
    price_a = make_price(container, t.org_id, name="Usage A", model="per_unit", unit="10", metric="calls")
    price_b = make_price(container, t.org_id, name="Usage B", model="per_unit", unit="7", metric="calls")
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-03T00:00:00Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}).json()["id"]
    sub_a = _subscribe(t, customer, price_a)
    _advance(t, clock, "2024-06-05T00:00:00Z")
    sub_b = _subscribe(t, customer, price_b)
    return clock, customer, sub_a, sub_b


class TestAssignment:
    def test_each_event_bills_once_on_the_subscription_it_belongs_to(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, sub_a, sub_b = _two_subscriptions(tenant, container)
        events = (
            _calls("early", 1, "2024-06-04T00:00:00Z", customer_id=customer)  # only A is active
            + _calls("both", 2, "2024-06-10T00:00:00Z", customer_id=customer)  # A started first
            + _calls("forb", 5, "2024-06-10T00:00:00Z", subscription_id=sub_b)
            + _calls("fora", 1, "2024-06-11T00:00:00Z", subscription_id=sub_a)
        )
        assert batch(tenant, events)["accepted"] == 9
        _advance(tenant, clock, "2024-06-20T00:00:00Z")

        live = _live(tenant, customer)
        _advance(tenant, clock, "2024-07-06T00:00:00Z")
        lines = _usage_lines(tenant, customer)

        assert live == {sub_a: (Decimal(4), 40), sub_b: (Decimal(5), 35)}
        assert lines == {
            sub_a: [(Decimal(4), 40, "2024-06-03T00:00:00Z")],
            sub_b: [(Decimal(5), 35, "2024-06-05T00:00:00Z")],
        }

    def test_customer_events_move_to_the_remaining_subscription_when_one_ends(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, sub_a, sub_b = _two_subscriptions(tenant, container)
        batch(tenant, _calls("a", 3, "2024-06-10T00:00:00Z", customer_id=customer))
        _advance(tenant, clock, "2024-06-15T00:00:00Z")
        r = tenant.post(f"/v1/subscriptions/{sub_a}/cancel", {"at": "now"})
        assert r.status_code == 200, r.text
        _advance(tenant, clock, "2024-06-20T00:00:00Z")

        assert batch(tenant, _calls("b", 2, "2024-06-19T00:00:00Z", customer_id=customer))["accepted"] == 2
        live = _live(tenant, customer)
        _advance(tenant, clock, "2024-07-06T00:00:00Z")
        lines = _usage_lines(tenant, customer)

        assert live == {sub_b: (Decimal(2), 14)}
        assert lines == {
            sub_a: [(Decimal(3), 30, "2024-06-03T00:00:00Z")],
            sub_b: [(Decimal(2), 14, "2024-06-05T00:00:00Z")],
        }

    def test_usage_before_any_subscription_carries_into_the_first_one(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "seats", "sum", property="n", recurring=True)
        price = make_price(
            container, tenant.org_id, name="Usage seats", model="per_unit", unit="5", metric="seats"
        )
        clock = tenant.post("/v1/test_clocks", {"frozen_time": "2024-06-03T00:00:00Z"}).json()["id"]
        customer = tenant.post(
            "/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}
        ).json()["id"]
        seats = [
            {
                "transaction_id": "s1",
                "customer_id": customer,
                "metric_code": "seats",
                "timestamp": "2024-06-02T00:00:00Z",  # before the subscription
                "properties": {"n": 3},
            }
        ]
        batch(tenant, seats)
        sub = _subscribe(tenant, customer, price)

        _advance(tenant, clock, "2024-07-03T00:00:00Z")

        assert _usage_lines(tenant, customer) == {sub: [(Decimal(3), 15, "2024-06-03T00:00:00Z")]}

    def test_thresholds_count_only_the_subscriptions_own_events(
        self, tenant: Tenant, container: Container
    ) -> None:
        _clock, customer, sub_a, sub_b = _two_subscriptions(tenant, container)
        for sub in (sub_a, sub_b):
            r = tenant.post(
                "/v1/usage_thresholds",
                {"subscription_id": sub, "kind": "units", "metric_code": "calls", "value": "4"},
            )
            assert r.status_code == 201, r.text

        batch(tenant, _calls("c", 4, "2024-06-05T00:00:00Z", customer_id=customer))
        fired = tenant.get("/v1/events", params={"type": "usage.threshold_reached", "limit": 100}).json()[
            "data"
        ]
        batch(tenant, _calls("b", 3, "2024-06-05T00:00:00Z", subscription_id=sub_b))
        unchanged = tenant.get("/v1/events", params={"type": "usage.threshold_reached", "limit": 100}).json()[
            "data"
        ]
        batch(tenant, _calls("b2", 1, "2024-06-05T00:00:00Z", subscription_id=sub_b))
        after = tenant.get("/v1/events", params={"type": "usage.threshold_reached", "limit": 100}).json()[
            "data"
        ]

        assert _who(fired) == [(sub_a, "4")]
        assert len(unchanged) == 1
        assert sorted(_who(after)) == sorted([(sub_a, "4"), (sub_b, "4")])

    def test_voiding_checks_the_invoice_of_the_events_own_subscription(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, _customer, _sub_a, sub_b = _two_subscriptions(tenant, container)
        _advance(tenant, clock, "2024-06-06T00:00:00Z")
        out = batch(tenant, _calls("v", 1, "2024-06-06T00:00:00Z", subscription_id=sub_b))
        event_id = out["data"][0]["id"]
        _advance(tenant, clock, "2024-07-04T12:00:00Z")  # A's June period is invoiced; B's is not

        r = tenant.post(f"/v1/usage_events/{event_id}/void")

        assert r.status_code == 200, r.text
        assert r.json()["status"] == "voided"

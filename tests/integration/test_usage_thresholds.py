"""Usage thresholds, progressive billing, and voiding events before / after invoicing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price
from tests.integration.usage_helpers import batch, metric


def _setup(t: Tenant, container: Container, unit: str = "100") -> tuple[str, str, str]:
    metric(t, "calls")
    price = make_price(container, t.org_id, name="Usage", model="per_unit", unit=unit, metric="calls")
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-01T00:00:00Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}).json()["id"]
    sub = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert sub.status_code == 201, sub.text
    return clock, customer, sub.json()["id"]


def _calls(customer: str, n: int, tag: str, at: str = "2024-06-01T00:00:00Z") -> list[dict[str, Any]]:
    return [
        {"transaction_id": f"{tag}{i}", "customer_id": customer, "metric_code": "calls", "timestamp": at}
        for i in range(n)
    ]


def _advance(t: Tenant, clock: str, to: str) -> None:
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text


def _reached(t: Tenant) -> list[dict[str, Any]]:
    return t.get("/v1/events", params={"type": "usage.threshold_reached", "limit": 100}).json()["data"]  # type: ignore[no-any-return]


def _usage_lines(t: Tenant, customer: str) -> list[tuple[str, Decimal, int]]:
    invoices = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    return [
        (inv["billing_reason"], Decimal(li["quantity"]), li["amount"])
        for inv in reversed(invoices)
        for li in inv["lines"]
        if li["description"].startswith("Usage")
    ]


class TestThresholds:
    def test_a_units_threshold_fires_once_per_period(self, tenant: Tenant, container: Container) -> None:
        clock, customer, sub = _setup(tenant, container)
        r = tenant.post(
            "/v1/usage_thresholds",
            {"subscription_id": sub, "kind": "units", "metric_code": "calls", "value": "10"},
        )
        assert r.status_code == 201, r.text

        batch(tenant, _calls(customer, 9, "a"))
        before = _reached(tenant)
        batch(tenant, _calls(customer, 2, "b"))
        batch(tenant, _calls(customer, 5, "c"))
        once = _reached(tenant)
        _advance(tenant, clock, "2024-07-02T00:00:00Z")
        batch(tenant, _calls(customer, 10, "d", at="2024-07-01T12:00:00Z"))
        twice = _reached(tenant)

        assert before == [] and len(once) == 1 and len(twice) == 2
        data = once[0]["data"]["object"]
        assert (data["observed"], data["period_start"][:10], data["customer_id"]) == (
            "11",
            "2024-06-01",
            customer,
        )

    def test_a_units_threshold_needs_a_metric(self, tenant: Tenant, container: Container) -> None:
        _, _, sub = _setup(tenant, container)

        r = tenant.post("/v1/usage_thresholds", {"subscription_id": sub, "kind": "units", "value": "10"})

        assert r.status_code == 422
        assert tenant.get("/v1/usage_thresholds").json()["data"] == []


class TestProgressiveBilling:
    def test_crossing_an_amount_threshold_invoices_and_the_period_end_deducts_it(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, sub = _setup(tenant, container, unit="100")  # 1.00 per call
        r = tenant.post(
            "/v1/usage_thresholds",
            {"subscription_id": sub, "kind": "amount", "value": "5000", "invoice": True},
        )
        assert r.status_code == 201, r.text
        _advance(tenant, clock, "2024-06-10T00:00:00Z")

        batch(tenant, _calls(customer, 60, "a", at="2024-06-09T00:00:00Z"))  # 60.00 ≥ 50.00: invoiced now
        batch(tenant, _calls(customer, 15, "b", at="2024-06-09T01:00:00Z"))
        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        lines = _usage_lines(tenant, customer)
        assert lines == [("usage_threshold", Decimal(60), 6000), ("subscription_cycle", Decimal(75), 1500)]
        assert sum(amount for _, _, amount in lines) == 75 * 100


class TestVoid:
    def test_a_voided_event_stops_counting_and_is_audited(self, tenant: Tenant, container: Container) -> None:
        clock, customer, _ = _setup(tenant, container)
        result = batch(tenant, _calls(customer, 3, "v"))
        event_id = result["data"][0]["id"]

        voided = tenant.post(f"/v1/usage_events/{event_id}/void")
        again = tenant.post(f"/v1/usage_events/{event_id}/void")
        retry = batch(tenant, _calls(customer, 1, "v"))
        _advance(tenant, clock, "2024-06-02T00:00:00Z")
        [sub_usage] = tenant.get(f"/v1/customers/{customer}/usage").json()["subscriptions"]
        audit = tenant.get("/v1/audit_events", params={"object_id": event_id}).json()["data"]
        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        assert voided.status_code == 200 and voided.json()["status"] == "voided"
        assert again.status_code == 200
        assert retry["duplicate"] == 1  # a voided transaction id stays taken
        assert sub_usage["lines"][0]["units"] == "2"
        assert [a["action"] for a in audit] == ["usage_event.void"]
        assert _usage_lines(tenant, customer) == [("subscription_cycle", Decimal(2), 200)]

    def test_an_invoiced_event_cannot_be_voided(self, tenant: Tenant, container: Container) -> None:
        clock, customer, _ = _setup(tenant, container)
        event_id = batch(tenant, _calls(customer, 1, "v"))["data"][0]["id"]
        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        r = tenant.post(f"/v1/usage_events/{event_id}/void")

        assert r.status_code == 409 and r.json()["code"] == "period_invoiced"
        assert tenant.get("/v1/usage_events", params={"status": "voided"}).json()["data"] == []


class TestRecurringThresholds:
    def test_an_amount_threshold_fires_at_each_multiple_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, sub = _setup(tenant, container)  # 100 per call
        r = tenant.post(
            "/v1/usage_thresholds",
            {"subscription_id": sub, "kind": "amount", "value": "10000", "recurring": True},
        )
        assert r.status_code == 201, r.text

        batch(tenant, _calls(customer, 99, "a"))
        none = _reached(tenant)
        batch(tenant, _calls(customer, 1, "b"))  # 10,000: the first multiple
        batch(tenant, _calls(customer, 50, "c"))  # 15,000: nothing new
        batch(tenant, _calls(customer, 260, "d"))  # 41,000: 20,000, 30,000 and 40,000 at once
        batch(tenant, _calls(customer, 5, "e"))
        in_june = _reached(tenant)
        _advance(tenant, clock, "2024-07-02T00:00:00Z")
        batch(tenant, _calls(customer, 100, "f", at="2024-07-01T12:00:00Z"))  # a new period starts over
        in_july = _reached(tenant)

        assert none == []
        crossings = sorted(
            (e["data"]["object"]["period_start"][:10], int(e["data"]["object"]["crossed"])) for e in in_july
        )
        assert len(in_june) == 4
        assert crossings == [
            ("2024-06-01", 10000),
            ("2024-06-01", 20000),
            ("2024-06-01", 30000),
            ("2024-06-01", 40000),
            ("2024-07-01", 10000),
        ]
        assert r.json()["recurring"] is True

    def test_a_units_threshold_recurs_per_units(self, tenant: Tenant, container: Container) -> None:
        _clock, customer, sub = _setup(tenant, container)
        tenant.post(
            "/v1/usage_thresholds",
            {
                "subscription_id": sub,
                "kind": "units",
                "metric_code": "calls",
                "value": "3",
                "recurring": True,
            },
        )

        batch(tenant, _calls(customer, 7, "a"))

        assert sorted(int(e["data"]["object"]["crossed"]) for e in _reached(tenant)) == [3, 6]

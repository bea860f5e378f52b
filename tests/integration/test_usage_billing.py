"""Usage on invoices: each aggregation and each pricing model, exact to the cent, on test clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price
from tests.integration.usage_helpers import batch, metric


def _clock(t: Tenant, at: str) -> str:
    r = t.post("/v1/test_clocks", {"frozen_time": at})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _advance(t: Tenant, clock: str, to: str) -> None:
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text


def _subscribed(t: Tenant, container: Container, start: str, price_kw: dict[str, Any]) -> tuple[str, str]:
    """A customer on a test clock at ``start`` with a monthly subscription to one usage price."""
    clock = _clock(t, start)
    r = t.post("/v1/customers", {"name": "Acme", "currency": "USD", "test_clock_id": clock})
    assert r.status_code == 201, r.text
    customer = r.json()["id"]
    price = make_price(container, t.org_id, name="Usage", interval="month", **price_kw)
    r = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    return clock, customer


def _usage_lines(t: Tenant, customer: str) -> list[dict[str, Any]]:
    invoices = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    lines = [li for inv in reversed(invoices) for li in inv["lines"]]
    return [li for li in lines if li["description"].startswith("Usage")]


def _events(
    customer: str, rows: list[tuple[str, Any]], prop: str = "v", **extra: Any
) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": f"{ts}-{i}",
            "customer_id": customer,
            "metric_code": "m",
            "timestamp": ts,
            "properties": {prop: value, **extra},
        }
        for i, (ts, value) in enumerate(rows)
    ]


# A period that starts mid-hour: [2024-06-03 14:23:17, 2024-07-03 14:23:17)
START = "2024-06-03T14:23:17Z"
ROWS = [
    ("2024-06-03T14:10:00Z", "50"),  # before the period (same hour as its start)
    ("2024-06-03T14:30:00Z", "5"),  # first partial hour
    ("2024-06-10T12:00:00Z", "2"),
    ("2024-06-20T08:30:00Z", "3"),
    ("2024-07-03T14:05:00Z", "7"),  # last partial hour: the latest of the period
    ("2024-07-03T14:23:17Z", "100"),  # the next period
]
IN_PERIOD = [Decimal(v) for ts, v in ROWS[1:5]]


def _hours_left(ts: str) -> Decimal:
    end = datetime(2024, 7, 3, 14, 23, 17, tzinfo=UTC)
    return Decimal(int((end - datetime.fromisoformat(ts)).total_seconds())) / Decimal(3600)


WEIGHTED = sum((Decimal(v) * _hours_left(ts) for ts, v in ROWS[1:5]), Decimal(0)).quantize(
    Decimal("0.000001")
)


class TestAggregationsOnInvoices:
    @pytest.mark.parametrize(
        ("aggregation", "units"),
        [
            ("count", Decimal(4)),
            ("sum", sum(IN_PERIOD)),
            ("max", max(IN_PERIOD)),
            ("min", min(IN_PERIOD)),
            ("latest", Decimal(7)),
            ("unique_count", Decimal(3)),  # 5, 2, 3, 7 read as user ids below: a, b, a, c
            ("weighted_sum", WEIGHTED),
        ],
    )
    def test_each_aggregation_bills_the_period_units(
        self, tenant: Tenant, container: Container, aggregation: str, units: Decimal
    ) -> None:
        prop = "user" if aggregation == "unique_count" else "v"
        metric(tenant, "m", aggregation, property=None if aggregation == "count" else prop)
        clock, customer = _subscribed(
            tenant, container, START, {"model": "per_unit", "unit": "100", "metric": "m"}
        )
        rows = ROWS
        if aggregation == "unique_count":
            rows = [(ts, u) for (ts, _), u in zip(ROWS, ["z", "a", "b", "a", "c", "z"], strict=True)]
        result = batch(tenant, _events(customer, rows, prop=prop))
        assert result["accepted"] == 6, result

        _advance(tenant, clock, "2024-07-03T15:00:00Z")

        [line] = _usage_lines(tenant, customer)
        assert Decimal(line["quantity"]) == units
        assert line["amount"] == int((units * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
        assert (line["period_start"][:19], line["period_end"][:19]) == (
            "2024-06-03T14:23:17",
            "2024-07-03T14:23:17",
        )
        assert line["metadata"]["aggregation"] == aggregation
        assert f"({aggregation}" in line["description"] and "2024-06-03 to 2024-07-03" in line["description"]


SUM_ROWS = [("2024-06-05T10:00:00Z", "1200"), ("2024-06-06T10:00:00Z", "345")]  # 1,545 units in June

TIERS = [
    {"up_to": "1000", "unit_amount": "2", "flat_amount": "0"},
    {"up_to": "2000", "unit_amount": "1", "flat_amount": "500"},
    {"up_to": None, "unit_amount": "0.5", "flat_amount": "0"},
]


class TestPricingModelsOnInvoices:
    @pytest.mark.parametrize(
        ("price_kw", "amount"),
        [
            ({"model": "per_unit", "unit": "0.5"}, 773),  # 1545 × 0.5 = 772.5 → 773
            ({"model": "graduated", "tiers": TIERS}, 2000 + 545 + 500),
            ({"model": "volume", "tiers": TIERS}, 1545 + 500),
            ({"model": "package", "unit": "300", "package_size": 100}, 16 * 300),
            ({"model": "flat_per_unit", "flat": 1000, "unit": "1"}, 1000 + 1545),
        ],
    )
    def test_each_pricing_model_prices_the_units(
        self, tenant: Tenant, container: Container, price_kw: dict[str, Any], amount: int
    ) -> None:
        metric(tenant, "m", "sum", property="v")
        clock, customer = _subscribed(tenant, container, "2024-06-01T00:00:00Z", {**price_kw, "metric": "m"})
        batch(tenant, _events(customer, SUM_ROWS))

        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        [line] = _usage_lines(tenant, customer)
        assert (Decimal(line["quantity"]), line["amount"]) == (Decimal(1545), amount)

    def test_a_group_by_metric_prices_each_group_on_its_own(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "m", "sum", property="v", group_by="region", filters={"tier": ["paid"]})
        clock, customer = _subscribed(
            tenant, container, "2024-06-01T00:00:00Z", {"model": "graduated", "tiers": TIERS, "metric": "m"}
        )
        events = (
            _events(customer, [("2024-06-05T10:00:00Z", "1200")], region="eu", tier="paid")
            + _events(customer, [("2024-06-05T11:00:00Z", "345")], region="us", tier="paid")
            + _events(customer, [("2024-06-05T12:00:00Z", "999")], region="us", tier="free")
        )
        for i, e in enumerate(events):
            e["transaction_id"] = f"g{i}"
        result = batch(tenant, events)

        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        [line] = _usage_lines(tenant, customer)
        assert [r["event_status"] for r in result["data"]] == ["billable", "billable", "filtered"]
        # eu: 1000 × 2 + 200 × 1 + 500 = 2700; us: 345 × 2 = 690 (tiers restart per group)
        assert (Decimal(line["quantity"]), line["amount"]) == (Decimal(1545), 2700 + 690)
        assert (line["metadata"]["group:eu"], line["metadata"]["group:us"]) == ("1200", "345")

    def test_a_carried_over_metric_keeps_its_running_total(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "m", "sum", property="v", recurring=True)
        clock, customer = _subscribed(
            tenant, container, "2024-06-01T00:00:00Z", {"model": "per_unit", "unit": "1000", "metric": "m"}
        )
        batch(
            tenant,
            _events(
                customer,
                [
                    ("2024-06-02T00:00:00Z", "3"),
                    ("2024-07-10T00:00:00Z", "2"),
                    ("2024-07-11T00:00:00Z", "-1"),
                ],
            ),
        )

        _advance(tenant, clock, "2024-08-01T01:00:00Z")

        lines = _usage_lines(tenant, customer)
        assert [(Decimal(li["quantity"]), li["amount"]) for li in lines] == [
            (Decimal(3), 3000),
            (Decimal(4), 4000),
        ]

    def test_usage_arriving_late_for_an_unbilled_period_is_billed(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "m", "sum", property="v")
        clock, customer = _subscribed(
            tenant, container, "2024-06-01T00:00:00Z", {"model": "per_unit", "unit": "100", "metric": "m"}
        )
        batch(tenant, _events(customer, [("2024-06-05T10:00:00Z", "2")]))
        _advance(tenant, clock, "2024-06-30T00:00:00Z")
        batch(tenant, [{**_events(customer, [("2024-06-29T10:00:00Z", "3")])[0], "transaction_id": "late"}])

        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        [line] = _usage_lines(tenant, customer)
        assert (Decimal(line["quantity"]), line["amount"]) == (Decimal(5), 500)


class TestPercentagePricing:
    def test_transaction_fees_clamp_each_event_and_round_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "m", "sum", property="amount")
        product = tenant.post("/v1/products", {"name": "Usage fees"}).json()["id"]
        r = tenant.post(
            "/v1/prices",
            {
                "product_id": product,
                "currency": "USD",
                "type": "recurring",
                "interval": "month",
                "model": "percentage",
                "unit_amount": "2.9",
                "flat_amount": "30",
                "event_min_amount": "50",
                "event_max_amount": "500",
                "metric_code": "m",
            },
        )
        assert r.status_code == 201, r.text
        assert (r.json()["event_min_amount"], r.json()["event_max_amount"]) == ("50", "500")
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = tenant.post(
            "/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}
        ).json()["id"]
        sub = tenant.post(
            "/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": r.json()["id"]}]}
        )
        assert sub.status_code == 201, sub.text
        rows = [("2024-06-02T00:00:00Z", v) for v in ("100", "10000", "1000000", "2500")]
        batch(tenant, _events(customer, rows, prop="amount"))

        _advance(tenant, clock, "2024-07-01T01:00:00Z")

        [line] = _usage_lines(tenant, customer)
        # 50 (minimum) + 320 (2.9% + 30) + 500 (maximum) + 102.5 = 972.5 → 973
        assert (Decimal(line["quantity"]), line["amount"]) == (Decimal(1012600), 973)

    def test_a_percentage_price_needs_a_metric(self, tenant: Tenant) -> None:
        product = tenant.post("/v1/products", {"name": "Fees"}).json()["id"]

        r = tenant.post(
            "/v1/prices",
            {
                "product_id": product,
                "currency": "USD",
                "type": "recurring",
                "interval": "month",
                "model": "percentage",
                "unit_amount": "2.9",
            },
        )

        assert r.status_code == 422 and r.json()["code"] == "invalid_usage_price"


class TestCancellation:
    def test_canceling_now_bills_the_usage_of_the_partial_period(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "m", "sum", property="v")
        clock, customer = _subscribed(
            tenant, container, "2024-06-01T00:00:00Z", {"model": "per_unit", "unit": "100", "metric": "m"}
        )
        batch(tenant, _events(customer, [("2024-06-03T10:00:00Z", "4"), ("2024-06-20T10:00:00Z", "9")]))
        _advance(tenant, clock, "2024-06-10T00:00:00Z")
        sub = tenant.get("/v1/subscriptions", params={"customer_id": customer}).json()["data"][0]["id"]

        r = tenant.post(f"/v1/subscriptions/{sub}/cancel", {"at": "now"})

        assert r.status_code == 200, r.text
        [line] = _usage_lines(tenant, customer)
        assert (Decimal(line["quantity"]), line["amount"]) == (
            Decimal(4),
            400,
        )  # the event of the 20th is after the end

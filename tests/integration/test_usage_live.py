"""GET /v1/customers/{id}/usage: units, amount so far and projection, equal to what the invoice bills."""

from __future__ import annotations

from decimal import Decimal

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price
from tests.integration.usage_helpers import batch, metric

TIERS = [
    {"up_to": "1000", "unit_amount": "2", "flat_amount": "0"},
    {"up_to": None, "unit_amount": "1", "flat_amount": "500"},
]


def _setup(t: Tenant, container: Container) -> tuple[str, str, dict[str, str]]:
    metric(t, "calls")
    metric(t, "bytes", "sum", property="mb", group_by="region")
    metric(t, "storage", "weighted_sum", property="gb")
    prices = {
        "calls": make_price(
            container, t.org_id, name="Usage calls", model="per_unit", unit="0.5", metric="calls"
        ),
        "bytes": make_price(
            container, t.org_id, name="Usage bytes", model="graduated", tiers=TIERS, metric="bytes"
        ),
        "storage": make_price(
            container, t.org_id, name="Usage storage", model="per_unit", unit="3", metric="storage"
        ),
    }
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-03T14:23:17Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "Acme", "currency": "USD", "test_clock_id": clock}).json()[
        "id"
    ]
    r = t.post(
        "/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": p} for p in prices.values()]}
    )
    assert r.status_code == 201, r.text
    return clock, customer, prices


def _events(customer: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(30):
        day = 4 + i % 25
        at = f"2024-06-{day:02d}T{i % 24:02d}:{(i * 7) % 60:02d}:00Z"
        out.append(
            {"transaction_id": f"c{i}", "customer_id": customer, "metric_code": "calls", "timestamp": at}
        )
        region = "eu" if i % 3 else "us"
        props = {"mb": str(40 + i), "region": region}
        out.append(
            {
                "transaction_id": f"b{i}",
                "customer_id": customer,
                "metric_code": "bytes",
                "timestamp": at,
                "properties": props,
            }
        )
    for i, (at, gb) in enumerate([("2024-06-05T00:00:00Z", "10"), ("2024-06-20T12:30:00Z", "5.5")]):
        out.append(
            {
                "transaction_id": f"s{i}",
                "customer_id": customer,
                "metric_code": "storage",
                "timestamp": at,
                "properties": {"gb": gb},
            }
        )
    return out


def _calls_at_ten(t: Tenant, container: Container) -> tuple[str, str, str]:
    """A customer on a test clock at 2024-06-01, subscribed to calls at 10 each: (clock, customer, price)."""
    metric(t, "calls")
    price = make_price(container, t.org_id, name="Usage", model="per_unit", unit="10", metric="calls")
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-01T00:00:00Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "A", "currency": "USD", "test_clock_id": clock}).json()["id"]
    t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    return clock, customer, price


class TestCurrentUsage:
    def test_the_amount_so_far_is_what_the_invoice_bills(self, tenant: Tenant, container: Container) -> None:
        clock, customer, prices = _setup(tenant, container)
        assert batch(tenant, _events(customer))["accepted"] == 62
        r = tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-07-03T14:00:00Z"})
        assert r.status_code == 200, r.text

        usage = tenant.get(f"/v1/customers/{customer}/usage")
        r = tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-07-03T15:00:00Z"})
        assert r.status_code == 200, r.text
        invoices = tenant.get("/v1/invoices", params={"customer_id": customer}).json()["data"]

        assert usage.status_code == 200, usage.text
        [sub] = usage.json()["subscriptions"]
        lines = {li["price_id"]: li for li in sub["lines"]}
        billed = {li["price_id"]: li for inv in invoices for li in inv["lines"] if li["price_id"] in lines}
        assert lines[prices["calls"]]["units"] == "30" and lines[prices["calls"]]["amount"] == 15
        # bytes: eu 20 events, us 10 events, priced per region
        assert set(lines[prices["bytes"]]["groups"]) == {"eu", "us"}
        for key in ("calls", "bytes"):
            assert billed[prices[key]]["amount"] == lines[prices[key]]["amount"]
            assert Decimal(billed[prices[key]]["quantity"]) == Decimal(lines[prices[key]]["units"])
        # a gauge keeps accruing until the period end: its projection is what the invoice bills
        assert billed[prices["storage"]]["amount"] == lines[prices["storage"]]["projected_amount"]
        assert sub["amount"] == sum(li["amount"] for li in sub["lines"])

    def test_a_count_is_projected_linearly_over_the_period(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, _ = _calls_at_ten(tenant, container)
        events = [
            {
                "transaction_id": f"e{i}",
                "customer_id": customer,
                "metric_code": "calls",
                "timestamp": "2024-06-02T00:00:00Z",
            }
            for i in range(6)
        ]
        batch(tenant, events)
        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-06-11T00:00:00Z"})

        [sub] = tenant.get(f"/v1/customers/{customer}/usage").json()["subscriptions"]

        [line] = sub["lines"]
        assert (line["units"], line["amount"]) == ("6", 60)
        assert (line["projected_units"], line["projected_amount"]) == ("18", 180)  # 10 of 30 days gone
        assert (sub["period_start"][:10], sub["period_end"][:10]) == ("2024-06-01", "2024-07-01")

    def test_an_event_stamped_ahead_of_now_counts_so_far_as_the_invoice_bills_it(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, customer, price = _calls_at_ten(tenant, container)
        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-06-11T00:00:00Z"})
        at = ("2024-06-10T23:59:00Z", "2024-06-11T00:30:00Z")  # the second: 30 minutes ahead of the clock
        batch(
            tenant,
            [
                {"transaction_id": f"e{i}", "customer_id": customer, "metric_code": "calls", "timestamp": t}
                for i, t in enumerate(at)
            ],
        )

        [sub] = tenant.get(f"/v1/customers/{customer}/usage").json()["subscriptions"]
        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-07-01T01:00:00Z"})
        invoices = tenant.get("/v1/invoices", params={"customer_id": customer}).json()["data"]

        [line] = sub["lines"]
        billed = [li for inv in invoices for li in inv["lines"] if li["price_id"] == price]
        assert (line["units"], line["amount"]) == ("2", 20)
        assert [(li["quantity"], li["amount"]) for li in billed] == [("2", 20)]

    def test_an_unknown_customer_answers_404(self, tenant: Tenant) -> None:
        r = tenant.get("/v1/customers/cus_missing/usage")

        assert r.status_code == 404 and r.json()["code"] == "resource_missing"

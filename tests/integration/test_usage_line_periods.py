"""The service period a usage line's description shows: both dates in the subscription's time zone."""

from __future__ import annotations

from typing import Any

import pytest

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price
from tests.integration.usage_helpers import batch, metric


def _usage_line_after_one_period(
    t: Tenant, container: Container, *, timezone: str, start: str, period_end: str
) -> dict[str, Any]:
    """Subscribe a customer of ``timezone`` at ``start`` (a test clock) to a monthly usage price, send one
    event, advance the clock to ``period_end`` and return the usage line billed for the first period."""
    r = t.post("/v1/test_clocks", {"frozen_time": start})
    assert r.status_code == 201, r.text
    clock = r.json()["id"]
    r = t.post(
        "/v1/customers", {"name": "Acme", "currency": "USD", "timezone": timezone, "test_clock_id": clock}
    )
    assert r.status_code == 201, r.text
    customer = r.json()["id"]
    metric(t, "calls")
    price = make_price(
        container, t.org_id, name="API", interval="month", model="per_unit", unit="10", metric="calls"
    )
    r = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    event = {"transaction_id": "e1", "customer_id": customer, "metric_code": "calls", "timestamp": start}
    assert batch(t, [{**event, "properties": {}}])["accepted"] == 1
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": period_end})
    assert r.status_code == 200, r.text
    invoices = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    [line] = [li for inv in invoices for li in inv["lines"] if li["kind"] == "usage"]
    return line  # type: ignore[no-any-return]


class TestUsageLineServicePeriod:
    @pytest.mark.parametrize(
        ("timezone", "start", "period_end", "shown"),
        [
            # Tokyo's June 1 starts on May 31 in UTC (UTC+9): both dates shown are Tokyo's.
            ("Asia/Tokyo", "2024-05-31T15:00:00Z", "2024-06-30T15:00:00Z", "2024-06-01 to 2024-07-01"),
            # New York's May 31, 22:00 (EDT, UTC-4) is June 1 in UTC: both dates shown are New York's.
            ("America/New_York", "2024-06-01T02:00:00Z", "2024-07-01T02:00:00Z", "2024-05-31 to 2024-06-30"),
        ],
    )
    def test_describes_start_and_end_in_the_subscription_time_zone(
        self,
        tenant: Tenant,
        container: Container,
        timezone: str,
        start: str,
        period_end: str,
        shown: str,
    ) -> None:
        line = _usage_line_after_one_period(
            tenant, container, timezone=timezone, start=start, period_end=period_end
        )

        assert line["quantity"] == "1"
        assert line["amount"] == 10
        assert (line["period_start"][:19], line["period_end"][:19]) == (start[:19], period_end[:19])
        assert line["description"] == f"API: 1 calls (count), {shown}"

"""A plan change scheduled for the period end: the subscription reports the plan in effect until the
change takes effect, then the new one (prices and plan switch together)."""

from __future__ import annotations

from typing import Any

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_plan, make_price


def _setup(t: Tenant, container: Container) -> tuple[str, str, dict[str, Any]]:
    """A customer on a test clock at 2024-06-01 subscribed to plan "pro" (200.00/month); a cheaper
    plan "basic" (100.00/month) exists. Returns the clock id, the basic plan id and the subscription."""
    pro = make_plan(container, t.org_id, "pro", [make_price(container, t.org_id, name="Pro", flat=20000)])
    basic = make_plan(
        container, t.org_id, "basic", [make_price(container, t.org_id, name="Basic", flat=10000)]
    )
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-06-01T00:00:00Z"}).json()["id"]
    customer = t.post("/v1/customers", {"name": "Acme", "currency": "USD", "test_clock_id": clock}).json()[
        "id"
    ]
    r = t.post("/v1/subscriptions", {"customer_id": customer, "plan_id": pro})
    assert r.status_code == 201, r.text
    return clock, basic, r.json()


class TestScheduledPlanChange:
    def test_downgrade_keeps_the_old_version_until_the_period_end(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, basic, sub = _setup(tenant, container)
        old_plan, old_version = sub["plan_id"], sub["plan_version_id"]
        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-06-16T00:00:00Z"})

        changed = tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"plan_id": basic})
        assert changed.status_code == 200, changed.text
        mid = tenant.get(f"/v1/subscriptions/{sub['id']}").json()

        assert (changed.json()["plan_id"], changed.json()["plan_version_id"]) == (old_plan, old_version)
        assert (mid["plan_id"], mid["plan_version_id"]) == (old_plan, old_version)
        assert mid["scheduled_plan_id"] == basic
        assert mid["scheduled_plan_version_id"] not in (None, old_version)
        assert mid["plan_change_at"] == "2024-07-01T00:00:00Z"

        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-07-01T00:00:00Z"})
        after = tenant.get(f"/v1/subscriptions/{sub['id']}").json()

        assert (after["plan_id"], after["plan_version_id"]) == (basic, mid["scheduled_plan_version_id"])
        assert (after["scheduled_plan_id"], after["scheduled_plan_version_id"], after["plan_change_at"]) == (
            None,
            None,
            None,
        )

    def test_a_change_effective_now_switches_at_once_and_drops_the_scheduled_one(
        self, tenant: Tenant, container: Container
    ) -> None:
        _clock, basic, sub = _setup(tenant, container)
        tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"plan_id": basic})  # scheduled downgrade

        r = tenant.post(
            f"/v1/subscriptions/{sub['id']}/change", {"plan_id": basic, "effective": "now"}
        ).json()

        assert r["plan_id"] == basic and r["plan_version_id"] != sub["plan_version_id"]
        assert (r["scheduled_plan_id"], r["plan_change_at"]) == (None, None)

    def test_changing_back_before_the_period_end_cancels_the_scheduled_change(
        self, tenant: Tenant, container: Container
    ) -> None:
        clock, basic, sub = _setup(tenant, container)
        tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"plan_id": basic})

        back = tenant.post(
            f"/v1/subscriptions/{sub['id']}/change", {"plan_id": sub["plan_id"], "effective": "period_end"}
        ).json()
        tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2024-07-01T00:00:00Z"})
        after = tenant.get(f"/v1/subscriptions/{sub['id']}").json()

        assert (back["scheduled_plan_id"], back["plan_change_at"]) == (None, None)
        assert (after["plan_id"], after["plan_version_id"]) == (sub["plan_id"], sub["plan_version_id"])

"""The billing engine through the API, on test clocks: figures exact to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.services import billing
from revflow.services.context import SYSTEM, Ctx
from revflow.storage.models import Subscription
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_plan, make_price


def _clock(t: Tenant, at: str) -> str:
    r = t.post("/v1/test_clocks", {"frozen_time": at})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _customer(t: Tenant, clock: str, **fields: Any) -> str:
    r = t.post("/v1/customers", {"name": "Acme", "currency": "USD", "test_clock_id": clock, **fields})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _subscribe(t: Tenant, customer: str, **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/subscriptions", {"customer_id": customer, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _advance(t: Tenant, clock: str, to: str) -> None:
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text


def _invoices(t: Tenant, customer: str) -> list[dict[str, Any]]:
    data = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    return list(reversed(data))


class TestAnniversaryBilling:
    def test_month_end_anniversary_bills_on_the_last_day_of_shorter_months(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-31T00:00:00Z")
        customer = _customer(tenant, clock)
        _subscribe(tenant, customer, items=[{"price_id": price}])

        _advance(tenant, clock, "2024-05-01T00:00:00Z")

        invoices = _invoices(tenant, customer)
        starts = [i["lines"][0]["period_start"][:10] for i in invoices]
        assert starts == ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]
        assert [i["total"] for i in invoices] == [10000] * 4
        assert [i["status"] for i in invoices] == ["open"] * 4
        assert [i["number"] for i in invoices] == [f"INV-TEST1-00000{n}" for n in (1, 2, 3, 4)]

    def test_renews_at_local_midnight_across_dst(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        clock = _clock(tenant, "2024-03-01T08:00:00Z")  # midnight in Los Angeles (PST)
        customer = _customer(tenant, clock, timezone="America/Los_Angeles")
        _subscribe(tenant, customer, items=[{"price_id": price}])

        _advance(tenant, clock, "2024-04-02T00:00:00Z")

        periods = [
            (i["lines"][0]["period_start"], i["lines"][0]["period_end"]) for i in _invoices(tenant, customer)
        ]
        assert periods == [
            ("2024-03-01T08:00:00Z", "2024-04-01T07:00:00Z"),  # PDT from March 10
            ("2024-04-01T07:00:00Z", "2024-05-01T07:00:00Z"),
        ]

    def test_billing_twice_bills_nothing_new(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        _subscribe(tenant, customer, items=[{"price_id": price}])
        _advance(tenant, clock, "2024-03-01T00:00:00Z")
        before = _invoices(tenant, customer)
        now = datetime(2024, 3, 1, tzinfo=UTC)

        with container.sessions() as s:  # as if every billing point were replayed after a crash
            s.execute(update(Subscription).values(next_billing_at=Subscription.start_at))
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=SYSTEM, clock=FrozenClock(now))
            again = billing.bill_customer(ctx, customer, now=now)
            s.commit()

        assert again == []
        assert len(_invoices(tenant, customer)) == len(before) == 3


class TestProration:
    def test_upgrade_on_day_16_of_a_30_day_month_credits_50_and_charges_100(
        self, tenant: Tenant, container: Container
    ) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}])
        _advance(tenant, clock, "2024-06-16T00:00:00Z")

        r = tenant.post(
            f"/v1/subscriptions/{sub['id']}/change",
            {"items": [{"price_id": pro}], "proration_behavior": "always_invoice"},
        )

        assert r.status_code == 200, r.text
        update = _invoices(tenant, customer)[-1]
        assert update["billing_reason"] == "subscription_update"
        assert sorted(li["amount"] for li in update["lines"]) == [-5000, 10000]
        assert update["total"] == 5000
        credit = next(li for li in update["lines"] if li["amount"] < 0)
        assert credit["description"].startswith("Unused time on Basic")
        assert (credit["period_start"], credit["period_end"]) == (
            "2024-06-16T00:00:00Z",
            "2024-07-01T00:00:00Z",
        )

    def test_proration_lines_show_their_start_date_in_the_subscription_time_zone(
        self, tenant: Tenant, container: Container
    ) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        clock = _clock(tenant, "2024-05-31T15:00:00Z")  # June 1, 00:00 in Tokyo (UTC+9)
        customer = _customer(tenant, clock, timezone="Asia/Tokyo")
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}])
        _advance(tenant, clock, "2024-06-15T15:00:00Z")  # June 16 in Tokyo, still June 15 in UTC

        r = tenant.post(
            f"/v1/subscriptions/{sub['id']}/change",
            {"items": [{"price_id": pro}], "proration_behavior": "always_invoice"},
        )

        assert r.status_code == 200, r.text
        update = _invoices(tenant, customer)[-1]
        assert sorted((li["amount"], li["description"]) for li in update["lines"]) == [
            (-5000, "Unused time on Basic from 2024-06-16"),
            (10000, "Remaining time on Pro from 2024-06-16"),
        ]
        assert {li["period_start"] for li in update["lines"]} == {"2024-06-15T15:00:00Z"}

    def test_pending_prorations_wait_for_the_next_invoice_and_show_in_the_preview(
        self, tenant: Tenant, container: Container
    ) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}])
        _advance(tenant, clock, "2024-06-16T00:00:00Z")
        tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"items": [{"price_id": pro}]})

        preview = tenant.get("/v1/invoices/upcoming", params={"subscription_id": sub["id"]}).json()
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        assert sorted(li["amount"] for li in preview["lines"]) == [-5000, 10000, 20000]
        assert preview["total"] == 25000
        renewal = _invoices(tenant, customer)[-1]
        assert sorted(li["amount"] for li in renewal["lines"]) == [-5000, 10000, 20000]
        assert renewal["total"] == preview["total"]

    def test_a_change_and_its_reversal_net_to_zero(self, tenant: Tenant, container: Container) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=9999)
        pro = make_price(container, tenant.org_id, name="Pro", flat=19999)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}])
        _advance(tenant, clock, "2024-06-10T13:17:00Z")

        tenant.post(
            f"/v1/subscriptions/{sub['id']}/change", {"items": [{"price_id": pro}], "effective": "now"}
        )
        tenant.post(
            f"/v1/subscriptions/{sub['id']}/change", {"items": [{"price_id": basic}], "effective": "now"}
        )
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        renewal = _invoices(tenant, customer)[-1]
        june_lines = [li for li in renewal["lines"] if li["period_start"].startswith("2024-06")]
        assert sum(li["amount"] for li in june_lines) == 0
        assert renewal["total"] == 9999

    def test_downgrades_default_to_the_period_end(self, tenant: Tenant, container: Container) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": pro}])
        _advance(tenant, clock, "2024-06-16T00:00:00Z")

        changed = tenant.post(
            f"/v1/subscriptions/{sub['id']}/change", {"items": [{"price_id": basic}]}
        ).json()
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        assert changed["items"][0]["price_id"] == pro
        assert changed["scheduled_items"][0]["price_id"] == basic
        assert _invoices(tenant, customer)[-1]["total"] == 10000

    def test_quantity_change_with_graduated_seats(self, tenant: Tenant, container: Container) -> None:
        tiers = [
            {"up_to": 100, "unit_amount": "100"},
            {"up_to": 200, "unit_amount": "50"},
            {"up_to": None, "unit_amount": "25"},
        ]
        seats = make_price(container, tenant.org_id, name="Seats", model="graduated", tiers=tiers)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": seats, "quantity": 150}])

        first = _invoices(tenant, customer)[0]
        r = tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"quantity": 250, "effective": "period_end"})
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        assert first["total"] == 12500
        assert r.status_code == 200
        assert _invoices(tenant, customer)[-1]["total"] == 16250  # 100 + 50 + 12.50


class TestStartsAndTrials:
    def test_billing_day_anchor_prorates_the_first_period(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=3100)
        clock = _clock(tenant, "2024-01-15T00:00:00Z")
        customer = _customer(tenant, clock)
        _subscribe(tenant, customer, items=[{"price_id": price}], billing_cycle_day=1)

        _advance(tenant, clock, "2024-02-01T00:00:00Z")

        first, second = _invoices(tenant, customer)
        assert first["total"] == 1700  # 17 of 31 days of the February price... of a 31-day cycle stub
        assert first["lines"][0]["period_end"] == "2024-02-01T00:00:00Z"
        assert second["total"] == 3100
        assert second["lines"][0]["period_start"] == "2024-02-01T00:00:00Z"

    def test_a_free_trial_bills_nothing_until_it_ends(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}], trial_days=14)

        during = _invoices(tenant, customer)
        _advance(tenant, clock, "2024-01-15T00:00:00Z")

        assert sub["status"] == "trialing"
        assert during == []
        after = _invoices(tenant, customer)
        assert [i["total"] for i in after] == [10000]
        assert after[0]["lines"][0]["period_start"] == "2024-01-15T00:00:00Z"
        assert tenant.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"

    def test_a_paid_trial_bills_its_fee_up_front(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)

        _subscribe(tenant, customer, items=[{"price_id": price}], trial_days=7, trial_amount=100)

        (trial,) = _invoices(tenant, customer)
        assert (trial["total"], trial["lines"][0]["description"]) == (100, "Trial period")

    def test_a_backdated_start_bills_each_missed_cycle(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-04-10T00:00:00Z")
        customer = _customer(tenant, clock)

        _subscribe(tenant, customer, items=[{"price_id": price}], start_at="2024-01-10T00:00:00Z")

        starts = [i["lines"][0]["period_start"][:10] for i in _invoices(tenant, customer)]
        assert starts == ["2024-01-10", "2024-02-10", "2024-03-10", "2024-04-10"]

    def test_a_future_start_waits(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)

        sub = _subscribe(tenant, customer, items=[{"price_id": price}], start_at="2024-02-01T00:00:00Z")
        _advance(tenant, clock, "2024-02-01T00:00:00Z")

        assert sub["status"] == "incomplete"
        assert [i["total"] for i in _invoices(tenant, customer)] == [10000]
        assert tenant.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"

    def test_subscriptions_renewing_together_share_one_invoice(
        self, tenant: Tenant, container: Container
    ) -> None:
        a = make_price(container, tenant.org_id, name="Core", flat=10000)
        b = make_price(container, tenant.org_id, name="Add-on", flat=2500)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        _subscribe(tenant, customer, items=[{"price_id": a}])
        _subscribe(tenant, customer, items=[{"price_id": b}])

        _advance(tenant, clock, "2024-02-01T00:00:00Z")

        renewal = _invoices(tenant, customer)[-1]
        assert renewal["total"] == 12500
        assert len(renewal["lines"]) == 2
        assert renewal["subscription_id"] is None


class TestEndings:
    def test_cancel_at_period_end_stops_renewal(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}])

        tenant.post(f"/v1/subscriptions/{sub['id']}/cancel", {"at": "period_end"})
        _advance(tenant, clock, "2024-03-01T00:00:00Z")

        assert len(_invoices(tenant, customer)) == 1
        final = tenant.get(f"/v1/subscriptions/{sub['id']}").json()
        assert (final["status"], final["ended_at"]) == ("canceled", "2024-02-01T00:00:00Z")

    def test_reactivate_before_the_period_end_keeps_renewing(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}])
        tenant.post(f"/v1/subscriptions/{sub['id']}/cancel", {})

        r = tenant.post(f"/v1/subscriptions/{sub['id']}/reactivate")
        _advance(tenant, clock, "2024-02-01T00:00:00Z")

        assert r.status_code == 200 and r.json()["cancel_at"] is None
        assert [i["total"] for i in _invoices(tenant, customer)] == [10000, 10000]

    def test_cancel_now_with_proration_credits_the_unused_time(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=3000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}])
        _advance(tenant, clock, "2024-06-11T00:00:00Z")

        r = tenant.post(f"/v1/subscriptions/{sub['id']}/cancel", {"at": "now", "prorate": True})
        twice = tenant.post(f"/v1/subscriptions/{sub['id']}/cancel", {"at": "now"})

        assert r.json()["status"] == "canceled"
        credit = _invoices(tenant, customer)[-1]
        assert credit["total"] == -2000  # 20 of 30 days
        assert tenant.get(f"/v1/customers/{customer}").json()["balance"] == 2000
        assert twice.status_code == 409 and twice.json()["code"] == "invalid_state"

    def test_pause_then_resume_bills_only_the_active_time(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=3000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}])
        _advance(tenant, clock, "2024-06-05T00:00:00Z")

        tenant.post(f"/v1/subscriptions/{sub['id']}/pause")
        _advance(tenant, clock, "2024-07-21T00:00:00Z")
        resumed = tenant.post(f"/v1/subscriptions/{sub['id']}/resume").json()
        _advance(tenant, clock, "2024-08-01T00:00:00Z")

        totals = [i["total"] for i in _invoices(tenant, customer)]
        assert totals == [3000, 1065, 3000]  # June; July 21-31 (11 of 31 days: 1064.52); August
        assert resumed["status"] == "active"

    def test_a_fixed_term_without_renewal_ends(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": price}], term_months=3, auto_renew=False)

        _advance(tenant, clock, "2024-06-01T00:00:00Z")

        assert len(_invoices(tenant, customer)) == 3
        assert tenant.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "ended"


class TestGracePeriod:
    def test_renewal_drafts_finalize_after_the_grace_period(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        _subscribe(tenant, customer, items=[{"price_id": price}])

        _advance(tenant, clock, "2024-02-01T00:30:00Z")
        draft = _invoices(tenant, customer)[-1]
        _advance(tenant, clock, "2024-02-01T01:00:00Z")

        assert draft["status"] == "draft"
        final = _invoices(tenant, customer)[-1]
        assert (final["id"], final["status"], final["number"]) == (draft["id"], "open", "INV-TEST1-000002")


class TestBadInput:
    def test_each_is_refused_with_its_code_and_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        usd = make_price(container, tenant.org_id, flat=10000)
        eur = make_price(container, tenant.org_id, flat=9000, currency="EUR")
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": usd}])
        before = tenant.get(f"/v1/subscriptions/{sub['id']}").json()

        other_currency = tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"items": [{"price_id": eur}]})
        negative = tenant.post(f"/v1/subscriptions/{sub['id']}/change", {"quantity": -1})
        backwards = tenant.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": "2023-12-31T00:00:00Z"})

        assert (other_currency.status_code, other_currency.json()["code"]) == (422, "currency_mismatch")
        assert (negative.status_code, negative.json()["code"]) == (422, "validation_error")
        assert (backwards.status_code, backwards.json()["code"]) == (422, "clock_backwards")
        assert tenant.get(f"/v1/subscriptions/{sub['id']}").json() == before
        assert len(_invoices(tenant, customer)) == 1


def test_plans_subscribe_in_the_customers_currency(tenant: Tenant, container: Container) -> None:
    usd = make_price(container, tenant.org_id, flat=10000)
    eur = make_price(container, tenant.org_id, flat=9000, currency="EUR")
    plan = make_plan(container, tenant.org_id, "pro", [usd, eur])
    clock = _clock(tenant, "2024-01-01T00:00:00Z")
    customer = _customer(tenant, clock, currency="EUR")

    sub = _subscribe(tenant, customer, plan_id=plan)

    assert sub["currency"] == "EUR"
    assert [i["total"] for i in _invoices(tenant, customer)] == [9000]


class TestDiscounts:
    def test_the_seed_contract_20_percent_off_the_first_year_then_full_renewal(
        self, tenant: Tenant, container: Container
    ) -> None:
        annual = make_price(container, tenant.org_id, name="Enterprise", flat=1_000_000, interval="year")
        coupon = tenant.post(
            "/v1/coupons", {"name": "First year 20%", "percent_off": 20, "duration": "once"}
        ).json()
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)

        _subscribe(tenant, customer, items=[{"price_id": annual}], coupon_id=coupon["id"])
        _advance(tenant, clock, "2025-01-01T00:00:00Z")

        first, renewal = _invoices(tenant, customer)
        assert (first["subtotal"], first["discount"], first["total"]) == (1_000_000, 200_000, 800_000)
        assert first["lines"][0]["discount_amount"] == 200_000
        assert first["lines"][0]["discounts"][0]["coupon_id"] == coupon["id"]
        assert (renewal["subtotal"], renewal["discount"], renewal["total"]) == (1_000_000, 0, 1_000_000)

    def test_a_repeating_discount_also_discounts_prorations_so_they_net_out(
        self, tenant: Tenant, container: Container
    ) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        coupon = tenant.post(
            "/v1/coupons",
            {"name": "25% for 3 months", "percent_off": 25, "duration": "repeating", "duration_in_months": 3},
        ).json()
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}], coupon_id=coupon["id"])
        _advance(tenant, clock, "2024-06-16T00:00:00Z")

        tenant.post(
            f"/v1/subscriptions/{sub['id']}/change",
            {"items": [{"price_id": pro}], "proration_behavior": "always_invoice"},
        )

        update = _invoices(tenant, customer)[-1]
        assert sorted(li["discount_amount"] for li in update["lines"]) == [-1250, 2500]
        assert update["total"] == 3750  # (−5000 + 10000) × 75%

    def test_a_fixed_amount_coupon_in_another_currency_is_refused(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=10000)
        coupon = tenant.post(
            "/v1/coupons", {"name": "€5 off", "amount_off": 500, "currency": "EUR", "duration": "forever"}
        ).json()
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)

        r = tenant.post(
            "/v1/subscriptions",
            {"customer_id": customer, "items": [{"price_id": price}], "coupon_id": coupon["id"]},
        )

        assert (r.status_code, r.json()["code"]) == (422, "coupon_currency_mismatch")
        assert _invoices(tenant, customer) == []
        assert tenant.get("/v1/subscriptions", params={"customer_id": customer}).json()["data"] == []


class TestConsolidatedDiscounts:
    def test_a_customers_fixed_coupon_comes_off_a_consolidated_invoice_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        a = make_price(container, tenant.org_id, name="Core", flat=10000)
        b = make_price(container, tenant.org_id, name="Add-on", flat=2500)
        coupon = tenant.post(
            "/v1/coupons", {"name": "$15 off", "amount_off": 1500, "currency": "USD", "duration": "forever"}
        ).json()
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        tenant.post(f"/v1/customers/{customer}/discounts", {"coupon_id": coupon["id"]})
        _subscribe(tenant, customer, items=[{"price_id": a}])
        _subscribe(tenant, customer, items=[{"price_id": b}])

        _advance(tenant, clock, "2024-02-01T00:00:00Z")

        renewal = _invoices(tenant, customer)[-1]
        assert (renewal["subtotal"], renewal["discount"], renewal["total"]) == (12500, 1500, 11000)
        assert sum(li["discount_amount"] for li in renewal["lines"]) == 1500

    def test_billing_day_needs_a_monthly_or_longer_cycle(self, tenant: Tenant, container: Container) -> None:
        weekly = make_price(container, tenant.org_id, flat=700, interval="week")
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)

        r = tenant.post(
            "/v1/subscriptions",
            {"customer_id": customer, "items": [{"price_id": weekly}], "billing_cycle_day": 1},
        )

        assert (r.status_code, r.json()["code"]) == (422, "invalid_billing_cycle_day")


class TestChangeExtras:
    def test_a_one_time_fee_sent_with_a_change_is_billed_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        basic = make_price(container, tenant.org_id, name="Basic", flat=10000)
        pro = make_price(container, tenant.org_id, name="Pro", flat=20000)
        fee = make_price(
            container, tenant.org_id, name="Upgrade fee", flat=5000, type="one_time", interval=None
        )
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        sub = _subscribe(tenant, customer, items=[{"price_id": basic}])
        _advance(tenant, clock, "2024-06-16T00:00:00Z")

        tenant.post(
            f"/v1/subscriptions/{sub['id']}/change",
            {"items": [{"price_id": pro}, {"price_id": fee}], "proration_behavior": "always_invoice"},
        )
        _advance(tenant, clock, "2024-08-01T00:00:00Z")

        update, july, august = _invoices(tenant, customer)[1:]
        assert sorted(li["amount"] for li in update["lines"]) == [-5000, 5000, 10000]
        assert (july["total"], august["total"]) == (20000, 20000)

    def test_quantity_with_a_base_fee_plan_sets_the_seats(self, tenant: Tenant, container: Container) -> None:
        base = make_price(container, tenant.org_id, name="Platform", flat=5000)
        seat = make_price(container, tenant.org_id, name="Seat", model="per_unit", unit=1000)
        plan = make_plan(container, tenant.org_id, "platform", [base, seat])
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)

        _subscribe(tenant, customer, plan_id=plan, quantity=7)

        assert _invoices(tenant, customer)[0]["total"] == 12000

"""Coupons, promotion codes and discounts through the API (and the service the billing engine calls)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from revflow.bootstrap import Container
from revflow.domain.discounts import DiscountableLine, allocate
from revflow.domain.ids import new_id
from revflow.domain.money import Currency
from revflow.services import coupons as svc
from revflow.services.context import Actor, Ctx
from revflow.storage.models import (
    AuditEvent,
    Coupon,
    Discount,
    Event,
    Plan,
    Product,
    PromotionCode,
    Subscription,
)
from tests.conftest import Tenant
from tests.integration.live import live_server

JAN_2024 = datetime(2024, 1, 1, tzinfo=UTC)
JAN_2025 = datetime(2025, 1, 1, tzinfo=UTC)
USD = Currency.of("USD")


def _customer(t: Tenant, **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/customers", {"name": "Acme Corp", "currency": "USD", **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _coupon(t: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "First year", "percent_off": 20, "duration": "repeating", "duration_in_months": 12}
    r = t.post("/v1/coupons", {**body, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _promo(t: Tenant, coupon_id: str, code: str = "Spring24", **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/promotion_codes", {"coupon_id": coupon_id, "code": code, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _count(container: Container, model: Any, *where: Any) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _state(container: Container) -> dict[str, Any]:
    """Everything a refused request must leave alone."""
    with container.sessions() as s:
        return {
            "coupons": [(c.id, c.name, c.times_redeemed, c.redeem_by) for c in s.scalars(select(Coupon))],
            "codes": [(p.id, p.code, p.active, p.times_redeemed) for p in s.scalars(select(PromotionCode))],
            "discounts": [(d.id, d.removed_at) for d in s.scalars(select(Discount))],
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
            "events": s.scalar(select(func.count()).select_from(Event)),
        }


def _assert_problem(r: Any, status: int, code: str, field: str | None = None) -> None:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), r.text
    assert r.json()["code"] == code, r.text
    if field is not None:
        assert field in [e["field"] for e in r.json()["errors"]], r.text


def _set(container: Container, model: Any, obj_id: str, **values: Any) -> None:
    with container.sessions() as s:
        s.execute(update(model).where(model.id == obj_id).values(**values))
        s.commit()


def _catalog(container: Container, org_id: str) -> tuple[str, str]:
    """A product and a plan of the organization (the catalog API is not ours to rely on here)."""
    with container.sessions() as s:
        now = container.clock.now()
        product = Product(id=new_id("prod"), org_id=org_id, name="Platform", created_at=now, updated_at=now)
        plan = Plan(
            id=new_id("plan"),
            org_id=org_id,
            code=f"ent-{new_id('x')}",
            name="Enterprise",
            created_at=now,
            updated_at=now,
        )
        s.add_all([product, plan])
        s.commit()
        return product.id, plan.id


def _subscription(
    container: Container, org_id: str, customer_id: str, *, currency: str = "USD", tz: str = "UTC"
) -> str:
    """A yearly subscription in its first period, 2024-01-01 to 2025-01-01."""
    with container.sessions() as s:
        now = container.clock.now()
        sub = Subscription(
            id=new_id("sub"),
            org_id=org_id,
            customer_id=customer_id,
            currency=currency,
            status="active",
            interval="year",
            interval_count=1,
            billing_cycle_anchor=JAN_2024,
            timezone=tz,
            start_at=JAN_2024,
            current_period_start=JAN_2024,
            current_period_end=JAN_2025,
            created_at=now,
            updated_at=now,
        )
        s.add(sub)
        s.commit()
        return sub.id


def _ctx(container: Container, session: Any, t: Tenant) -> Ctx:
    return Ctx(session=session, org_id=t.org_id, actor=Actor("cli"), clock=container.clock)


class TestCreateCoupon:
    def test_creates_a_percent_coupon_and_records_it(self, tenant: Tenant) -> None:
        r = tenant.post(
            "/v1/coupons",
            {
                "name": "First year 20%",
                "percent_off": 20,
                "duration": "repeating",
                "duration_in_months": 12,
                "max_redemptions": 5,
                "metadata": {"deal": "acme"},
            },
        )

        assert r.status_code == 201, r.text
        c = r.json()
        assert c["id"].startswith("cpn_") and c["object"] == "coupon"
        assert (c["percent_off"], c["amount_off"], c["currency"]) == ("20", None, None)
        assert (c["duration"], c["duration_in_months"]) == ("repeating", 12)
        assert (c["max_redemptions"], c["times_redeemed"], c["valid"]) == (5, 0, True)
        assert c["metadata"] == {"deal": "acme"}
        assert tenant.get(f"/v1/coupons/{c['id']}").json() == c
        events = tenant.get("/v1/events", params={"type": "coupon.created"}).json()["data"]
        assert [e["data"]["object"]["id"] for e in events] == [c["id"]]
        audit = tenant.get("/v1/audit_events", params={"object_id": c["id"]}).json()["data"]
        assert [a["action"] for a in audit] == ["coupon.create"]

    def test_keeps_up_to_four_decimal_places_of_a_percent(self, tenant: Tenant) -> None:
        c = _coupon(tenant, percent_off="12.3450", duration="forever", duration_in_months=None)

        assert c["percent_off"] == "12.345"

    def test_creates_a_fixed_amount_coupon_restricted_to_a_product_and_a_plan(
        self, tenant: Tenant, container: Container
    ) -> None:
        product, plan = _catalog(container, tenant.org_id)

        c = _coupon(
            tenant,
            percent_off=None,
            amount_off=50_000,
            currency="usd",
            duration="once",
            duration_in_months=None,
            applies_to_products=[product, product],
            applies_to_plans=[plan],
        )

        assert (c["amount_off"], c["currency"], c["percent_off"]) == (50_000, "USD", None)
        assert (c["applies_to_products"], c["applies_to_plans"]) == ([product], [plan])

    @pytest.mark.parametrize(
        ("fields", "status", "code", "field"),
        [
            ({"percent_off": None}, 422, "invalid_coupon_value", "percent_off"),
            ({"amount_off": 500, "currency": "USD"}, 422, "invalid_coupon_value", "percent_off"),
            ({"percent_off": 0}, 422, "invalid_percent_off", "percent_off"),
            ({"percent_off": "100.01"}, 422, "invalid_percent_off", "percent_off"),
            ({"percent_off": "12.34567"}, 422, "invalid_percent_off", "percent_off"),
            ({"percent_off": "-5"}, 422, "invalid_percent_off", "percent_off"),
            ({"percent_off": 12.5}, 422, "validation_error", "percent_off"),
            ({"currency": "USD"}, 422, "invalid_coupon_value", "currency"),
            ({"percent_off": None, "amount_off": 500}, 422, "currency_required", "currency"),
            (
                {"percent_off": None, "amount_off": 0, "currency": "USD"},
                422,
                "invalid_amount_off",
                "amount_off",
            ),
            (
                {"percent_off": None, "amount_off": 500, "currency": "XYZ"},
                422,
                "unknown_currency",
                "currency",
            ),
            ({"duration_in_months": None}, 422, "invalid_duration_in_months", "duration_in_months"),
            ({"duration_in_months": 0}, 422, "invalid_duration_in_months", "duration_in_months"),
            ({"duration": "once"}, 422, "invalid_duration_in_months", "duration_in_months"),
            ({"duration": "weekly"}, 422, "validation_error", "duration"),
            ({"max_redemptions": 0}, 422, "invalid_max_redemptions", "max_redemptions"),
            ({"redeem_by": "2001-01-01T00:00:00Z"}, 422, "invalid_redeem_by", "redeem_by"),
            ({"redeem_by": "2099-01-01T00:00:00"}, 422, "validation_error", "redeem_by"),
            ({"applies_to_products": ["prod_missing"]}, 404, "resource_missing", "applies_to_products[0]"),
            ({"applies_to_plans": ["plan_missing"]}, 404, "resource_missing", "applies_to_plans[0]"),
            ({"valid": True}, 422, "validation_error", "valid"),
        ],
    )
    def test_refuses_bad_input_with_a_stable_code_and_changes_nothing(
        self, tenant: Tenant, container: Container, fields: dict[str, Any], status: int, code: str, field: str
    ) -> None:
        body = {"name": "X", "percent_off": 20, "duration": "repeating", "duration_in_months": 3, **fields}
        before = _state(container)

        r = tenant.post("/v1/coupons", {k: v for k, v in body.items() if v is not None})

        _assert_problem(r, status, code, field)
        assert _state(container) == before

    def test_reports_every_broken_rule_at_once(self, tenant: Tenant) -> None:
        r = tenant.post(
            "/v1/coupons",
            {"name": "X", "percent_off": "0", "duration": "repeating", "max_redemptions": 0},
        )

        _assert_problem(r, 422, "invalid_percent_off")
        assert [e["field"] for e in r.json()["errors"]] == [
            "percent_off",
            "duration_in_months",
            "max_redemptions",
        ]

    def test_another_orgs_product_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        theirs, _ = _catalog(container, other_tenant.org_id)

        r = tenant.post(
            "/v1/coupons",
            {"name": "X", "percent_off": 5, "duration": "forever", "applies_to_products": [theirs]},
        )

        _assert_problem(r, 404, "resource_missing", "applies_to_products[0]")
        assert _count(container, Coupon) == 0


class TestUpdateAndDeleteCoupon:
    def test_renames_and_merges_metadata_but_never_changes_the_value(self, tenant: Tenant) -> None:
        c = _coupon(tenant, metadata={"a": "1", "b": "2"})

        renamed = tenant.patch(
            f"/v1/coupons/{c['id']}", {"name": "Launch", "metadata": {"a": None, "c": "3"}}
        )
        value = tenant.patch(f"/v1/coupons/{c['id']}", {"percent_off": 50})
        null_name = tenant.patch(f"/v1/coupons/{c['id']}", {"name": None})

        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["metadata"]) == ("Launch", {"b": "2", "c": "3"})
        _assert_problem(value, 422, "validation_error", "percent_off")
        _assert_problem(null_name, 422, "validation_error", "name")
        assert tenant.get(f"/v1/coupons/{c['id']}").json()["percent_off"] == "20"
        audit = tenant.get("/v1/audit_events", params={"object_id": c["id"]}).json()["data"]
        assert [a["action"] for a in audit] == ["coupon.update", "coupon.create"]
        assert audit[0]["changes"]["name"] == {"before": "First year", "after": "Launch"}
        assert (
            tenant.get("/v1/events", params={"type": "coupon.updated"}).json()["data"][0]["object_id"]
            == c["id"]
        )

    def test_delete_stops_new_redemptions_but_keeps_applied_discounts(self, tenant: Tenant) -> None:
        c = _coupon(tenant)
        promo = _promo(tenant, c["id"])
        first = _customer(tenant)
        second = _customer(tenant, name="Beta")
        applied = tenant.post(f"/v1/customers/{first['id']}/discounts", {"coupon_id": c["id"]}).json()

        deleted = tenant.delete(f"/v1/coupons/{c['id']}")
        again = tenant.delete(f"/v1/coupons/{c['id']}")
        by_id = tenant.post(f"/v1/customers/{second['id']}/discounts", {"coupon_id": c["id"]})
        by_code = tenant.post(f"/v1/customers/{second['id']}/discounts", {"promotion_code": "spring24"})

        assert deleted.status_code == 200 and deleted.json()["valid"] is False
        assert again.json() == deleted.json()
        _assert_problem(by_id, 409, "coupon_expired")
        _assert_problem(by_code, 409, "promotion_code_inactive")
        assert tenant.get(f"/v1/promotion_codes/{promo['id']}").json()["active"] is False
        listed = tenant.get(f"/v1/customers/{first['id']}/discounts").json()["data"]
        assert [d["id"] for d in listed] == [applied["id"]]
        audit = tenant.get("/v1/audit_events", params={"object_id": c["id"]}).json()["data"]
        assert [a["action"] for a in audit] == ["coupon.delete", "coupon.create"]


class TestPromotionCodes:
    def test_codes_are_matched_case_insensitively(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant)
        promo = _promo(tenant, c["id"], "Spring24", max_redemptions=10)
        customer = _customer(tenant)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"promotion_code": "sPrInG24"})
        found = tenant.get("/v1/promotion_codes", params={"code": "spring24"}).json()["data"]

        assert promo["code"] == "SPRING24" and promo["id"].startswith("promo_")
        assert r.status_code == 201, r.text
        d = r.json()
        assert (d["coupon"]["id"], d["promotion_code_id"], d["customer_id"]) == (
            c["id"],
            promo["id"],
            customer["id"],
        )
        assert [p["id"] for p in found] == [promo["id"]]
        assert tenant.get(f"/v1/promotion_codes/{promo['id']}").json()["times_redeemed"] == 1
        assert tenant.get(f"/v1/coupons/{c['id']}").json()["times_redeemed"] == 1
        assert (
            tenant.get("/v1/events", params={"type": "promotion_code.created"}).json()["data"][0]["object_id"]
            == promo["id"]
        )

    def test_a_code_is_unique_per_org_whatever_its_case(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant)
        _promo(tenant, c["id"], "SPRING24")
        before = _state(container)

        twin = tenant.post("/v1/promotion_codes", {"coupon_id": c["id"], "code": "spring24"})
        elsewhere = other_tenant.post(
            "/v1/promotion_codes", {"coupon_id": _coupon(other_tenant)["id"], "code": "spring24"}
        )

        _assert_problem(twin, 409, "promotion_code_taken", "code")
        assert elsewhere.status_code == 201, elsewhere.text
        assert _count(container, PromotionCode, PromotionCode.org_id == tenant.org_id) == 1
        assert _state(container)["codes"][:1] == before["codes"]

    @pytest.mark.parametrize(
        ("fields", "status", "code", "field"),
        [
            ({"code": "spring 24!"}, 422, "invalid_promotion_code", "code"),
            ({"code": "-lead"}, 422, "invalid_promotion_code", "code"),
            ({"code": ""}, 422, "validation_error", "code"),
            ({"max_redemptions": 0}, 422, "invalid_max_redemptions", "max_redemptions"),
            ({"expires_at": "2001-01-01T00:00:00Z"}, 422, "invalid_expires_at", "expires_at"),
            ({"coupon_id": "cpn_missing"}, 404, "resource_missing", "id"),
        ],
    )
    def test_refuses_bad_input_and_changes_nothing(
        self, tenant: Tenant, container: Container, fields: dict[str, Any], status: int, code: str, field: str
    ) -> None:
        c = _coupon(tenant)
        before = _state(container)

        r = tenant.post("/v1/promotion_codes", {"coupon_id": c["id"], "code": "OK", **fields})

        _assert_problem(r, status, code, field)
        assert _state(container) == before

    def test_an_inactive_code_cannot_be_redeemed_until_reactivated(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant)
        promo = _promo(tenant, c["id"], active=False)
        customer = _customer(tenant)
        before = _state(container)

        refused = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"promotion_code": "SPRING24"})
        after_refusal = _state(container)
        reactivated = tenant.patch(f"/v1/promotion_codes/{promo['id']}", {"active": True})
        accepted = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"promotion_code": "SPRING24"})

        _assert_problem(refused, 409, "promotion_code_inactive")
        assert after_refusal == before
        assert reactivated.json()["active"] is True
        assert accepted.status_code == 201, accepted.text

    def test_an_expired_code_is_inactive(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant)
        promo = _promo(tenant, c["id"], expires_at="2099-01-01T00:00:00Z")
        _set(container, PromotionCode, promo["id"], expires_at=datetime(2001, 1, 1, tzinfo=UTC))
        customer = _customer(tenant)
        before = _state(container)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"promotion_code": "spring24"})

        _assert_problem(r, 409, "promotion_code_inactive")
        assert _state(container) == before

    def test_a_code_past_its_redemption_limit_is_refused(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant)
        promo = _promo(tenant, c["id"], max_redemptions=1)
        first, second = _customer(tenant), _customer(tenant, name="Beta")
        tenant.post(f"/v1/customers/{first['id']}/discounts", {"promotion_code": "spring24"})
        before = _state(container)

        r = tenant.post(f"/v1/customers/{second['id']}/discounts", {"promotion_code": "spring24"})

        _assert_problem(r, 409, "promotion_code_redemption_limit")
        assert _state(container) == before
        assert tenant.get(f"/v1/promotion_codes/{promo['id']}").json()["times_redeemed"] == 1

    def test_an_unknown_code_is_not_found(self, tenant: Tenant) -> None:
        customer = _customer(tenant)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"promotion_code": "NOPE"})

        _assert_problem(r, 404, "resource_missing", "promotion_code")


class TestRedemption:
    def test_a_coupon_past_its_redemption_limit_is_refused_and_nothing_changes(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant, max_redemptions=1)
        first, second = _customer(tenant), _customer(tenant, name="Beta")
        ok = tenant.post(f"/v1/customers/{first['id']}/discounts", {"coupon_id": c["id"]})
        before = _state(container)

        r = tenant.post(f"/v1/customers/{second['id']}/discounts", {"coupon_id": c["id"]})

        assert ok.status_code == 201, ok.text
        _assert_problem(r, 409, "coupon_redemption_limit")
        assert _state(container) == before
        coupon = tenant.get(f"/v1/coupons/{c['id']}").json()
        assert (coupon["times_redeemed"], coupon["valid"]) == (1, False)
        assert tenant.get(f"/v1/customers/{second['id']}/discounts").json()["data"] == []

    def test_an_expired_coupon_is_refused(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant, redeem_by="2099-01-01T00:00:00Z")
        _set(container, Coupon, c["id"], redeem_by=datetime(2001, 1, 1, tzinfo=UTC))
        customer = _customer(tenant)
        before = _state(container)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"coupon_id": c["id"]})

        _assert_problem(r, 409, "coupon_expired")
        assert _state(container) == before

    def test_a_fixed_coupon_in_another_currency_is_refused(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(
            tenant,
            percent_off=None,
            amount_off=1000,
            currency="USD",
            duration="forever",
            duration_in_months=None,
        )
        euro = _customer(tenant, currency="EUR")
        undecided = _customer(tenant, name="No currency yet", currency=None)
        before = _state(container)

        refused = tenant.post(f"/v1/customers/{euro['id']}/discounts", {"coupon_id": c["id"]})
        after_refusal = _state(container)
        accepted = tenant.post(f"/v1/customers/{undecided['id']}/discounts", {"coupon_id": c["id"]})

        _assert_problem(refused, 422, "coupon_currency_mismatch", "coupon_id")
        assert after_refusal == before
        assert accepted.status_code == 201, accepted.text

    def test_a_percent_coupon_applies_in_any_currency(self, tenant: Tenant) -> None:
        c = _coupon(tenant)
        yen = _customer(tenant, currency="JPY")

        r = tenant.post(f"/v1/customers/{yen['id']}/discounts", {"coupon_id": c["id"]})

        assert r.status_code == 201, r.text

    @pytest.mark.parametrize(
        "body",
        [{}, {"coupon_id": "cpn_x", "promotion_code": "SPRING24"}],
        ids=["neither", "both"],
    )
    def test_needs_exactly_one_of_coupon_and_code(
        self, tenant: Tenant, container: Container, body: dict[str, str]
    ) -> None:
        customer = _customer(tenant)
        before = _state(container)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", body)

        _assert_problem(r, 422, "coupon_or_promotion_code_required", "coupon_id")
        assert _state(container) == before

    def test_one_coupon_applies_once_per_customer(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant)
        customer = _customer(tenant)
        tenant.post(f"/v1/customers/{customer['id']}/discounts", {"coupon_id": c["id"]})
        before = _state(container)

        r = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"coupon_id": c["id"]})

        _assert_problem(r, 409, "discount_already_applied")
        assert _state(container) == before

    def test_a_repeating_window_ends_after_its_months_on_the_customers_calendar(self, tenant: Tenant) -> None:
        c = _coupon(tenant, duration_in_months=1)
        customer = _customer(tenant, timezone="America/Los_Angeles")

        d = tenant.post(
            f"/v1/customers/{customer['id']}/discounts",
            {"coupon_id": c["id"], "start": "2024-03-01T00:00:00-08:00"},
        ).json()

        assert (d["start"], d["end"]) == ("2024-03-01T08:00:00Z", "2024-04-01T07:00:00Z")
        assert d["applied_period_start"] is None and d["subscription_id"] is None

    def test_a_customer_discount_starts_now_by_default(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant, duration="forever", duration_in_months=None)
        customer = _customer(tenant)
        before = container.clock.now()

        d = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"coupon_id": c["id"]}).json()

        assert before <= datetime.fromisoformat(d["start"]) <= container.clock.now()
        assert d["end"] is None

    def test_removing_a_discount_records_it_and_drops_it_from_the_list(self, tenant: Tenant) -> None:
        c = _coupon(tenant)
        customer = _customer(tenant)
        d = tenant.post(f"/v1/customers/{customer['id']}/discounts", {"coupon_id": c["id"]}).json()

        removed = tenant.delete(f"/v1/discounts/{d['id']}")
        twice = tenant.delete(f"/v1/discounts/{d['id']}")

        assert removed.status_code == 200 and removed.json()["removed_at"] is not None
        assert twice.json() == removed.json()
        assert tenant.get(f"/v1/discounts/{d['id']}").json()["removed_at"] == removed.json()["removed_at"]
        assert tenant.get(f"/v1/customers/{customer['id']}/discounts").json()["data"] == []
        events = tenant.get("/v1/events", params={"object_id": d["id"]}).json()["data"]
        assert [e["type"] for e in events] == ["discount.removed", "discount.created"]
        assert tenant.get(f"/v1/coupons/{c['id']}").json()["times_redeemed"] == 1


class TestSubscriptionDiscounts:
    def test_starts_at_the_current_period_and_lasts_its_months(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant)
        customer = _customer(tenant)
        sub = _subscription(container, tenant.org_id, customer["id"])

        r = tenant.post(f"/v1/subscriptions/{sub}/discounts", {"coupon_id": c["id"]})
        listed = tenant.get(f"/v1/subscriptions/{sub}/discounts").json()["data"]

        assert r.status_code == 201, r.text
        d = r.json()
        assert (d["subscription_id"], d["customer_id"]) == (sub, customer["id"])
        assert (d["start"], d["end"]) == ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
        assert [x["id"] for x in listed] == [d["id"]]
        assert tenant.get(f"/v1/customers/{customer['id']}/discounts").json()["data"] == []

    def test_a_fixed_coupon_must_match_the_subscriptions_currency(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(
            tenant,
            percent_off=None,
            amount_off=1000,
            currency="USD",
            duration="once",
            duration_in_months=None,
        )
        customer = _customer(tenant)
        sub = _subscription(container, tenant.org_id, customer["id"], currency="EUR")
        before = _state(container)

        r = tenant.post(f"/v1/subscriptions/{sub}/discounts", {"coupon_id": c["id"]})

        _assert_problem(r, 422, "coupon_currency_mismatch")
        assert _state(container) == before

    def test_the_seed_contract_bills_8000_then_renews_at_10000(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant, name="20% off the first year")
        customer = _customer(tenant)
        sub = _subscription(container, tenant.org_id, customer["id"])
        tenant.post(f"/v1/subscriptions/{sub}/discounts", {"coupon_id": c["id"]})

        with container.sessions() as s:
            terms = svc.active_discounts(
                _ctx(container, s, tenant), customer_id=customer["id"], subscription_id=sub
            )
        first = DiscountableLine(key=0, amount=1_000_000, billing_period_start=JAN_2024, currency="USD")
        renewal = DiscountableLine(key=0, amount=1_000_000, billing_period_start=JAN_2025, currency="USD")
        on_first = allocate(lines=[first], discounts=terms, currency=USD)
        on_renewal = allocate(lines=[renewal], discounts=terms, currency=USD)

        assert [(d.coupon_id, d.amount) for d in on_first[0]] == [(c["id"], 200_000)]
        assert first.amount - sum(d.amount for d in on_first[0]) == 800_000
        assert on_renewal == [[]]

    def test_active_discounts_are_the_subscriptions_then_the_customers_not_removed(
        self, tenant: Tenant, container: Container
    ) -> None:
        customer = _customer(tenant)
        sub = _subscription(container, tenant.org_id, customer["id"])
        other_sub = _subscription(container, tenant.org_id, customer["id"])
        on_customer = tenant.post(
            f"/v1/customers/{customer['id']}/discounts", {"coupon_id": _coupon(tenant, name="A")["id"]}
        ).json()
        removed = tenant.post(
            f"/v1/customers/{customer['id']}/discounts", {"coupon_id": _coupon(tenant, name="B")["id"]}
        ).json()
        tenant.delete(f"/v1/discounts/{removed['id']}")
        on_sub = tenant.post(
            f"/v1/subscriptions/{sub}/discounts", {"coupon_id": _coupon(tenant, name="C")["id"]}
        ).json()
        tenant.post(
            f"/v1/subscriptions/{other_sub}/discounts", {"coupon_id": _coupon(tenant, name="D")["id"]}
        )

        with container.sessions() as s:
            ctx = _ctx(container, s, tenant)
            for_sub = svc.active_discounts(ctx, customer_id=customer["id"], subscription_id=sub)
            for_invoice = svc.active_discounts(ctx, customer_id=customer["id"], subscription_id=None)

        assert [t.id for t in for_sub] == [on_sub["id"], on_customer["id"]]
        assert [t.id for t in for_invoice] == [on_customer["id"]]
        assert for_sub[0].percent_off == 20 and for_sub[0].end == JAN_2025

    def test_a_once_discount_remembers_the_period_it_was_used_on(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _coupon(tenant, duration="once", duration_in_months=None)
        customer = _customer(tenant)
        sub = _subscription(container, tenant.org_id, customer["id"])
        d = tenant.post(f"/v1/subscriptions/{sub}/discounts", {"coupon_id": c["id"]}).json()

        with container.sessions() as s:
            ctx = _ctx(container, s, tenant)
            svc.set_applied_period(ctx, d["id"], period_start=JAN_2024)
            svc.set_applied_period(ctx, d["id"], period_start=JAN_2025)
            s.commit()
            (terms,) = svc.active_discounts(ctx, customer_id=customer["id"], subscription_id=sub)

        assert terms.once_period_start == JAN_2024
        assert tenant.get(f"/v1/discounts/{d['id']}").json()["applied_period_start"] == "2024-01-01T00:00:00Z"


class TestTenantIsolation:
    def test_another_orgs_coupon_and_code_are_not_found(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        theirs = _coupon(other_tenant, max_redemptions=1)
        _promo(other_tenant, theirs["id"], "THEIRS")
        mine = _customer(tenant)
        before = _state(container)

        reads = [
            tenant.get(f"/v1/coupons/{theirs['id']}"),
            tenant.patch(f"/v1/coupons/{theirs['id']}", {"name": "Hijacked"}),
            tenant.delete(f"/v1/coupons/{theirs['id']}"),
        ]
        by_id = tenant.post(f"/v1/customers/{mine['id']}/discounts", {"coupon_id": theirs["id"]})
        by_code = tenant.post(f"/v1/customers/{mine['id']}/discounts", {"promotion_code": "theirs"})
        code_for_theirs = tenant.post("/v1/promotion_codes", {"coupon_id": theirs["id"], "code": "MINE"})

        for r in [*reads, by_id, by_code, code_for_theirs]:
            _assert_problem(r, 404, "resource_missing")
        assert _state(container) == before
        assert tenant.get("/v1/coupons").json()["data"] == []
        assert tenant.get("/v1/promotion_codes").json()["data"] == []


class TestConcurrentRedemptions:
    def test_concurrent_redemptions_never_pass_the_limit(self, tenant: Tenant, container: Container) -> None:
        c = _coupon(tenant, max_redemptions=3)
        customers = [_customer(tenant, name=f"C{i}")["id"] for i in range(10)]

        with (
            live_server(container) as url,
            httpx.Client(base_url=url, headers=tenant.headers, timeout=60) as http,
            ThreadPoolExecutor(max_workers=10) as pool,
        ):
            responses = list(
                pool.map(
                    lambda cid: http.post(f"/v1/customers/{cid}/discounts", json={"coupon_id": c["id"]}),
                    customers,
                )
            )

        assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 7
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"coupon_redemption_limit"}
        assert tenant.get(f"/v1/coupons/{c['id']}").json()["times_redeemed"] == 3
        assert _count(container, Discount) == 3

"""The catalog through the API: products, prices in every pricing model, plans and their versions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.domain.errors import InvalidInput, NotFound
from revflow.services.catalog import plan_prices
from revflow.services.context import Actor, Ctx
from revflow.storage.models import AuditEvent, Event, Plan, PlanVersion, PlanVersionItem, Price, Product
from tests.conftest import Tenant


def _count(container: Container, model: Any) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _counts(container: Container) -> dict[str, int]:
    models = (Product, Price, Plan, PlanVersion, PlanVersionItem, AuditEvent, Event)
    return {m.__name__: _count(container, m) for m in models}


def _product(t: Tenant, **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/products", {"name": "Analytics", **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _price(t: Tenant, product_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "product_id": product_id,
        "currency": "USD",
        "type": "recurring",
        "interval": "month",
        "model": "per_unit",
        "unit_amount": "1000",
        **fields,
    }
    r = t.post("/v1/prices", {k: v for k, v in body.items() if v is not None})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _plan(t: Tenant, code: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/plans", {"code": code, "name": code.title(), "items": list(items), **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, r.text
    return body


TIERS = [
    {"up_to": 100, "unit_amount": "100", "flat_amount": "0"},
    {"up_to": 1000, "unit_amount": "0.5", "flat_amount": "2500"},
    {"up_to": None, "unit_amount": "0.0004", "flat_amount": "0"},
]


class TestProducts:
    def test_creates_updates_and_archives_a_product(self, tenant: Tenant) -> None:
        created = _product(tenant, description="Dashboards", metadata={"team": "data", "tier": "gold"})

        patched = tenant.patch(
            f"/v1/products/{created['id']}",
            {"name": "Analytics Pro", "metadata": {"tier": None, "owner": "ana"}, "active": False},
        )
        fetched = tenant.get(f"/v1/products/{created['id']}").json()
        archived = tenant.get("/v1/products", params={"active": "false"}).json()["data"]
        live = tenant.get("/v1/products", params={"active": "true"}).json()["data"]

        assert created["id"].startswith("prod_")
        assert (created["object"], created["name"], created["active"]) == ("product", "Analytics", True)
        assert created["description"] == "Dashboards"
        assert patched.status_code == 200, patched.text
        assert fetched == patched.json()
        assert (fetched["name"], fetched["description"], fetched["active"]) == (
            "Analytics Pro",
            "Dashboards",
            False,
        )
        assert fetched["metadata"] == {"team": "data", "owner": "ana"}
        assert [p["id"] for p in archived] == [created["id"]]
        assert live == []

    def test_an_archived_product_takes_no_new_price(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)
        tenant.patch(f"/v1/products/{product['id']}", {"active": False})

        r = tenant.post(
            "/v1/prices",
            {
                "product_id": product["id"],
                "currency": "USD",
                "type": "one_time",
                "model": "flat",
                "flat_amount": "1",
            },
        )

        _problem(r, 422, "product_inactive")
        assert _count(container, Price) == 0

    def test_records_audit_rows_and_events(self, tenant: Tenant) -> None:
        product = _product(tenant)
        tenant.patch(f"/v1/products/{product['id']}", {"name": "Renamed"})

        events = tenant.get("/v1/events", params={"object_id": product["id"]}).json()["data"]
        audit = tenant.get("/v1/audit_events", params={"object_id": product["id"]}).json()["data"]

        assert [e["type"] for e in events] == ["product.updated", "product.created"]
        assert events[0]["data"]["object"]["name"] == "Renamed"
        assert [a["action"] for a in audit] == ["product.update", "product.create"]
        assert audit[0]["changes"] == {"name": {"before": "Analytics", "after": "Renamed"}}

    def test_a_name_may_not_be_null(self, tenant: Tenant) -> None:
        product = _product(tenant)

        r = tenant.patch(f"/v1/products/{product['id']}", {"name": None})

        _problem(r, 422, "validation_error")
        assert tenant.get(f"/v1/products/{product['id']}").json()["name"] == "Analytics"


class TestPricingModels:
    def test_a_flat_recurring_price(self, tenant: Tenant) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], model="flat", unit_amount=None, flat_amount="4900")

        assert price["id"].startswith("price_")
        assert (price["object"], price["product_id"], price["currency"]) == ("price", product["id"], "USD")
        assert (price["type"], price["model"]) == ("recurring", "flat")
        assert (price["flat_amount"], price["unit_amount"]) == ("4900", "0")
        assert price["recurring"] == {"interval": "month", "interval_count": 1}
        assert (price["billing_timing"], price["metric_code"], price["active"]) == ("in_advance", None, True)
        assert (price["tiers"], price["package_size"], price["package_rounding"]) == ([], None, None)

    def test_a_sub_cent_per_unit_price_stays_exact(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)

        per_call = _price(tenant, product["id"], unit_amount="0.04", nickname="API calls")
        tiny = _price(tenant, product["id"], unit_amount="0.0004")
        fetched = tenant.get(f"/v1/prices/{per_call['id']}").json()

        assert per_call["unit_amount"] == fetched["unit_amount"] == "0.04"
        assert tiny["unit_amount"] == "0.0004"
        assert fetched == per_call
        with container.sessions() as s:
            stored = s.get(Price, per_call["id"])
            assert stored is not None and stored.unit_amount == Decimal("0.04")

    def test_amounts_come_back_in_their_shortest_exact_form(self, tenant: Tenant) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], unit_amount="1.5000")

        assert price["unit_amount"] == "1.5"

    @pytest.mark.parametrize("model", ["graduated", "volume"])
    def test_a_tiered_price_keeps_its_tiers(self, tenant: Tenant, model: str) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], model=model, unit_amount=None, tiers=TIERS)
        fetched = tenant.get(f"/v1/prices/{price['id']}").json()

        assert price["model"] == model
        assert price["tiers"] == fetched["tiers"] == TIERS

    def test_a_package_price_with_block_size_and_rounding(self, tenant: Tenant) -> None:
        product = _product(tenant)

        up = _price(tenant, product["id"], model="package", unit_amount="500", package_size=20)
        down = _price(
            tenant,
            product["id"],
            model="package",
            unit_amount="500",
            package_size=1000,
            package_rounding="down",
        )

        assert (up["model"], up["unit_amount"], up["package_size"], up["package_rounding"]) == (
            "package",
            "500",
            20,
            "up",
        )
        assert (down["package_size"], down["package_rounding"]) == (1000, "down")

    def test_a_flat_fee_plus_per_unit_price(self, tenant: Tenant) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], model="flat_per_unit", flat_amount="9900", unit_amount="0.25")

        assert (price["model"], price["flat_amount"], price["unit_amount"]) == (
            "flat_per_unit",
            "9900",
            "0.25",
        )

    def test_a_usage_price_points_at_a_metric_and_bills_in_arrears(self, tenant: Tenant) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], unit_amount="0.04", metric_code="api_calls")

        assert (price["metric_code"], price["billing_timing"]) == ("api_calls", "in_arrears")
        assert price["recurring"] == {"interval": "month", "interval_count": 1}

    def test_a_licensed_price_may_bill_in_arrears(self, tenant: Tenant) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], billing_timing="in_arrears")

        assert (price["billing_timing"], price["metric_code"]) == ("in_arrears", None)

    def test_a_one_time_fee_has_no_recurring_cycle(self, tenant: Tenant) -> None:
        product = _product(tenant, name="Onboarding")

        fee = _price(
            tenant,
            product["id"],
            type="one_time",
            interval=None,
            model="flat",
            unit_amount=None,
            flat_amount="150000",
        )

        assert (fee["type"], fee["recurring"], fee["billing_timing"]) == ("one_time", None, "in_advance")

    @pytest.mark.parametrize(
        ("interval", "count"), [("day", 365), ("week", 2), ("month", 12), ("quarter", 1), ("year", 3)]
    )
    def test_every_interval_with_a_count(self, tenant: Tenant, interval: str, count: int) -> None:
        product = _product(tenant)

        price = _price(tenant, product["id"], interval=interval, interval_count=count)

        assert price["recurring"] == {"interval": interval, "interval_count": count}

    def test_records_price_created_with_the_price(self, tenant: Tenant) -> None:
        product = _product(tenant)
        price = _price(tenant, product["id"], unit_amount="0.04")

        events = tenant.get("/v1/events", params={"object_id": price["id"]}).json()["data"]

        assert [e["type"] for e in events] == ["price.created"]
        assert events[0]["data"]["object"] == price


INVALID_TERMS = {
    "negative unit amount": {"unit_amount": "-1"},
    "per unit with tiers": {"tiers": TIERS},
    "per unit with a flat amount": {"flat_amount": "100"},
    "flat with a unit amount": {"model": "flat", "flat_amount": "100"},
    "graduated without tiers": {"model": "graduated", "unit_amount": None},
    "tiers that do not ascend": {
        "model": "volume",
        "unit_amount": None,
        "tiers": [
            {"up_to": 100, "unit_amount": "10"},
            {"up_to": 50, "unit_amount": "5"},
            {"up_to": None, "unit_amount": "1"},
        ],
    },
    "a bounded last tier": {
        "model": "graduated",
        "unit_amount": None,
        "tiers": [{"up_to": 10, "unit_amount": "1"}],
    },
    "an open tier before the last": {
        "model": "graduated",
        "unit_amount": None,
        "tiers": [{"up_to": None, "unit_amount": "1"}, {"up_to": None, "unit_amount": "2"}],
    },
    "a tier up to zero": {
        "model": "graduated",
        "unit_amount": None,
        "tiers": [{"up_to": 0, "unit_amount": "1"}, {"up_to": None, "unit_amount": "2"}],
    },
    "package without a size": {"model": "package", "unit_amount": "500"},
    "package of size zero": {"model": "package", "unit_amount": "500", "package_size": 0},
    "package rounding on per unit": {"package_rounding": "down"},
}


class TestInvalidPrices:
    @pytest.mark.parametrize("fields", INVALID_TERMS.values(), ids=INVALID_TERMS.keys())
    def test_inconsistent_terms_answer_invalid_pricing_and_create_nothing(
        self, tenant: Tenant, container: Container, fields: dict[str, Any]
    ) -> None:
        product = _product(tenant)
        before = _counts(container)
        body = {
            "product_id": product["id"],
            "currency": "USD",
            "type": "recurring",
            "interval": "month",
            "model": "per_unit",
            "unit_amount": "1000",
            **fields,
        }

        r = tenant.post("/v1/prices", {k: v for k, v in body.items() if v is not None})

        _problem(r, 422, "invalid_pricing")
        assert _counts(container) == before
        assert before["Price"] == 0

    @pytest.mark.parametrize(
        ("fields", "code", "field"),
        [
            ({"interval": None}, "invalid_interval", "interval"),
            ({"type": "one_time"}, "invalid_interval", "interval"),
            ({"type": "one_time", "interval": None, "interval_count": 1}, "invalid_interval", "interval"),
            ({"interval_count": 13}, "invalid_interval", "interval_count"),
            ({"interval": "week", "interval_count": 0}, "invalid_interval", "interval_count"),
            ({"interval": "year", "interval_count": 4}, "invalid_interval", "interval_count"),
            (
                {"type": "one_time", "interval": None, "metric_code": "calls"},
                "invalid_usage_price",
                "metric_code",
            ),
            (
                {"model": "flat", "unit_amount": None, "flat_amount": "1", "metric_code": "calls"},
                "invalid_usage_price",
                "metric_code",
            ),
            (
                {"type": "one_time", "interval": None, "billing_timing": "in_arrears"},
                "invalid_billing_timing",
                "billing_timing",
            ),
        ],
    )
    def test_cycle_and_usage_rules_are_enforced(
        self, tenant: Tenant, container: Container, fields: dict[str, Any], code: str, field: str
    ) -> None:
        product = _product(tenant)
        body = {
            "product_id": product["id"],
            "currency": "USD",
            "type": "recurring",
            "interval": "month",
            "model": "per_unit",
            "unit_amount": "1000",
            **fields,
        }

        r = tenant.post("/v1/prices", {k: v for k, v in body.items() if v is not None})

        problem = _problem(r, 422, code)
        assert problem["errors"][0]["field"] == field
        assert _count(container, Price) == 0

    def test_amounts_must_be_decimal_strings(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)

        number = tenant.post(
            "/v1/prices",
            {
                "product_id": product["id"],
                "currency": "USD",
                "type": "one_time",
                "model": "per_unit",
                "unit_amount": 0.04,
            },
        )
        garbage = tenant.post(
            "/v1/prices",
            {
                "product_id": product["id"],
                "currency": "USD",
                "type": "one_time",
                "model": "per_unit",
                "unit_amount": "1e3",
            },
        )

        assert _problem(number, 422, "validation_error")["errors"][0]["field"] == "unit_amount"
        assert _problem(garbage, 422, "validation_error")["errors"][0]["field"] == "unit_amount"
        assert _count(container, Price) == 0

    def test_a_price_of_another_orgs_product_answers_404(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        theirs = _product(other_tenant)

        r = tenant.post(
            "/v1/prices",
            {
                "product_id": theirs["id"],
                "currency": "USD",
                "type": "one_time",
                "model": "flat",
                "flat_amount": "1",
            },
        )

        _problem(r, 404, "resource_missing")
        assert _count(container, Price) == 0


class TestPriceUpdates:
    def test_only_nickname_metadata_and_active_change(self, tenant: Tenant) -> None:
        product = _product(tenant)
        price = _price(tenant, product["id"], unit_amount="0.04", metadata={"sku": "A1"})

        terms = tenant.patch(f"/v1/prices/{price['id']}", {"unit_amount": "0.05"})
        patched = tenant.patch(
            f"/v1/prices/{price['id']}", {"nickname": "Calls", "metadata": {"sku": "B2"}, "active": False}
        )

        _problem(terms, 422, "validation_error")
        assert patched.status_code == 200, patched.text
        after = patched.json()
        assert (after["nickname"], after["metadata"], after["active"]) == ("Calls", {"sku": "B2"}, False)
        assert {k: v for k, v in after.items() if k not in {"nickname", "metadata", "active"}} == {
            k: v for k, v in price.items() if k not in {"nickname", "metadata", "active"}
        }
        events = tenant.get("/v1/events", params={"object_id": price["id"]}).json()["data"]
        assert [e["type"] for e in events] == ["price.updated", "price.created"]
        audit = tenant.get("/v1/audit_events", params={"object_id": price["id"]}).json()["data"]
        assert audit[0]["changes"]["active"] == {"before": True, "after": False}


class TestListPrices:
    def test_filters_by_product_currency_active_and_type(self, tenant: Tenant) -> None:
        seats, setup = _product(tenant, name="Seats"), _product(tenant, name="Setup")
        usd = _price(tenant, seats["id"])
        eur = _price(tenant, seats["id"], currency="eur")
        fee = _price(tenant, setup["id"], type="one_time", interval=None)
        old = _price(tenant, seats["id"])
        tenant.patch(f"/v1/prices/{old['id']}", {"active": False})

        def ids(**params: Any) -> list[str]:
            r = tenant.get("/v1/prices", params=params)
            assert r.status_code == 200, r.text
            return [p["id"] for p in r.json()["data"]]

        assert ids() == [old["id"], fee["id"], eur["id"], usd["id"]]
        assert ids(product_id=seats["id"]) == [old["id"], eur["id"], usd["id"]]
        assert ids(currency="EUR") == [eur["id"]]
        assert ids(currency="usd", active="true") == [fee["id"], usd["id"]]
        assert ids(active="false") == [old["id"]]
        assert ids(type="one_time") == [fee["id"]]

    def test_pages_through_prices_newest_first(self, tenant: Tenant) -> None:
        product = _product(tenant)
        made = [_price(tenant, product["id"], unit_amount=str(n))["id"] for n in range(1, 6)]
        newest_first = list(reversed(made))

        first = tenant.get("/v1/prices", params={"limit": 2}).json()
        second = tenant.get(
            "/v1/prices", params={"limit": 2, "starting_after": first["data"][-1]["id"]}
        ).json()
        third = tenant.get(
            "/v1/prices", params={"limit": 2, "starting_after": second["data"][-1]["id"]}
        ).json()
        back = tenant.get("/v1/prices", params={"limit": 2, "ending_before": third["data"][0]["id"]}).json()

        assert [p["id"] for p in first["data"]] == newest_first[:2] and first["has_more"] is True
        assert [p["id"] for p in second["data"]] == newest_first[2:4] and second["has_more"] is True
        assert [p["id"] for p in third["data"]] == newest_first[4:] and third["has_more"] is False
        assert [p["id"] for p in back["data"]] == newest_first[2:4]
        assert first["url"] == "/v1/prices"


class TestPlans:
    def test_creates_version_1_with_expanded_prices(self, tenant: Tenant) -> None:
        product = _product(tenant)
        base = _price(tenant, product["id"], model="flat", unit_amount=None, flat_amount="4900")
        seats = _price(tenant, product["id"], unit_amount="1500")

        plan = _plan(
            tenant,
            "pro",
            {"price_id": base["id"]},
            {"price_id": seats["id"], "quantity": 5},
            description="For teams",
            metadata={"segment": "smb"},
        )

        assert plan["id"].startswith("plan_")
        assert (plan["object"], plan["code"], plan["name"], plan["description"]) == (
            "plan",
            "pro",
            "Pro",
            "For teams",
        )
        assert (plan["current_version"], plan["active"], plan["currencies"]) == (1, True, ["USD"])
        assert plan["items"] == [{"price": base, "quantity": "1"}, {"price": seats, "quantity": "5"}]
        assert plan["metadata"] == {"segment": "smb"}
        assert tenant.get(f"/v1/plans/{plan['id']}").json() == plan

    def test_a_new_version_leaves_version_1_intact(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)
        old = _price(tenant, product["id"], unit_amount="1500")
        new = _price(tenant, product["id"], unit_amount="1800")
        plan = _plan(tenant, "team", {"price_id": old["id"], "quantity": 3})
        v1 = tenant.get(f"/v1/plans/{plan['id']}/versions/1").json()

        r = tenant.post(
            f"/v1/plans/{plan['id']}/versions", {"items": [{"price_id": new["id"], "quantity": 3}]}
        )
        current = tenant.get(f"/v1/plans/{plan['id']}").json()
        v1_after = tenant.get(f"/v1/plans/{plan['id']}/versions/1").json()
        versions = tenant.get(f"/v1/plans/{plan['id']}/versions").json()

        assert r.status_code == 201, r.text
        v2 = r.json()
        assert (v2["object"], v2["plan_id"], v2["version"]) == ("plan_version", plan["id"], 2)
        assert [(i["price"]["id"], i["quantity"]) for i in v2["items"]] == [(new["id"], "3")]
        assert (current["current_version"], current["current_version_id"]) == (2, v2["id"])
        assert [i["price"]["unit_amount"] for i in current["items"]] == ["1800"]
        assert v1_after == v1
        assert [i["price"]["id"] for i in v1_after["items"]] == [old["id"]]
        assert v1["id"] == plan["current_version_id"]
        assert [v["version"] for v in versions["data"]] == [2, 1]
        assert (_count(container, PlanVersion), _count(container, PlanVersionItem)) == (2, 2)

    def test_a_new_version_is_audited_and_announced(self, tenant: Tenant) -> None:
        product = _product(tenant)
        old, new = _price(tenant, product["id"]), _price(tenant, product["id"], unit_amount="1200")
        plan = _plan(tenant, "team", {"price_id": old["id"]})

        tenant.post(f"/v1/plans/{plan['id']}/versions", {"items": [{"price_id": new["id"], "quantity": 2}]})

        events = tenant.get("/v1/events", params={"object_id": plan["id"]}).json()["data"]
        audit = tenant.get("/v1/audit_events", params={"object_id": plan["id"]}).json()["data"]
        assert [e["type"] for e in events] == ["plan.version_created", "plan.created"]
        assert events[0]["data"]["object"]["current_version"] == 2
        assert [a["action"] for a in audit] == ["plan.version_create", "plan.create"]
        assert audit[0]["changes"] == {
            "version": {"before": 1, "after": 2},
            "items": {
                "before": [{"price_id": old["id"], "quantity": "1"}],
                "after": [{"price_id": new["id"], "quantity": "2"}],
            },
        }

    def test_renaming_a_plan_makes_no_new_version(self, tenant: Tenant) -> None:
        product = _product(tenant)
        plan = _plan(tenant, "pro", {"price_id": _price(tenant, product["id"])["id"]})

        r = tenant.patch(
            f"/v1/plans/{plan['id']}", {"name": "Professional", "description": "New", "metadata": {"a": "b"}}
        )
        versions = tenant.get(f"/v1/plans/{plan['id']}/versions").json()["data"]
        events = tenant.get("/v1/events", params={"object_id": plan["id"]}).json()["data"]

        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["description"], r.json()["metadata"]) == (
            "Professional",
            "New",
            {"a": "b"},
        )
        assert (r.json()["current_version"], r.json()["items"]) == (1, plan["items"])
        assert [v["version"] for v in versions] == [1]
        assert [e["type"] for e in events] == ["plan.updated", "plan.created"]

    def test_an_archived_plan_is_listed_apart(self, tenant: Tenant) -> None:
        product = _product(tenant)
        price = _price(tenant, product["id"])
        kept, dropped = (
            _plan(tenant, "kept", {"price_id": price["id"]}),
            _plan(tenant, "dropped", {"price_id": price["id"]}),
        )

        tenant.patch(f"/v1/plans/{dropped['id']}", {"active": False})

        assert [p["id"] for p in tenant.get("/v1/plans", params={"active": "true"}).json()["data"]] == [
            kept["id"]
        ]
        assert [p["id"] for p in tenant.get("/v1/plans", params={"active": "false"}).json()["data"]] == [
            dropped["id"]
        ]
        assert [p["id"] for p in tenant.get("/v1/plans", params={"code": "kept"}).json()["data"]] == [
            kept["id"]
        ]

    def test_holds_prices_in_several_currencies(self, tenant: Tenant) -> None:
        product, setup = _product(tenant), _product(tenant, name="Setup")
        usd = _price(tenant, product["id"], currency="USD", unit_amount="1000")
        eur = _price(tenant, product["id"], currency="EUR", interval="year", unit_amount="9000")
        usd_fee = _price(
            tenant,
            setup["id"],
            type="one_time",
            interval=None,
            model="flat",
            unit_amount=None,
            flat_amount="5000",
        )

        plan = _plan(
            tenant, "global", {"price_id": usd["id"]}, {"price_id": eur["id"]}, {"price_id": usd_fee["id"]}
        )

        assert plan["currencies"] == ["EUR", "USD"]
        assert [i["price"]["id"] for i in plan["items"]] == [usd["id"], eur["id"], usd_fee["id"]]

    def test_refuses_two_intervals_in_one_currency(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)
        monthly = _price(tenant, product["id"])
        yearly = _price(tenant, product["id"], interval="year")
        every_two_months = _price(tenant, product["id"], interval_count=2)
        before = _counts(container)

        mixed = tenant.post(
            "/v1/plans",
            {"code": "x", "name": "X", "items": [{"price_id": monthly["id"]}, {"price_id": yearly["id"]}]},
        )
        counted = tenant.post(
            "/v1/plans",
            {
                "code": "x",
                "name": "X",
                "items": [{"price_id": monthly["id"]}, {"price_id": every_two_months["id"]}],
            },
        )

        _problem(mixed, 422, "interval_mismatch")
        _problem(counted, 422, "interval_mismatch")
        assert _counts(container) == before

    def test_refuses_a_currency_with_only_one_time_prices(self, tenant: Tenant, container: Container) -> None:
        product = _product(tenant)
        monthly = _price(tenant, product["id"])
        eur_fee = _price(tenant, product["id"], currency="EUR", type="one_time", interval=None)

        r = tenant.post(
            "/v1/plans",
            {"code": "x", "name": "X", "items": [{"price_id": monthly["id"]}, {"price_id": eur_fee["id"]}]},
        )

        _problem(r, 422, "recurring_price_required")
        assert _count(container, Plan) == 0

    def test_refuses_an_archived_price_in_a_new_plan_or_version(
        self, tenant: Tenant, container: Container
    ) -> None:
        product = _product(tenant)
        live, archived = _price(tenant, product["id"]), _price(tenant, product["id"])
        plan = _plan(tenant, "pro", {"price_id": live["id"]})
        tenant.patch(f"/v1/prices/{archived['id']}", {"active": False})
        before = _counts(container)

        new_plan = tenant.post(
            "/v1/plans", {"code": "x", "name": "X", "items": [{"price_id": archived["id"]}]}
        )
        new_version = tenant.post(
            f"/v1/plans/{plan['id']}/versions", {"items": [{"price_id": archived["id"]}]}
        )

        assert _problem(new_plan, 422, "price_inactive")["errors"][0]["field"] == "items[0].price_id"
        _problem(new_version, 422, "price_inactive")
        assert _counts(container) == before
        assert tenant.get(f"/v1/plans/{plan['id']}").json()["current_version"] == 1

    def test_archiving_a_price_keeps_it_on_existing_versions(self, tenant: Tenant) -> None:
        product = _product(tenant)
        price = _price(tenant, product["id"])
        plan = _plan(tenant, "pro", {"price_id": price["id"]})

        tenant.patch(f"/v1/prices/{price['id']}", {"active": False})

        items = tenant.get(f"/v1/plans/{plan['id']}").json()["items"]
        assert [(i["price"]["id"], i["price"]["active"]) for i in items] == [(price["id"], False)]

    def test_a_code_is_unique_within_an_organization(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        price = _price(tenant, _product(tenant)["id"])
        first = _plan(tenant, "pro", {"price_id": price["id"]})

        again = tenant.post(
            "/v1/plans", {"code": "pro", "name": "Again", "items": [{"price_id": price["id"]}]}
        )
        elsewhere = _plan(
            other_tenant, "pro", {"price_id": _price(other_tenant, _product(other_tenant)["id"])["id"]}
        )

        _problem(again, 409, "plan_code_taken")
        assert elsewhere["code"] == first["code"] == "pro"
        assert _count(container, Plan) == 2

    def test_refuses_empty_and_duplicate_price_lists(self, tenant: Tenant, container: Container) -> None:
        price = _price(tenant, _product(tenant)["id"])

        empty = tenant.post("/v1/plans", {"code": "x", "name": "X", "items": []})
        twice = tenant.post(
            "/v1/plans",
            {"code": "x", "name": "X", "items": [{"price_id": price["id"]}, {"price_id": price["id"]}]},
        )

        _problem(empty, 422, "plan_items_required")
        assert _problem(twice, 422, "duplicate_price")["errors"][0]["field"] == "items[1].price_id"
        assert _count(container, Plan) == 0

    def test_another_orgs_price_in_a_plan_answers_404_and_creates_nothing(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        mine = _price(tenant, _product(tenant)["id"])
        theirs = _price(other_tenant, _product(other_tenant)["id"])
        plan = _plan(tenant, "pro", {"price_id": mine["id"]})
        before = _counts(container)

        created = tenant.post("/v1/plans", {"code": "x", "name": "X", "items": [{"price_id": theirs["id"]}]})
        versioned = tenant.post(f"/v1/plans/{plan['id']}/versions", {"items": [{"price_id": theirs["id"]}]})

        assert _problem(created, 404, "resource_missing")["errors"][0]["field"] == "items[0].price_id"
        _problem(versioned, 404, "resource_missing")
        assert _counts(container) == before

    def test_an_unknown_version_answers_404(self, tenant: Tenant) -> None:
        plan = _plan(tenant, "pro", {"price_id": _price(tenant, _product(tenant)["id"])["id"]})

        r = tenant.get(f"/v1/plans/{plan['id']}/versions/2")

        _problem(r, 404, "resource_missing")


class TestPlanPricesForBilling:
    def test_returns_a_versions_prices_in_one_currency_with_quantities(
        self, tenant: Tenant, container: Container
    ) -> None:
        product = _product(tenant)
        usd, eur = (
            _price(tenant, product["id"]),
            _price(tenant, product["id"], currency="EUR", unit_amount="0.04"),
        )
        seats = _price(tenant, product["id"], unit_amount="700")
        plan = _plan(
            tenant,
            "pro",
            {"price_id": usd["id"]},
            {"price_id": eur["id"]},
            {"price_id": seats["id"], "quantity": 10},
        )
        tenant.post(f"/v1/plans/{plan['id']}/versions", {"items": [{"price_id": eur["id"]}]})

        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=container.clock)
            v1_usd = plan_prices(ctx, plan_version_id=plan["current_version_id"], currency="usd")
            v1_eur = plan_prices(ctx, plan_version_id=plan["current_version_id"], currency="EUR")
            found = [(p.id, p.unit_amount, q) for p, q in v1_usd + v1_eur]

        assert found == [
            (usd["id"], Decimal(1000), Decimal(1)),
            (seats["id"], Decimal(700), Decimal(10)),
            (eur["id"], Decimal("0.04"), Decimal(1)),
        ]

    def test_refuses_a_currency_the_version_does_not_offer(
        self, tenant: Tenant, container: Container
    ) -> None:
        plan = _plan(tenant, "pro", {"price_id": _price(tenant, _product(tenant)["id"])["id"]})

        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=container.clock)
            with pytest.raises(InvalidInput) as refused:
                plan_prices(ctx, plan_version_id=plan["current_version_id"], currency="JPY")
            other = Ctx(session=s, org_id="org_other", actor=Actor("cli"), clock=container.clock)
            with pytest.raises(NotFound):
                plan_prices(other, plan_version_id=plan["current_version_id"], currency="USD")

        assert refused.value.code == "currency_not_offered"

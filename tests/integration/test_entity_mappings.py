"""Entity mappings: first-class links between Revflow objects and their counterparts elsewhere."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.services import entity_mappings
from revflow.services.context import Actor, Ctx
from revflow.storage.engine import alembic_config
from revflow.storage.hub_models import EntityMapping
from revflow.storage.models import Customer, CustomerExternalId, Organization
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price


def _mappings(t: Tenant, **params: str) -> list[tuple[str, str, str, str, str]]:
    data = t.get("/v1/entity_mappings", params={"limit": 100, **params}).json()["data"]
    return sorted(
        (m["object_type"], m["object_id"], m["system"], m["external_type"], m["external_id"]) for m in data
    )


class TestEntityMappings:
    def test_a_customer_mapping_and_the_customers_external_ids_stay_one(self, tenant: Tenant) -> None:
        cus = tenant.post("/v1/customers", {"name": "Acme", "external_ids": {"stripe": "cus_X1"}}).json()

        created = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "customer", "object_id": cus["id"], "system": "hubspot", "external_id": "901"},
        )
        linked = tenant.get(f"/v1/customers/{cus['id']}").json()
        found = tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "901"})
        moved = tenant.patch(f"/v1/entity_mappings/{created.json()['id']}", {"external_id": "902"})
        after_move = tenant.get(f"/v1/customers/{cus['id']}").json()["external_ids"]
        tenant.patch(f"/v1/customers/{cus['id']}", {"external_ids": {"stripe": None, "salesforce": "001A"}})
        via_customer = _mappings(tenant, object_id=cus["id"])
        deleted = tenant.delete(f"/v1/entity_mappings/{created.json()['id']}")
        after_delete = tenant.get(f"/v1/customers/{cus['id']}").json()["external_ids"]

        assert created.status_code == 201, created.text
        assert (created.json()["external_type"], created.json()["external_id"]) == ("company", "901")
        assert linked["external_ids"] == {"hubspot": "901", "stripe": "cus_X1"}
        assert found.json()["id"] == cus["id"]
        assert moved.json()["external_id"] == "902" and after_move == {"hubspot": "902", "stripe": "cus_X1"}
        assert via_customer == [
            ("customer", cus["id"], "hubspot", "company", "902"),
            ("customer", cus["id"], "salesforce", "account", "001A"),
        ]
        assert deleted.json() == {"id": created.json()["id"], "object": "entity_mapping", "deleted": True}
        assert after_delete == {"salesforce": "001A"}
        assert _mappings(tenant) == [("customer", cus["id"], "salesforce", "account", "001A")]

    def test_other_objects_map_to_their_own_external_types(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = tenant.post("/v1/customers", {"name": "Acme", "currency": "USD"}).json()
        price = make_price(container, tenant.org_id, flat=1000)
        sub = tenant.post(
            "/v1/subscriptions",
            {"customer_id": cus["id"], "items": [{"price_id": price}], "start_at": "2100-01-01T00:00:00Z"},
        ).json()

        deal = tenant.post(
            "/v1/entity_mappings",
            {
                "object_type": "subscription",
                "object_id": sub["id"],
                "system": "hubspot",
                "external_type": "deal",
                "external_id": "D-7",
            },
        )
        opportunity = tenant.post(
            "/v1/entity_mappings",
            {
                "object_type": "subscription",
                "object_id": sub["id"],
                "system": "salesforce",
                "external_type": "opportunity",
                "external_id": "006X",
            },
        )
        missing = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "subscription", "object_id": "sub_nope", "system": "hubspot", "external_id": "1"},
        )
        unknown_type = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "widget", "object_id": sub["id"], "system": "hubspot", "external_id": "1"},
        )

        assert (deal.status_code, opportunity.status_code) == (201, 201)
        assert _mappings(tenant, system="hubspot", external_id="D-7") == [
            ("subscription", sub["id"], "hubspot", "deal", "D-7")
        ]
        assert (missing.status_code, missing.json()["code"]) == (404, "resource_missing")
        assert (unknown_type.status_code, unknown_type.json()["code"]) == (422, "invalid_input")
        assert tenant.get(f"/v1/customers/{cus['id']}").json()["external_ids"] == {}

    def test_linking_an_external_object_twice_is_refused_and_changes_nothing(self, tenant: Tenant) -> None:
        a = tenant.post("/v1/customers", {"name": "A", "external_ids": {"hubspot": "100"}}).json()
        b = tenant.post("/v1/customers", {"name": "B"}).json()
        before = _mappings(tenant)

        same_company = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "customer", "object_id": b["id"], "system": "hubspot", "external_id": "100"},
        )
        second_company = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "customer", "object_id": a["id"], "system": "hubspot", "external_id": "200"},
        )
        again = tenant.post(
            "/v1/entity_mappings",
            {"object_type": "customer", "object_id": a["id"], "system": "hubspot", "external_id": "100"},
        )

        assert (same_company.status_code, same_company.json()["code"]) == (409, "mapping_conflict")
        assert a["id"] in same_company.json()["detail"]
        assert (second_company.status_code, second_company.json()["code"]) == (409, "mapping_conflict")
        assert again.status_code == 201 and again.json()["object_id"] == a["id"]  # the same link: no-op
        assert _mappings(tenant) == before == [("customer", a["id"], "hubspot", "company", "100")]
        assert tenant.get(f"/v1/customers/{b['id']}").json()["external_ids"] == {}

    def test_a_sync_that_meets_a_conflict_raises_an_alert_instead(
        self, tenant: Tenant, container: Container
    ) -> None:
        a = tenant.post("/v1/customers", {"name": "A", "external_ids": {"hubspot": "100"}}).json()
        b = tenant.post("/v1/customers", {"name": "B"}).json()

        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("system"), clock=container.clock)
            claimed = entity_mappings.link(
                ctx, object_type="customer", object_id=b["id"], system="hubspot", external_id="100"
            )
            confirmed = entity_mappings.link(
                ctx, object_type="customer", object_id=a["id"], system="hubspot", external_id="100"
            )
            s.commit()
        alerts = tenant.get("/v1/alerts", params={"type": "entity_mapping_conflict"}).json()["data"]

        assert claimed is None
        assert confirmed is not None and confirmed.object_id == a["id"]
        assert [(x["object_id"], x["status"]) for x in alerts] == [(b["id"], "open")]
        assert alerts[0]["details"]["external_id"] == "100"
        assert alerts[0]["details"]["conflicts"][0]["object_id"] == a["id"]
        assert _mappings(tenant) == [("customer", a["id"], "hubspot", "company", "100")]
        assert tenant.get(f"/v1/customers/{b['id']}").json()["external_ids"] == {}


class TestMigration:
    def test_existing_customer_external_ids_become_mappings(self, db_url: str, container: Container) -> None:
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0005")
        now = container.clock.now()
        with container.sessions() as s:
            s.add(Organization(id="org_m", name="Migrated", created_at=now))
            s.flush()
            s.add(Customer(id="cus_m", org_id="org_m", name="Old", created_at=now, updated_at=now))
            s.flush()
            for system, ext in (("hubspot", "55"), ("stripe", "cus_S")):
                s.add(CustomerExternalId(org_id="org_m", customer_id="cus_m", system=system, external_id=ext))
            s.commit()

        command.upgrade(cfg, "head")

        with container.sessions() as s:
            rows = sorted(
                (r.org_id, r.object_type, r.object_id, r.system, r.external_type, r.external_id)
                for r in s.scalars(select(EntityMapping))
            )
        assert rows == [
            ("org_m", "customer", "cus_m", "hubspot", "company", "55"),
            ("org_m", "customer", "cus_m", "stripe", "customer", "cus_S"),
        ]

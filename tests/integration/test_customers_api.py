"""Customers through the API: create, retrieve, update, archive, list, look up, bad input, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.storage.models import AuditEvent, Customer, CustomerExternalId, Event
from tests.conftest import Tenant

FULL = {
    "name": "Berliner GmbH",
    "email": "AP@Berliner.example",
    "address": {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "de",
    },
    "currency": "eur",
    "timezone": "Europe/Berlin",
    "locale": "de-DE",
    "tax_ids": [{"type": "eu_vat", "value": "DE 136 695 976"}],
    "external_ids": {"hubspot": "1234", "salesforce": "001XYZ"},
    "metadata": {"segment": "enterprise", "owner": "ana"},
}


def _customer(t: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "Acme Corp", "email": "ap@acme.example", **fields}
    r = t.post("/v1/customers", body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _count(container: Container, model: Any) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _counts(container: Container) -> tuple[int, int, int, int]:
    return (
        _count(container, Customer),
        _count(container, CustomerExternalId),
        _count(container, AuditEvent),
        _count(container, Event),
    )


class TestCreate:
    def test_stores_every_field_normalised(self, tenant: Tenant) -> None:
        r = tenant.post("/v1/customers", FULL)

        assert r.status_code == 201, r.text
        c = r.json()
        assert c["id"].startswith("cus_")
        assert c["object"] == "customer"
        assert (c["name"], c["email"]) == ("Berliner GmbH", "AP@Berliner.example")
        assert c["address"] == {
            "line1": "Unter den Linden 1",
            "line2": None,
            "city": "Berlin",
            "state": None,
            "postal_code": "10117",
            "country": "DE",
        }
        assert (c["currency"], c["timezone"], c["locale"]) == ("EUR", "Europe/Berlin", "de_DE")
        assert c["tax_ids"] == [{"type": "eu_vat", "value": "DE136695976", "country": "DE"}]
        assert c["external_ids"] == {"hubspot": "1234", "salesforce": "001XYZ"}
        assert c["metadata"] == {"segment": "enterprise", "owner": "ana"}
        assert (c["balance"], c["archived"]) == (0, False)
        assert c["created_at"] == c["updated_at"]

    def test_lower_case_country_becomes_upper_case(self, tenant: Tenant) -> None:
        c = _customer(tenant, address={"city": "Austin", "country": "us"})

        assert c["address"]["country"] == "US"
        assert c["address"]["city"] == "Austin"

    def test_defaults_when_only_a_name_is_given(self, tenant: Tenant) -> None:
        r = tenant.post("/v1/customers", {"name": "Solo"})

        c = r.json()
        assert r.status_code == 201
        assert (c["email"], c["currency"], c["timezone"], c["locale"]) == (None, None, "UTC", "en_US")
        assert (c["tax_ids"], c["external_ids"], c["metadata"]) == ([], {}, {})
        assert c["address"]["country"] is None

    def test_retrieve_returns_what_create_returned(self, tenant: Tenant) -> None:
        created = tenant.post("/v1/customers", FULL).json()

        r = tenant.get(f"/v1/customers/{created['id']}")

        assert r.status_code == 200
        assert r.json() == created

    def test_retrieving_an_unknown_id_answers_404(self, tenant: Tenant) -> None:
        r = tenant.get("/v1/customers/cus_doesnotexist")

        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "resource_missing"


class TestUpdate:
    def test_changes_only_the_fields_given(self, tenant: Tenant) -> None:
        c = tenant.post("/v1/customers", FULL).json()

        r = tenant.patch(f"/v1/customers/{c['id']}", {"name": "Berliner AG", "email": "billing@b.example"})

        u = r.json()
        assert r.status_code == 200
        assert (u["name"], u["email"]) == ("Berliner AG", "billing@b.example")
        unchanged = ("address", "currency", "timezone", "locale", "tax_ids", "external_ids", "metadata")
        assert {k: u[k] for k in unchanged} == {k: c[k] for k in unchanged}
        assert datetime.fromisoformat(u["updated_at"]) > datetime.fromisoformat(c["updated_at"])
        assert tenant.get(f"/v1/customers/{c['id']}").json() == u

    def test_metadata_merges_and_null_removes_a_key(self, tenant: Tenant) -> None:
        c = _customer(tenant, metadata={"segment": "smb", "owner": "ana", "region": "emea"})

        u = tenant.patch(
            f"/v1/customers/{c['id']}", {"metadata": {"segment": "enterprise", "owner": None, "tier": "1"}}
        ).json()

        assert u["metadata"] == {"segment": "enterprise", "region": "emea", "tier": "1"}

    def test_external_ids_merge_per_system_and_null_unlinks(self, tenant: Tenant) -> None:
        c = _customer(tenant, external_ids={"hubspot": "1234", "salesforce": "001XYZ"})

        u = tenant.patch(
            f"/v1/customers/{c['id']}", {"external_ids": {"hubspot": None, "stripe": "cus_S1"}}
        ).json()
        by_old = tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "1234"})
        by_new = tenant.get("/v1/customers/lookup", params={"system": "stripe", "external_id": "cus_S1"})

        assert u["external_ids"] == {"salesforce": "001XYZ", "stripe": "cus_S1"}
        assert by_old.status_code == 404
        assert by_new.json()["id"] == c["id"]

    def test_an_unlinked_external_id_can_be_claimed_by_another_customer(self, tenant: Tenant) -> None:
        first = _customer(tenant, external_ids={"hubspot": "1234"})
        tenant.patch(f"/v1/customers/{first['id']}", {"external_ids": {"hubspot": None}})

        second = _customer(tenant, name="Beta", external_ids={"hubspot": "1234"})

        found = tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "1234"})
        assert found.json()["id"] == second["id"]

    def test_tax_ids_and_address_are_validated_again(self, tenant: Tenant) -> None:
        c = _customer(tenant)

        u = tenant.patch(
            f"/v1/customers/{c['id']}",
            {
                "address": {"city": "Paris", "country": "fr"},
                "tax_ids": [{"type": "eu_vat", "value": "fr 61 954 506 077"}],
                "timezone": "Europe/Paris",
                "locale": "fr-FR",
            },
        ).json()

        assert (u["address"]["city"], u["address"]["country"]) == ("Paris", "FR")
        assert u["tax_ids"] == [{"type": "eu_vat", "value": "FR61954506077", "country": "FR"}]
        assert (u["timezone"], u["locale"]) == ("Europe/Paris", "fr_FR")

    def test_currency_may_change_before_the_first_invoice(self, tenant: Tenant) -> None:
        c = _customer(tenant, currency="USD")

        u = tenant.patch(f"/v1/customers/{c['id']}", {"currency": "gbp"}).json()

        assert u["currency"] == "GBP"

    def test_currency_is_locked_once_the_customer_has_an_invoice(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _customer(tenant, currency="USD")
        inv = tenant.post(
            "/v1/invoices", {"customer_id": c["id"], "items": [{"description": "Plan", "amount": 1000}]}
        )
        assert inv.status_code == 201, inv.text
        before = _counts(container)

        r = tenant.patch(f"/v1/customers/{c['id']}", {"currency": "EUR", "name": "Renamed"})
        same = tenant.patch(f"/v1/customers/{c['id']}", {"currency": "USD"})

        assert r.status_code == 409
        assert r.json()["code"] == "currency_locked"
        assert tenant.get(f"/v1/customers/{c['id']}").json()["name"] == "Acme Corp"
        assert same.status_code == 200 and same.json()["currency"] == "USD"
        assert _counts(container)[:2] == before[:2]

    def test_the_first_invoice_sets_a_missing_currency_which_then_locks(self, tenant: Tenant) -> None:
        c = _customer(tenant)
        tenant.post(
            "/v1/invoices",
            {"customer_id": c["id"], "items": [{"description": "Plan", "amount": 1000, "currency": "JPY"}]},
        )

        r = tenant.patch(f"/v1/customers/{c['id']}", {"currency": "USD"})

        assert tenant.get(f"/v1/customers/{c['id']}").json()["currency"] == "JPY"
        assert (r.status_code, r.json()["code"]) == (409, "currency_locked")

    def test_null_for_a_required_field_is_refused(self, tenant: Tenant, container: Container) -> None:
        c = _customer(tenant)
        before = _counts(container)

        for field in ("name", "timezone", "locale"):
            r = tenant.patch(f"/v1/customers/{c['id']}", {field: None})

            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (field, r.text)
            assert r.json()["errors"][0]["field"] == field
        assert tenant.get(f"/v1/customers/{c['id']}").json() == c
        assert _counts(container) == before

    def test_metadata_cannot_grow_past_50_keys(self, tenant: Tenant) -> None:
        c = _customer(tenant, metadata={f"k{i}": "v" for i in range(30)})

        too_many_at_once = tenant.patch(
            f"/v1/customers/{c['id']}", {"metadata": {f"n{i}": "v" for i in range(51)}}
        )
        too_many_merged = tenant.patch(
            f"/v1/customers/{c['id']}", {"metadata": {f"n{i}": "v" for i in range(21)}}
        )
        just_enough = tenant.patch(
            f"/v1/customers/{c['id']}", {"metadata": {f"n{i}": "v" for i in range(20)}}
        )

        assert (too_many_at_once.status_code, too_many_at_once.json()["code"]) == (422, "metadata_too_large")
        assert (too_many_merged.status_code, too_many_merged.json()["code"]) == (422, "metadata_too_large")
        assert too_many_merged.json()["errors"][0]["field"] == "metadata"
        assert just_enough.status_code == 200
        assert len(just_enough.json()["metadata"]) == 50

    def test_updating_an_unknown_customer_answers_404(self, tenant: Tenant) -> None:
        r = tenant.patch("/v1/customers/cus_doesnotexist", {"name": "X"})

        assert (r.status_code, r.json()["code"]) == (404, "resource_missing")


class TestArchive:
    def test_archiving_twice_is_fine_and_blocks_new_invoices(
        self, tenant: Tenant, container: Container
    ) -> None:
        c = _customer(tenant, currency="USD")

        first = tenant.post(f"/v1/customers/{c['id']}/archive")
        second = tenant.post(f"/v1/customers/{c['id']}/archive")
        inv = tenant.post(
            "/v1/invoices", {"customer_id": c["id"], "items": [{"description": "Plan", "amount": 1000}]}
        )

        assert first.status_code == 200 and first.json()["archived"] is True
        assert second.status_code == 200 and second.json() == first.json()
        assert inv.status_code == 409
        assert inv.headers["content-type"] == "application/problem+json"
        assert inv.json()["code"] == "customer_archived"
        assert tenant.get("/v1/invoices").json()["data"] == []
        archives = tenant.get("/v1/audit_events", params={"object_id": c["id"], "action": "customer.archive"})
        assert len(archives.json()["data"]) == 1

    def test_archived_customers_stay_readable_and_listed(self, tenant: Tenant) -> None:
        c = _customer(tenant)
        tenant.post(f"/v1/customers/{c['id']}/archive")

        got = tenant.get(f"/v1/customers/{c['id']}").json()
        listed = tenant.get("/v1/customers").json()["data"]

        assert got["archived"] is True
        assert [x["id"] for x in listed] == [c["id"]]


class TestList:
    def test_filters_by_email_ignoring_case(self, tenant: Tenant) -> None:
        a = _customer(tenant, name="A", email="Billing@Acme.example")
        _customer(tenant, name="B", email="ap@beta.example")

        r = tenant.get("/v1/customers", params={"email": "billing@ACME.example"})

        assert r.status_code == 200
        body = r.json()
        assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/customers", False)
        assert [c["id"] for c in body["data"]] == [a["id"]]

    def test_filters_by_external_id_and_system(self, tenant: Tenant) -> None:
        hub = _customer(tenant, name="Hub", external_ids={"hubspot": "42"})
        sf = _customer(tenant, name="SF", external_ids={"salesforce": "42"})
        _customer(tenant, name="Other", external_ids={"hubspot": "43"})

        both = tenant.get("/v1/customers", params={"external_id": "42"}).json()["data"]
        only_hub = tenant.get(
            "/v1/customers", params={"external_id": "42", "external_system": "hubspot"}
        ).json()["data"]
        none = tenant.get("/v1/customers", params={"external_id": "42", "external_system": "stripe"}).json()[
            "data"
        ]

        assert {c["id"] for c in both} == {hub["id"], sf["id"]}
        assert [c["id"] for c in only_hub] == [hub["id"]]
        assert none == []

    def test_cursor_pagination_walks_every_customer_once_newest_first(self, tenant: Tenant) -> None:
        created = [_customer(tenant, name=f"C{i}")["id"] for i in range(5)]

        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor is not None:
                params["starting_after"] = cursor
            body = tenant.get("/v1/customers", params=params).json()
            pages.append([c["id"] for c in body["data"]])
            cursor = body["data"][-1]["id"]
            if not body["has_more"]:
                break
        seen = [i for page in pages for i in page]
        back = tenant.get("/v1/customers", params={"limit": 2, "ending_before": pages[2][0]}).json()
        first = tenant.get("/v1/customers", params={"limit": 2, "ending_before": pages[1][0]}).json()

        assert [len(p) for p in pages] == [2, 2, 1]
        assert seen == list(reversed(created))
        assert len(set(seen)) == 5
        assert [c["id"] for c in back["data"]] == pages[1]
        assert back["has_more"] is True
        assert [c["id"] for c in first["data"]] == pages[0]
        assert first["has_more"] is False

    def test_both_cursors_at_once_are_refused(self, tenant: Tenant) -> None:
        a = _customer(tenant, name="A")
        b = _customer(tenant, name="B")

        r = tenant.get("/v1/customers", params={"starting_after": b["id"], "ending_before": a["id"]})

        assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")

    def test_a_limit_out_of_range_is_refused(self, tenant: Tenant) -> None:
        zero = tenant.get("/v1/customers", params={"limit": 0})
        too_big = tenant.get("/v1/customers", params={"limit": 101})

        assert (zero.status_code, zero.json()["errors"][0]["field"]) == (422, "limit")
        assert (too_big.status_code, too_big.json()["code"]) == (422, "validation_error")


class TestLookup:
    def test_finds_the_customer_by_system_and_external_id(self, tenant: Tenant) -> None:
        c = _customer(tenant, external_ids={"hubspot": "1234"})
        _customer(tenant, name="Other", external_ids={"salesforce": "1234"})

        r = tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "1234"})
        wrong_system = tenant.get("/v1/customers/lookup", params={"system": "stripe", "external_id": "1234"})
        unknown = tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "9999"})

        assert r.status_code == 200
        assert r.json()["id"] == c["id"]
        assert r.json()["external_ids"] == {"hubspot": "1234"}
        assert (wrong_system.status_code, wrong_system.json()["code"]) == (404, "resource_missing")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "resource_missing")

    def test_system_and_external_id_are_required(self, tenant: Tenant) -> None:
        r = tenant.get("/v1/customers/lookup", params={"system": "hubspot"})

        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
        assert r.json()["errors"][0]["field"] == "external_id"


class TestExternalIdUniqueness:
    def test_a_second_customer_claiming_a_taken_id_is_refused_and_nothing_is_created(
        self, tenant: Tenant, container: Container
    ) -> None:
        owner = _customer(tenant, external_ids={"hubspot": "1234"})
        before = _counts(container)

        r = tenant.post("/v1/customers", {"name": "Copycat", "external_ids": {"hubspot": "1234"}})

        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "external_id_taken"
        assert r.json()["errors"][0]["field"] == "external_ids.hubspot"
        assert _counts(container) == before
        assert before[:2] == (1, 1)
        assert [c["id"] for c in tenant.get("/v1/customers").json()["data"]] == [owner["id"]]

    def test_claiming_a_taken_id_by_update_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        _customer(tenant, external_ids={"hubspot": "1234"})
        other = _customer(tenant, name="Other", external_ids={"hubspot": "5678"})
        before = _counts(container)

        r = tenant.patch(
            f"/v1/customers/{other['id']}", {"name": "Renamed", "external_ids": {"hubspot": "1234"}}
        )

        assert (r.status_code, r.json()["code"]) == (409, "external_id_taken")
        assert tenant.get(f"/v1/customers/{other['id']}").json() == other
        assert _counts(container) == before

    def test_the_same_id_in_another_system_is_fine(self, tenant: Tenant) -> None:
        _customer(tenant, external_ids={"hubspot": "1234"})

        r = tenant.post("/v1/customers", {"name": "SF", "external_ids": {"salesforce": "1234"}})

        assert r.status_code == 201
        assert r.json()["external_ids"] == {"salesforce": "1234"}


class TestBadInput:
    def test_each_bad_request_answers_its_code_and_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        before = _counts(container)
        cases: list[tuple[dict[str, Any] | str, int, str, str | None]] = [
            (
                {"name": "X", "tax_ids": [{"type": "eu_vat", "value": "DE 136 695 977"}]},
                422,
                "invalid_tax_id",
                "tax_ids[0].value",
            ),
            (
                {"name": "X", "tax_ids": [{"type": "xx_vat", "value": "123"}]},
                422,
                "invalid_tax_id",
                "tax_ids[0].type",
            ),
            ({"name": "X", "address": {"country": "ZZ"}}, 422, "invalid_country", "address.country"),
            ({"name": "X", "address": {"country": "USA"}}, 422, "validation_error", "address.country"),
            ({"name": "X", "timezone": "Mars/Olympus"}, 422, "invalid_timezone", "timezone"),
            ({"name": "X", "locale": "xx_YY"}, 422, "invalid_locale", "locale"),
            ({"name": "X", "currency": "XYZ"}, 422, "unknown_currency", None),
            ({"name": "X", "surprise": 1}, 422, "validation_error", "surprise"),
            ({"name": "x" * 201}, 422, "validation_error", "name"),
            ({"name": ""}, 422, "validation_error", "name"),
            ({"name": 12345}, 422, "validation_error", "name"),
            ({"email": "a@b.example"}, 422, "validation_error", "name"),
            ({"name": "X", "email": "not-an-email"}, 422, "validation_error", "email"),
            (
                {"name": "X", "metadata": {f"k{i}": "v" for i in range(51)}},
                422,
                "metadata_too_large",
                "metadata",
            ),
            ({"name": "X", "metadata": {"k": 1}}, 422, "validation_error", "metadata.k"),
            ({"name": "X", "external_ids": {"HubSpot": "1"}}, 422, "validation_error", None),
            ('{"name": ', 400, "invalid_json", "body"),
            ("[1, 2]", 400, "invalid_json", "body"),
        ]

        for body, status, code, field in cases:
            if isinstance(body, str):
                r = tenant.post("/v1/customers", content=body, headers={"Content-Type": "application/json"})
            else:
                r = tenant.post("/v1/customers", body)

            assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == status
            if field is not None:
                assert r.json()["errors"][0]["field"] == field, (body, r.text)
            assert _counts(container) == before, body

    def test_a_bad_update_changes_nothing(self, tenant: Tenant, container: Container) -> None:
        c = tenant.post("/v1/customers", FULL).json()
        before = _counts(container)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"name": "Y", "tax_ids": [{"type": "eu_vat", "value": "DE 000"}]}, "invalid_tax_id"),
            ({"name": "Y", "address": {"country": "ZZ"}}, "invalid_country"),
            ({"name": "Y", "timezone": "Europe/Nowhere"}, "invalid_timezone"),
            ({"name": "Y", "currency": "XYZ"}, "unknown_currency"),
            ({"name": "Y", "archived": True}, "validation_error"),
        ]

        for body, code in cases:
            r = tenant.patch(f"/v1/customers/{c['id']}", body)

            assert (r.status_code, r.json()["code"]) == (422, code), (body, r.text)
        assert tenant.get(f"/v1/customers/{c['id']}").json() == c
        assert _counts(container) == before


class TestAuditAndEvents:
    def test_create_and_update_append_audit_rows_by_the_api_key(self, tenant: Tenant) -> None:
        c = tenant.post("/v1/customers", FULL).json()
        tenant.patch(f"/v1/customers/{c['id']}", {"name": "Berliner AG", "metadata": {"owner": None}})

        r = tenant.get("/v1/audit_events", params={"object_id": c["id"]})

        rows = r.json()["data"]
        assert [a["action"] for a in rows] == ["customer.update", "customer.create"]
        assert {(a["actor_type"], a["actor_id"], a["object_type"]) for a in rows} == {
            ("api_key", tenant.key_id, "customer")
        }
        update, create = rows
        assert update["changes"] == {
            "name": {"before": "Berliner GmbH", "after": "Berliner AG"},
            "metadata": {
                "before": {"segment": "enterprise", "owner": "ana"},
                "after": {"segment": "enterprise"},
            },
        }
        assert create["changes"]["name"] == {"before": None, "after": "Berliner GmbH"}
        assert create["changes"]["currency"] == {"before": None, "after": "EUR"}
        assert create["changes"]["external_ids"] == {
            "before": None,
            "after": {"hubspot": "1234", "salesforce": "001XYZ"},
        }
        assert create["changes"]["tax_ids"]["after"] == [
            {"type": "eu_vat", "value": "DE136695976", "country": "DE"}
        ]
        assert create["request_id"] is not None

    def test_create_and_update_emit_domain_events_carrying_the_customer(self, tenant: Tenant) -> None:
        c = tenant.post("/v1/customers", FULL).json()
        u = tenant.patch(f"/v1/customers/{c['id']}", {"email": "new@b.example"}).json()

        created = tenant.get("/v1/events", params={"type": "customer.created"}).json()["data"]
        updated = tenant.get("/v1/events", params={"type": "customer.updated"}).json()["data"]

        assert len(created) == 1 and len(updated) == 1
        assert (created[0]["object_type"], created[0]["object_id"]) == ("customer", c["id"])
        assert created[0]["data"]["object"] == c
        assert updated[0]["data"]["object"]["email"] == "new@b.example"
        assert updated[0]["data"]["object"] == u
        one = tenant.get(f"/v1/events/{created[0]['id']}").json()
        assert one == created[0]

    def test_failed_requests_append_no_audit_and_no_event(self, tenant: Tenant, container: Container) -> None:
        c = _customer(tenant, external_ids={"hubspot": "1"})
        before = (_count(container, AuditEvent), _count(container, Event))

        tenant.post("/v1/customers", {"name": "X", "external_ids": {"hubspot": "1"}})
        tenant.patch(f"/v1/customers/{c['id']}", {"timezone": "Nowhere/Zone"})

        assert (_count(container, AuditEvent), _count(container, Event)) == before
        assert tenant.get("/v1/customers/" + c["id"]).json() == c

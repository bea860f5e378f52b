"""Authentication, API keys, and tenant isolation on every endpoint."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.domain.ids import new_id
from revflow.services.alerts import raise_alert
from revflow.storage.models import ApiKey, AuditEvent, CreditNote, Customer, Invoice, Payment
from revflow.storage.payment_models import Dispute, Email
from tests.conftest import Tenant


def _count(container: Container, model: Any) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _assert_problem(r: Any, status: int, code: str) -> None:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), r.text
    body = r.json()
    assert (body["status"], body["code"]) == (status, code), r.text
    assert body["type"] == f"https://revflow.dev/errors/{code}"


class TestAuthentication:
    def test_a_request_without_a_key_answers_401_with_a_challenge(self, client: TestClient) -> None:
        r = client.get("/v1/customers")

        _assert_problem(r, 401, "authentication_required")
        assert r.headers["www-authenticate"] == 'Bearer realm="revflow"'

    def test_a_non_bearer_scheme_or_an_empty_key_is_treated_as_missing(
        self, client: TestClient, tenant: Tenant
    ) -> None:
        basic = client.get("/v1/customers", headers={"Authorization": f"Basic {tenant.key}"})
        empty = client.get("/v1/customers", headers={"Authorization": "Bearer   "})

        _assert_problem(basic, 401, "authentication_required")
        _assert_problem(empty, 401, "authentication_required")

    def test_a_wrong_key_answers_401_invalid_api_key(self, client: TestClient, tenant: Tenant) -> None:
        cases = ["rf_sk_" + "x" * 43, "sk_live_something", tenant.key + "x", tenant.key[:-1]]

        for key in cases:
            r = client.get("/v1/customers", headers={"Authorization": f"Bearer {key}"})

            _assert_problem(r, 401, "invalid_api_key")
            assert r.headers["www-authenticate"] == 'Bearer realm="revflow"'

    def test_a_write_without_a_key_changes_nothing(self, client: TestClient, container: Container) -> None:
        r = client.post("/v1/customers", json={"name": "Anonymous"})

        _assert_problem(r, 401, "authentication_required")
        assert _count(container, Customer) == 0

    def test_the_bearer_scheme_is_case_insensitive(self, client: TestClient, tenant: Tenant) -> None:
        r = client.get("/v1/customers", headers={"Authorization": f"bearer {tenant.key}"})

        assert r.status_code == 200
        assert r.json()["data"] == []

    def test_operations_endpoints_need_no_key(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}


class TestApiKeys:
    def test_the_secret_is_returned_once_and_only_prefixes_are_listed(self, tenant: Tenant) -> None:
        r = tenant.post("/v1/api_keys", {"name": "ci"})

        assert r.status_code == 201
        created = r.json()
        secret = created["secret"]
        assert secret.startswith("rf_sk_") and len(secret) > 40
        assert (created["name"], created["prefix"], created["revoked_at"]) == ("ci", secret[:12], None)
        listed = tenant.get("/v1/api_keys")
        keys = listed.json()["data"]
        assert [k["id"] for k in keys] == [created["id"], tenant.key_id]
        assert all(
            set(k) == {"id", "object", "name", "prefix", "created_at", "last_used_at", "revoked_at"}
            for k in keys
        )
        assert secret not in listed.text and tenant.key not in listed.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in listed.text
        again = tenant.get("/v1/customers", headers={"Authorization": f"Bearer {secret}"})
        assert again.status_code == 200

    def test_a_revoked_key_answers_401_and_other_keys_keep_working(self, tenant: Tenant) -> None:
        created = tenant.post("/v1/api_keys", {"name": "temp"}).json()
        as_new = {"Authorization": f"Bearer {created['secret']}"}
        assert tenant.http.get("/v1/customers", headers=as_new).status_code == 200

        revoked = tenant.post(f"/v1/api_keys/{created['id']}/revoke")
        twice = tenant.post(f"/v1/api_keys/{created['id']}/revoke")
        after = tenant.http.get("/v1/customers", headers=as_new)
        write = tenant.http.post("/v1/customers", json={"name": "X"}, headers=as_new)

        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert twice.status_code == 200 and twice.json()["revoked_at"] == revoked.json()["revoked_at"]
        _assert_problem(after, 401, "invalid_api_key")
        _assert_problem(write, 401, "invalid_api_key")
        assert tenant.get("/v1/customers").status_code == 200
        audit = tenant.get("/v1/audit_events", params={"object_id": created["id"]}).json()["data"]
        assert [a["action"] for a in audit] == ["api_key.revoke", "api_key.create"]

    def test_a_key_can_revoke_itself(self, tenant: Tenant) -> None:
        r = tenant.post(f"/v1/api_keys/{tenant.key_id}/revoke")

        assert r.status_code == 200
        _assert_problem(tenant.get("/v1/customers"), 401, "invalid_api_key")

    def test_the_database_stores_no_plaintext_secret(self, tenant: Tenant, container: Container) -> None:
        secret = tenant.post("/v1/api_keys", {"name": "ci"}).json()["secret"]
        secrets = [secret, tenant.key]

        with container.sessions() as s:
            keys = list(s.scalars(select(ApiKey)))
            audits = list(s.scalars(select(AuditEvent)))
            columns = [c.key for c in ApiKey.__mapper__.column_attrs]
            stored = [str(getattr(k, col)) for k in keys for col in columns]
            audit_text = json.dumps([a.changes for a in audits])

        assert len(keys) == 2
        assert {k.key_hash for k in keys} == {hashlib.sha256(x.encode()).hexdigest() for x in secrets}
        assert all(k.key_hash not in secrets for k in keys)
        assert not [v for v in stored for x in secrets if x in v]
        assert not [x for x in secrets if x in audit_text]
        assert {k.prefix for k in keys} == {x[:12] for x in secrets}

    def test_a_key_name_is_validated(self, tenant: Tenant, container: Container) -> None:
        r = tenant.post("/v1/api_keys", {"name": "x" * 201})

        _assert_problem(r, 422, "validation_error")
        assert _count(container, ApiKey) == 1


def _seed(t: Tenant) -> dict[str, str]:
    """In ``t``: a customer, a finalized invoice with a payment and a credit note, a product, a price and
    a plan; returns their ids."""
    cus = t.post(
        "/v1/customers", {"name": "Acme Corp", "currency": "USD", "external_ids": {"hubspot": "1234"}}
    ).json()
    inv = t.post(
        "/v1/invoices",
        {
            "customer_id": cus["id"],
            "items": [{"description": "Plan", "amount": 10000}, {"description": "Seats", "amount": 5000}],
        },
    ).json()
    fin = t.post(f"/v1/invoices/{inv['id']}/finalize").json()
    pay = t.post(f"/v1/invoices/{inv['id']}/payments", {"amount": 4000, "reference": "WIRE-1"}).json()
    note = t.post("/v1/credit_notes", {"invoice_id": inv["id"], "amount": 1000}).json()
    assert (fin["status"], pay["amount"], note["amount"]) == ("open", 4000, 1000)
    event = t.get("/v1/events", params={"type": "invoice.finalized"}).json()["data"][0]
    product = t.post("/v1/products", {"name": "Seats"}).json()
    price = t.post(
        "/v1/prices",
        {
            "product_id": product["id"],
            "currency": "USD",
            "type": "recurring",
            "interval": "month",
            "model": "per_unit",
            "unit_amount": "1000",
        },
    ).json()
    plan = t.post("/v1/plans", {"code": "pro", "name": "Pro", "items": [{"price_id": price["id"]}]}).json()
    assert plan["current_version"] == 1, plan
    coupon = t.post("/v1/coupons", {"name": "Seed", "percent_off": 10, "duration": "forever"}).json()
    promo = t.post("/v1/promotion_codes", {"coupon_id": coupon["id"], "code": "SEED10"}).json()
    discount = t.post(f"/v1/customers/{cus['id']}/discounts", {"coupon_id": coupon["id"]}).json()
    assert discount["coupon"]["id"] == promo["coupon_id"] == coupon["id"], discount
    clock = t.post("/v1/test_clocks", {"frozen_time": "2024-01-01T00:00:00Z"}).json()
    sub = t.post(  # starts in the future: no invoice yet, so the invoice lists stay as they are
        "/v1/subscriptions",
        {"customer_id": cus["id"], "plan_id": plan["id"], "start_at": "2100-01-01T00:00:00Z"},
    ).json()
    assert sub["status"] == "incomplete", sub
    quote = t.post(
        "/v1/quotes",
        {"customer_id": cus["id"], "lines": [{"price_id": price["id"], "quantity": 2, "unit_amount": "900"}]},
    ).json()
    endpoint = t.post(  # a public address literal: no DNS lookup, and the worker does not run here
        "/v1/webhook_endpoints", {"url": "https://93.184.216.34/hooks", "enabled_events": ["invoice.*"]}
    ).json()
    mapping = t.post(
        "/v1/entity_mappings",
        {
            "object_type": "subscription",
            "object_id": sub["id"],
            "system": "hubspot",
            "external_type": "deal",
            "external_id": "D-1",
        },
    ).json()
    billable_metric = t.post(
        "/v1/billable_metrics", {"code": "calls", "name": "Calls", "aggregation": "count"}
    )
    usage = t.post(
        "/v1/usage_events", {"transaction_id": "seed-1", "customer_id": cus["id"], "metric_code": "calls"}
    )
    assert billable_metric.status_code == 201 and usage.status_code == 201, usage.text
    integration = t.post(  # the worker does not run here: nothing calls HubSpot
        "/v1/integrations",
        {
            "system": "hubspot",
            "credentials": {"access_token": "pat-na1-seed", "client_secret": "seed"},
            "owner": "revops@example.com",
            "description": "Seeded",
        },
    ).json()
    container: Container = cast(FastAPI, t.http.app).state.container
    with container.sessions() as s:  # an alert as a quote check records one, without billing anything
        alert = raise_alert(
            s,
            org_id=t.org_id,
            type="quote_discrepancy",
            message="Seeded",
            dedupe_key=f"seed:{inv['id']}",
            now=container.clock.now(),
            object_type="invoice",
            object_id=inv["id"],
        )
        s.commit()
    pm = t.post(f"/v1/customers/{cus['id']}/payment_methods", {"token": "pm_card_visa"}).json()
    policy = t.post("/v1/dunning_policies", {"name": "Seed", "retry_days": [1, 3]}).json()
    refund = t.post(f"/v1/payments/{pay['id']}/refunds", {"amount": 100}).json()
    assert (pm["last4"], policy["max_attempts"], refund["amount"]) == ("4242", 3, 100), (pm, policy, refund)
    with container.sessions() as s:  # a dispute and an email, as a webhook and a dunning step record them
        dispute = Dispute(
            id=new_id("dp"),
            org_id=t.org_id,
            payment_id=pay["id"],
            invoice_id=inv["id"],
            gateway_ref=new_id("dp"),
            amount=100,
            currency="USD",
            reason="fraudulent",
            status="needs_response",
            created_at=container.clock.now(),
        )
        email = Email(
            id=new_id("em"),
            org_id=t.org_id,
            to="a@example.com",
            subject="Seed",
            body="Seed",
            template="retry",
            status="stored",
            attempts=1,
            dedupe_key=new_id("seed"),
            created_at=container.clock.now(),
        )
        s.add_all([dispute, email])
        s.commit()
    return {
        "payment_method_id": pm["id"],
        "policy_id": policy["id"],
        "refund_id": refund["id"],
        "dispute_id": dispute.id,
        "email_id": email.id,
        "customer_id": cus["id"],
        "invoice_id": inv["id"],
        "line_id": fin["lines"][0]["id"],
        "credit_note_id": note["id"],
        "payment_id": pay["id"],
        "event_id": event["id"],
        "key_id": t.key_id,
        "product_id": product["id"],
        "price_id": price["id"],
        "plan_id": plan["id"],
        "coupon_id": coupon["id"],
        "promotion_code_id": promo["id"],
        "discount_id": discount["id"],
        "subscription_id": sub["id"],
        "test_clock_id": clock["id"],
        "quote_id": quote["id"],
        "alert_id": alert.id,
        "endpoint_id": endpoint["id"],
        "mapping_id": mapping["id"],
        "metric_id": billable_metric.json()["id"],
        "usage_event_id": usage.json()["id"],
        "integration_id": integration["id"],
        "job_id": t.get("/v1/sync_jobs").json()["data"][0]["id"],
    }


def _snapshot(t: Tenant, ids: dict[str, str]) -> dict[str, Any]:
    """Everything a tenant can see of the seeded objects, as JSON."""
    cus, inv = ids["customer_id"], ids["invoice_id"]
    keys = t.get("/v1/api_keys").json()["data"]
    return {
        "customer": t.get(f"/v1/customers/{cus}").json(),
        "balance_transactions": t.get(f"/v1/customers/{cus}/balance_transactions").json(),
        "invoice": t.get(f"/v1/invoices/{inv}").json(),
        "credit_note": t.get(f"/v1/credit_notes/{ids['credit_note_id']}").json(),
        "event": t.get(f"/v1/events/{ids['event_id']}").json(),
        "product": t.get(f"/v1/products/{ids['product_id']}").json(),
        "price": t.get(f"/v1/prices/{ids['price_id']}").json(),
        "plan": t.get(f"/v1/plans/{ids['plan_id']}").json(),
        "plan_versions": t.get(f"/v1/plans/{ids['plan_id']}/versions").json(),
        "coupon": t.get(f"/v1/coupons/{ids['coupon_id']}").json(),
        "promotion_code": t.get(f"/v1/promotion_codes/{ids['promotion_code_id']}").json(),
        "discount": t.get(f"/v1/discounts/{ids['discount_id']}").json(),
        "subscription": t.get(f"/v1/subscriptions/{ids['subscription_id']}").json(),
        "test_clock": t.get(f"/v1/test_clocks/{ids['test_clock_id']}").json(),
        "quote": t.get(f"/v1/quotes/{ids['quote_id']}").json(),
        "alert": t.get(f"/v1/alerts/{ids['alert_id']}").json(),
        "payment_methods": t.get(f"/v1/customers/{cus}/payment_methods").json(),
        "dunning_policy": t.get(f"/v1/dunning_policies/{ids['policy_id']}").json(),
        "refund": t.get(f"/v1/refunds/{ids['refund_id']}").json(),
        "dispute": t.get(f"/v1/disputes/{ids['dispute_id']}").json(),
        "email": t.get(f"/v1/emails/{ids['email_id']}").json(),
        "collection": t.get(f"/v1/invoices/{inv}/collection").json(),
        "webhook_endpoint": t.get(f"/v1/webhook_endpoints/{ids['endpoint_id']}").json(),
        "webhook_attempts": t.get(f"/v1/webhook_endpoints/{ids['endpoint_id']}/deliveries").json(),
        "event_deliveries": t.get(f"/v1/events/{ids['event_id']}/deliveries").json(),
        "webhook_endpoints": t.get("/v1/webhook_endpoints").json(),
        "entity_mapping": t.get(f"/v1/entity_mappings/{ids['mapping_id']}").json(),
        "entity_mappings": t.get("/v1/entity_mappings", params={"limit": 100}).json(),
        "billable_metric": t.get(f"/v1/billable_metrics/{ids['metric_id']}").json(),
        "usage_events": t.get("/v1/usage_events", params={"limit": 100}).json(),
        "usage_thresholds": t.get("/v1/usage_thresholds", params={"limit": 100}).json(),
        "integration": t.get(f"/v1/integrations/{ids['integration_id']}").json(),
        "integrations": t.get("/v1/integrations", params={"limit": 100}).json(),
        "sync_job": t.get(f"/v1/sync_jobs/{ids['job_id']}").json(),
        "sync_jobs": t.get("/v1/sync_jobs", params={"limit": 100}).json(),
        "subscriptions": t.get("/v1/subscriptions", params={"limit": 100}).json(),
        "payments": t.get("/v1/payments", params={"limit": 100}).json(),
        "credit_notes": t.get("/v1/credit_notes", params={"limit": 100}).json(),
        "invoices": t.get("/v1/invoices", params={"limit": 100}).json(),
        "customers": t.get("/v1/customers", params={"limit": 100}).json(),
        "events": t.get("/v1/events", params={"limit": 100}).json(),
        "audit_events": t.get("/v1/audit_events", params={"limit": 100}).json(),
        "api_keys": [(k["id"], k["name"], k["prefix"], k["revoked_at"]) for k in keys],
    }


# Bodies that pass validation, so that only the ownership check can refuse the request.
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/customers/{customer_id}"): {"name": "Hijacked", "metadata": {"owner": "mallory"}},
    ("PATCH", "/v1/invoices/{invoice_id}"): {"description": "Hijacked"},
    ("POST", "/v1/invoices/{invoice_id}/lines"): {"items": [{"description": "x", "amount": 1}]},
    ("POST", "/v1/invoices/{invoice_id}/payments"): {"amount": 1, "method": "cash"},
    ("PATCH", "/v1/products/{product_id}"): {"name": "Hijacked", "active": False},
    ("PATCH", "/v1/prices/{price_id}"): {"nickname": "Hijacked", "active": False},
    ("PATCH", "/v1/plans/{plan_id}"): {"name": "Hijacked", "active": False},
    ("POST", "/v1/plans/{plan_id}/versions"): {"items": [{"price_id": "price_x"}]},
    ("PATCH", "/v1/coupons/{coupon_id}"): {"name": "Hijacked"},
    ("PATCH", "/v1/promotion_codes/{promotion_code_id}"): {"active": False},
    ("POST", "/v1/customers/{customer_id}/discounts"): {"promotion_code": "SEED10"},
    ("POST", "/v1/subscriptions/{subscription_id}/discounts"): {"promotion_code": "SEED10"},
    ("POST", "/v1/subscriptions/{subscription_id}/change"): {"quantity": 3},
    ("POST", "/v1/subscriptions/{subscription_id}/cancel"): {"at": "now"},
    ("POST", "/v1/test_clocks/{test_clock_id}/advance"): {"frozen_time": "2030-01-01T00:00:00Z"},
    ("PATCH", "/v1/quotes/{quote_id}"): {"term_months": 12},
    ("POST", "/v1/quotes/{quote_id}/accept"): {"acceptor_name": "Mallory", "acceptor_email": "m@evil.test"},
    ("POST", "/v1/payments/{payment_id}/refunds"): {"amount": 1},
    ("POST", "/v1/customers/{customer_id}/payment_methods"): {"token": "pm_card_visa"},
    ("POST", "/v1/customers/{customer_id}/setup_sessions"): {"method_types": ["card"]},
    ("PATCH", "/v1/dunning_policies/{policy_id}"): {"name": "Hijacked"},
    ("PATCH", "/v1/webhook_endpoints/{endpoint_id}"): {"description": "Hijacked", "disabled": True},
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): {"expires_in_hours": 0},
    ("POST", "/v1/events/{event_id}/replay"): {},
    ("PATCH", "/v1/entity_mappings/{mapping_id}"): {"external_id": "hijacked"},
    ("PATCH", "/v1/integrations/{integration_id}"): {"owner": "mallory", "enabled": False},
}

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _api_routes(client: TestClient) -> list[APIRoute]:
    """Every APIRoute the app serves. Since FastAPI 0.137 ``include_router`` no longer copies routes into
    ``app.routes`` but appends an ``_IncludedRouter``; walk into those through ``original_router``."""
    app = cast(FastAPI, client.app)
    found: list[APIRoute] = []
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            found.append(route)
        elif getattr(route, "original_router", None) is not None:
            stack.extend(route.original_router.routes)
    documented = {
        f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops
    }
    walked = {f"{m} {r.path}" for r in found for m in r.methods - {"HEAD", "OPTIONS"}}
    # The walk and the OpenAPI document must agree, so that no route escapes (or gets a wrong path).
    assert walked == documented, (sorted(walked - documented), sorted(documented - walked))
    return found


class TestTenantIsolation:
    def test_every_route_with_an_id_answers_404_for_another_orgs_object(
        self, tenant: Tenant, other_tenant: Tenant, client: TestClient, container: Container
    ) -> None:
        ids = {**_seed(tenant), "version": "1"}
        _seed(other_tenant)  # the other org has objects of its own, so its queries are not trivially empty
        before = _snapshot(tenant, ids)
        routes = [r for r in _api_routes(client) if r.path.startswith("/v1") and _PARAM.search(r.path)]

        called: list[str] = []
        used: set[str] = set()
        for route in routes:
            names = _PARAM.findall(route.path)
            unknown = [n for n in names if n not in ids]
            assert not unknown, f"{route.path} has path parameter(s) {unknown} this test does not cover"
            used.update(names)
            path = _PARAM.sub(lambda m: ids[m.group(1)], route.path)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                body = _BODIES.get((method, route.path), {}) if method in ("POST", "PATCH") else None
                r = other_tenant.http.request(method, path, json=body, headers=other_tenant.headers)

                assert r.status_code == 404, f"{method} {route.path} answered {r.status_code}: {r.text}"
                assert r.headers["content-type"] == "application/problem+json", (method, route.path)
                assert r.json()["code"] == "resource_missing", (method, route.path, r.text)
                called.append(f"{method} {route.path}")

        assert len(called) >= 17
        assert used == set(ids), "an id in the map is no longer used by any route"
        assert _snapshot(tenant, ids) == before

    def test_lists_never_show_another_orgs_objects(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        ids = _seed(tenant)
        theirs = _seed(other_tenant)
        with container.sessions() as s:
            audit_ids = set(s.scalars(select(AuditEvent.id).where(AuditEvent.org_id == tenant.org_id)))
        secret = set(ids.values()) | audit_ids
        lists = [
            ("/v1/customers", {}),
            ("/v1/customers", {"external_id": "1234", "external_system": "hubspot"}),
            ("/v1/invoices", {}),
            ("/v1/invoices", {"customer_id": ids["customer_id"]}),
            ("/v1/credit_notes", {}),
            ("/v1/credit_notes", {"invoice_id": ids["invoice_id"]}),
            ("/v1/credit_notes", {"customer_id": ids["customer_id"]}),
            ("/v1/payments", {}),
            ("/v1/payments", {"invoice_id": ids["invoice_id"]}),
            ("/v1/events", {}),
            ("/v1/events", {"object_id": ids["invoice_id"]}),
            ("/v1/audit_events", {}),
            ("/v1/audit_events", {"object_id": ids["customer_id"]}),
            ("/v1/audit_events", {"actor_id": tenant.key_id}),
            ("/v1/api_keys", {}),
            ("/v1/products", {}),
            ("/v1/prices", {}),
            ("/v1/prices", {"product_id": ids["product_id"]}),
            ("/v1/plans", {}),
            ("/v1/plans", {"code": "pro"}),
            ("/v1/quotes", {}),
            ("/v1/alerts", {}),
            ("/v1/webhook_endpoints", {}),
            ("/v1/entity_mappings", {}),
            ("/v1/entity_mappings", {"external_id": "1234"}),
            ("/v1/billable_metrics", {}),
            ("/v1/usage_events", {}),
            ("/v1/usage_events", {"customer_id": ids["customer_id"]}),
            ("/v1/usage_thresholds", {}),
            ("/v1/integrations", {}),
            ("/v1/sync_jobs", {}),
        ]

        seen: dict[str, set[str]] = {}
        for path, params in lists:
            r = other_tenant.get(path, params={"limit": 100, **params})
            assert r.status_code == 200, (path, params, r.text)
            found = {o["id"] for o in r.json()["data"]}
            assert not found & secret, (path, params, found & secret)
            assert not [i for i in ids.values() if i in r.text], (path, params)
            seen[f"{path}?{sorted(params.items())}"] = found

        assert seen["/v1/customers?[]"] == {theirs["customer_id"]}
        assert seen["/v1/customers?[('external_id', '1234'), ('external_system', 'hubspot')]"] == {
            theirs["customer_id"]
        }
        assert seen["/v1/invoices?[]"] == {theirs["invoice_id"]}
        assert seen["/v1/credit_notes?[]"] == {theirs["credit_note_id"]}
        assert seen["/v1/payments?[]"] == {theirs["payment_id"]}
        assert seen["/v1/api_keys?[]"] == {other_tenant.key_id}
        assert seen["/v1/prices?[]"] == {theirs["price_id"]}
        assert seen["/v1/plans?[('code', 'pro')]"] == {theirs["plan_id"]}
        assert theirs["event_id"] in seen["/v1/events?[]"]
        for key in (
            "/v1/invoices?[('customer_id', '" + ids["customer_id"] + "')]",
            "/v1/payments?[('invoice_id', '" + ids["invoice_id"] + "')]",
            "/v1/audit_events?[('actor_id', '" + tenant.key_id + "')]",
        ):
            assert seen[key] == set(), key

    def test_another_orgs_id_as_a_cursor_pages_only_through_ones_own_objects(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        ids = _seed(tenant)
        theirs = _seed(other_tenant)

        newer = other_tenant.get("/v1/customers", params={"ending_before": ids["customer_id"]}).json()
        older = other_tenant.get("/v1/customers", params={"starting_after": ids["customer_id"]}).json()

        assert [c["id"] for c in newer["data"]] == [theirs["customer_id"]]
        assert (older["data"], older["has_more"]) == ([], False)

    def test_lookup_by_external_id_stays_within_the_org(self, tenant: Tenant, other_tenant: Tenant) -> None:
        _seed(tenant)

        missing = other_tenant.get(
            "/v1/customers/lookup", params={"system": "hubspot", "external_id": "1234"}
        )
        own = other_tenant.post("/v1/customers", {"name": "Mine", "external_ids": {"hubspot": "1234"}})
        found = other_tenant.get("/v1/customers/lookup", params={"system": "hubspot", "external_id": "1234"})

        _assert_problem(missing, 404, "resource_missing")
        assert own.status_code == 201, own.text
        assert found.json()["id"] == own.json()["id"]

    def test_an_invoice_for_another_orgs_customer_answers_404_and_creates_nothing(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        ids = _seed(tenant)
        invoices = _count(container, Invoice)

        r = other_tenant.post(
            "/v1/invoices",
            {"customer_id": ids["customer_id"], "items": [{"description": "x", "amount": 100}]},
        )

        _assert_problem(r, 404, "resource_missing")
        assert _count(container, Invoice) == invoices == 1

    def test_a_credit_note_for_another_orgs_invoice_answers_404_and_creates_nothing(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        ids = _seed(tenant)
        before = tenant.get(f"/v1/invoices/{ids['invoice_id']}").json()
        notes, payments = _count(container, CreditNote), _count(container, Payment)

        whole = other_tenant.post("/v1/credit_notes", {"invoice_id": ids["invoice_id"]})
        by_line = other_tenant.post(
            "/v1/credit_notes",
            {"invoice_id": ids["invoice_id"], "lines": [{"invoice_line_id": ids["line_id"], "amount": 1}]},
        )

        _assert_problem(whole, 404, "resource_missing")
        _assert_problem(by_line, 404, "resource_missing")
        assert (_count(container, CreditNote), _count(container, Payment)) == (notes, payments) == (1, 1)
        assert tenant.get(f"/v1/invoices/{ids['invoice_id']}").json() == before

    def test_a_credit_note_cannot_target_another_orgs_invoice_line(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        ids = _seed(tenant)
        theirs = _seed(other_tenant)

        r = other_tenant.post(
            "/v1/credit_notes",
            {
                "invoice_id": theirs["invoice_id"],
                "lines": [{"invoice_line_id": ids["line_id"], "amount": 1}],
            },
        )

        _assert_problem(r, 422, "invalid_invoice_line")
        assert r.json()["errors"][0]["field"] == "lines[0].invoice_line_id"

    def test_removing_another_orgs_line_from_ones_own_draft_answers_404(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        ids = _seed(tenant)
        theirs = _seed(other_tenant)
        draft = other_tenant.post(
            "/v1/invoices",
            {"customer_id": theirs["customer_id"], "items": [{"description": "x", "amount": 100}]},
        ).json()

        r = other_tenant.delete(f"/v1/invoices/{draft['id']}/lines/{ids['line_id']}")

        _assert_problem(r, 404, "resource_missing")
        assert [li["amount"] for li in other_tenant.get(f"/v1/invoices/{draft['id']}").json()["lines"]] == [
            100
        ]

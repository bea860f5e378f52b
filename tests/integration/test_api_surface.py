"""OpenAPI, docs, health and the error shape of routes that do not exist."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant


class TestApiSurface:
    def test_publishes_openapi_3_1_with_every_v1_route(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()

        assert spec["openapi"].startswith("3.1")
        assert {
            "/v1/customers",
            "/v1/invoices",
            "/v1/invoices/{invoice_id}/finalize",
            "/v1/credit_notes",
        } <= set(spec["paths"])
        props = spec["components"]["schemas"]["InvoiceItem"]["properties"]
        assert props["amount"]["anyOf"][0]["type"] == "integer"

    def test_serves_interactive_docs(self, client: TestClient) -> None:
        r = client.get("/docs")

        assert r.status_code == 200 and "swagger" in r.text.lower()

    def test_health_and_readiness(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}

    def test_unknown_routes_and_methods_answer_problem_json(self, tenant: Tenant) -> None:
        missing = tenant.get("/v1/nothing-here")
        wrong_method = tenant.http.put("/v1/customers", headers=tenant.headers)

        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        assert missing.headers["content-type"] == "application/problem+json"
        assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")

    def test_every_response_carries_a_request_id(self, tenant: Tenant) -> None:
        r = tenant.get("/v1/customers", headers={"X-Request-Id": "req-123"})

        assert r.headers["Request-Id"] == "req-123"

    def test_refused_requests_carry_a_request_id_too(self, client: TestClient) -> None:
        r = client.get("/v1/customers", headers={"X-Request-Id": "req-401"})

        assert r.status_code == 401 and r.headers["Request-Id"] == "req-401"

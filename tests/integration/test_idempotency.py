"""Idempotency-Key with Stripe's semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.jobs.worker import purge_idempotency_keys
from revflow.storage.models import Customer, IdempotencyKey
from tests.conftest import Tenant


def _count(container: Container, model: type) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


class TestIdempotencyKey:
    def test_same_key_and_body_replays_the_stored_response(
        self, tenant: Tenant, container: Container
    ) -> None:
        body = {"name": "Acme", "currency": "USD"}

        first = tenant.post("/v1/customers", body, headers={"Idempotency-Key": "k-1"})
        second = tenant.post("/v1/customers", body, headers={"Idempotency-Key": "k-1"})

        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert _count(container, Customer) == 1

    def test_same_key_with_another_body_is_refused(self, tenant: Tenant, container: Container) -> None:
        tenant.post("/v1/customers", {"name": "Acme"}, headers={"Idempotency-Key": "k-2"})

        r = tenant.post("/v1/customers", {"name": "Other"}, headers={"Idempotency-Key": "k-2"})

        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_reused"
        assert _count(container, Customer) == 1

    def test_business_errors_are_replayed_with_their_status(self, tenant: Tenant) -> None:
        body = {"customer_id": "cus_missing", "items": [{"description": "A", "amount": 1, "currency": "USD"}]}

        first = tenant.post("/v1/invoices", body, headers={"Idempotency-Key": "k-3"})
        second = tenant.post("/v1/invoices", body, headers={"Idempotency-Key": "k-3"})

        assert (first.status_code, second.status_code) == (404, 404)
        assert second.json() == first.json()
        assert second.headers["content-type"] == "application/problem+json"
        assert second.headers["Idempotent-Replayed"] == "true"

    def test_validation_errors_are_not_stored_so_a_corrected_retry_runs(self, tenant: Tenant) -> None:
        bad = tenant.post("/v1/customers", {"name": 42}, headers={"Idempotency-Key": "k-4"})

        good = tenant.post("/v1/customers", {"name": "Fixed"}, headers={"Idempotency-Key": "k-4"})

        assert bad.status_code == 422
        assert good.status_code == 201 and good.json()["name"] == "Fixed"

    def test_keys_are_scoped_to_the_organization(self, tenant: Tenant, other_tenant: Tenant) -> None:
        mine = tenant.post("/v1/customers", {"name": "Mine"}, headers={"Idempotency-Key": "shared"})

        theirs = other_tenant.post("/v1/customers", {"name": "Theirs"}, headers={"Idempotency-Key": "shared"})

        assert theirs.status_code == 201
        assert theirs.json()["id"] != mine.json()["id"]

    def test_keys_are_kept_24_hours_then_purged(self, tenant: Tenant, container: Container) -> None:
        tenant.post("/v1/customers", {"name": "Acme"}, headers={"Idempotency-Key": "old"})
        tenant.post("/v1/customers", {"name": "Acme"}, headers={"Idempotency-Key": "new"})
        with container.sessions() as s:
            s.get(IdempotencyKey, (tenant.org_id, "old")).created_at = datetime.now(UTC) - timedelta(hours=49)  # type: ignore[union-attr]
            s.get(IdempotencyKey, (tenant.org_id, "new")).created_at = datetime.now(UTC) - timedelta(hours=25)  # type: ignore[union-attr]
            s.commit()

        purged = purge_idempotency_keys(container)

        assert purged == 1
        with container.sessions() as s:
            assert s.get(IdempotencyKey, (tenant.org_id, "new")) is not None

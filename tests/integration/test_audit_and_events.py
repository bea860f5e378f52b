"""The audit trail is append-only and covers every mutation; events are recorded with their change."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from revflow.bootstrap import Container
from revflow.storage.models import AuditEvent
from tests.conftest import Tenant


class TestAuditTrail:
    def test_invoice_lifecycle_is_audited_with_actor_and_changes(self, tenant: Tenant) -> None:
        customer = tenant.post("/v1/customers", {"name": "Acme", "currency": "USD"}).json()
        inv = tenant.post(
            "/v1/invoices", {"customer_id": customer["id"], "items": [{"description": "A", "amount": 900}]}
        ).json()
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        rows = tenant.get("/v1/audit_events", params={"object_id": inv["id"]}).json()["data"]

        assert [r["action"] for r in rows] == ["invoice.finalize", "invoice.create"]
        assert {r["actor_type"] for r in rows} == {"api_key"}
        assert {r["actor_id"] for r in rows} == {tenant.key_id}
        assert rows[0]["changes"]["status"] == {"before": "draft", "after": "open"}
        assert rows[0]["changes"]["number"] == {"before": None, "after": "INV-000001"}

    def test_filters_by_action(self, tenant: Tenant) -> None:
        tenant.post("/v1/customers", {"name": "A"})
        tenant.post("/v1/customers", {"name": "B"})

        rows = tenant.get("/v1/audit_events", params={"action": "customer.create"}).json()["data"]

        assert len(rows) == 2

    @pytest.mark.parametrize("statement", ["update", "delete"])
    def test_the_database_refuses_to_change_audit_rows(
        self, tenant: Tenant, container: Container, statement: str
    ) -> None:
        tenant.post("/v1/customers", {"name": "Acme"})
        stmt = update(AuditEvent).values(action="tampered") if statement == "update" else delete(AuditEvent)

        with container.sessions() as s, pytest.raises(DBAPIError, match="append-only"):
            s.execute(stmt)
            s.flush()

        with container.sessions() as s:
            actions = s.execute(text("SELECT action FROM audit_events ORDER BY id")).scalars().all()
            assert actions == ["api_key.create", "customer.create"]


class TestDomainEvents:
    def test_events_carry_the_object_and_follow_the_invoice(self, tenant: Tenant) -> None:
        customer = tenant.post("/v1/customers", {"name": "Acme", "currency": "USD"}).json()
        inv = tenant.post(
            "/v1/invoices", {"customer_id": customer["id"], "items": [{"description": "A", "amount": 900}]}
        ).json()
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")
        tenant.post(f"/v1/invoices/{inv['id']}/payments", {})
        tenant.post("/v1/credit_notes", {"invoice_id": inv["id"], "amount": 100})

        events = tenant.get("/v1/events", params={"limit": 100}).json()["data"]

        types = [e["type"] for e in reversed(events)]
        assert types == [
            "customer.created",
            "invoice.created",
            "invoice.finalized",
            "payment.succeeded",
            "invoice.paid",
            "credit_note.created",
            "invoice.updated",
        ]
        paid = next(e for e in events if e["type"] == "invoice.paid")
        assert paid["data"]["object"]["status"] == "paid"
        assert paid["data"]["object"]["amount_paid"] == 900

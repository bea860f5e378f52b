"""Billing runs write new invoices, lines, audit rows and events set-based (COPY on PostgreSQL): what
lands in the database is what the ORM would have stored, and every event carries the invoice as it is."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.domain.ids import new_id
from revflow.services import billing, customers, subscriptions
from revflow.services.context import Actor, Ctx
from revflow.services.views import InvoiceView
from revflow.storage.bulk import among, insert_new
from revflow.storage.models import Alert, AuditEvent, Event, Invoice, InvoiceLineItem, Subscription
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price


def _due(container: Container, org_id: str, n: int) -> datetime:
    """``n`` customers on a 12.34 per seat × 3 plan starting in an hour; returns that instant."""
    price = make_price(container, org_id, model="per_unit", unit="1234")
    start = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with container.sessions() as s:
        ctx = Ctx(session=s, org_id=org_id, actor=Actor("cli"), clock=FrozenClock(start - timedelta(hours=1)))
        for i in range(n):
            c = customers.create_customer(ctx, name=f"Customer {i}", currency="USD")
            subscriptions.create_subscription(
                ctx, customer_id=c.id, items=[{"price_id": price, "quantity": 3}], start_at=start
            )
        s.commit()
    return start


class TestBillingRunWrites:
    def test_invoices_and_lines_read_back_exactly(self, tenant: Tenant, container: Container) -> None:
        at = _due(container, tenant.org_id, 3)

        stats = billing.run_due(container.sessions, now=at, batch_size=2)

        assert (stats.invoices, stats.lines, stats.errors) == (3, 3, 0)
        with container.sessions() as s:
            invoices = list(s.scalars(select(Invoice).order_by(Invoice.number)))
            assert [i.number for i in invoices] == ["INV-000001", "INV-000002", "INV-000003"]
            for inv in invoices:
                assert (inv.status, inv.total, inv.amount_due, inv.currency) == ("open", 3702, 3702, "USD")
                assert inv.created_at == at and inv.finalized_at == at and inv.created_at.tzinfo is not None
                assert inv.metadata_ == {} and inv.customer_snapshot is not None
                (line,) = inv.lines
                assert (line.quantity, line.unit_amount_decimal, line.amount) == (
                    Decimal(3),
                    Decimal(1234),
                    3702,
                )
                assert (line.kind, line.discounts, line.metadata_, line.position) == ("recurring", [], {}, 0)
                assert line.period_start == at and line.billing_period_start == at

    def test_every_invoice_has_its_audit_rows_and_events(self, tenant: Tenant, container: Container) -> None:
        at = _due(container, tenant.org_id, 2)

        billing.run_due(container.sessions, now=at, batch_size=10)

        with container.sessions() as s:
            for inv in s.scalars(select(Invoice)):
                actions = sorted(s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == inv.id)))
                assert actions == ["invoice.create", "invoice.finalize"]
                events = {
                    e.type: e.data["object"]
                    for e in s.scalars(select(Event).where(Event.object_id == inv.id))
                }
                assert set(events) == {"invoice.created", "invoice.finalized"}
                # The finalized event carries the invoice exactly as stored (line views are built once).
                assert events["invoice.finalized"] == InvoiceView.of(inv).payload()
                created = events["invoice.created"]
                assert (created["status"], created["number"], created["total"]) == ("draft", None, 3702)
                assert created["lines"] == events["invoice.finalized"]["lines"]

    def test_a_failing_customer_is_skipped_and_the_others_keep_gapless_numbers(
        self, tenant: Tenant, container: Container
    ) -> None:
        at = _due(container, tenant.org_id, 3)
        with container.sessions() as s:
            broken = s.scalars(select(Subscription).order_by(Subscription.id)).all()[1]
            broken.timezone = "Nowhere/Nothing"  # bad data: the whole batch fails, then one by one
            s.commit()

        stats = billing.run_due(container.sessions, now=at, batch_size=10)

        assert (stats.invoices, stats.errors, stats.failed) == (2, 1, [broken.customer_id])
        with container.sessions() as s:
            numbers = sorted(n for n in s.scalars(select(Invoice.number)) if n is not None)
            assert numbers == ["INV-000001", "INV-000002"]
            billed = set(s.scalars(select(Invoice.customer_id)))
            assert broken.customer_id not in billed and len(billed) == 2
            events = s.scalars(select(Event.type).where(Event.type.like("invoice.%"))).all()
            assert sorted(events) == ["invoice.created"] * 2 + ["invoice.finalized"] * 2
            alert = s.scalars(select(Alert).where(Alert.type == "billing_failed")).one()
            assert alert.object_id == broken.customer_id

    def test_a_run_restores_the_garbage_collector_thresholds(
        self, tenant: Tenant, container: Container
    ) -> None:
        at = _due(container, tenant.org_id, 1)
        before = gc.get_threshold()

        billing.run_due(container.sessions, now=at)

        assert gc.get_threshold() == before


class TestInsertNew:
    def test_fills_column_defaults_and_attaches(self, tenant: Tenant, container: Container) -> None:
        now = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=FrozenClock(now))
            cus = customers.create_customer(ctx, name="Bulk", currency="EUR")
            s.flush()
            inv = Invoice(
                id=new_id("inv"),
                org_id=tenant.org_id,
                customer_id=cus.id,
                status="draft",
                currency="EUR",
                created_at=now,
                updated_at=now,
            )
            line = InvoiceLineItem(
                id=new_id("il"),
                org_id=tenant.org_id,
                invoice_id=inv.id,
                position=0,
                description="Sub-cent",
                quantity=Decimal("2.5"),
                unit_amount_decimal=Decimal("0.0004"),
                amount=0,
                currency="EUR",
            )

            insert_new(s, [inv, line], attach=True)

            assert s.get(Invoice, inv.id) is inv  # persistent, nothing left to flush
            assert not s.new and not s.dirty
            s.commit()
        assert (inv.description, inv.discount, inv.metadata_) == (None, 0, {})  # readable once detached
        with container.sessions() as s:
            stored = s.get(Invoice, inv.id)
            assert stored is not None
            assert (stored.billing_reason, stored.collection_method, stored.total, stored.metadata_) == (
                "manual",
                "send_invoice",
                0,
                {},
            )
            (got,) = stored.lines
            assert (got.quantity, got.unit_amount_decimal, got.kind, got.discounts) == (
                Decimal("2.5"),
                Decimal("0.0004"),
                "one_off",
                [],
            )
            found = s.scalars(select(Invoice.id).where(among(s, Invoice.id, [inv.id, "inv_missing"]))).all()
            assert found == [inv.id]

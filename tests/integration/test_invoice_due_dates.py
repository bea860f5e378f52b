"""Due dates count from the customer's local date, not the UTC date of the billing point."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.services import billing, customers, invoices, subscriptions
from revflow.services.context import Actor, Ctx
from revflow.storage.models import Invoice
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price


def _subscribe(container: Container, org_id: str, tz: str, start: datetime) -> str:
    """A monthly 100.00 subscription, net 30, for a customer in ``tz``, started (and billed) at
    ``start``; returns the customer id."""
    price = make_price(container, org_id, flat=10000)
    with container.sessions() as s:
        ctx = Ctx(session=s, org_id=org_id, actor=Actor("cli"), clock=FrozenClock(start))
        c = customers.create_customer(ctx, name="Local", currency="USD", timezone=tz)
        subscriptions.create_subscription(
            ctx,
            customer_id=c.id,
            items=[{"price_id": price}],
            start_at=start,
            collection_method="send_invoice",
            days_until_due=30,
        )
        s.commit()
        return c.id


def _due_dates(container: Container, customer_id: str) -> list[date | None]:
    with container.sessions() as s:
        return list(
            s.scalars(
                select(Invoice.due_date)
                .where(Invoice.customer_id == customer_id)
                .order_by(Invoice.created_at)
            )
        )


class TestDueDates:
    def test_los_angeles_evening_counts_from_the_local_day(
        self, tenant: Tenant, container: Container
    ) -> None:
        # 2024-03-01 20:00 in Los Angeles (PST) is 2024-03-02 04:00 UTC.
        start = datetime(2024, 3, 2, 4, 0, tzinfo=UTC)

        cid = _subscribe(container, tenant.org_id, "America/Los_Angeles", start)

        assert _due_dates(container, cid) == [date(2024, 3, 31)]

    def test_los_angeles_renewal_after_the_dst_change(self, tenant: Tenant, container: Container) -> None:
        start = datetime(2024, 3, 2, 4, 0, tzinfo=UTC)
        cid = _subscribe(container, tenant.org_id, "America/Los_Angeles", start)
        # The renewal is 2024-04-01 20:00 PDT = 2024-04-02 03:00 UTC.
        renewal = datetime(2024, 4, 2, 3, 0, tzinfo=UTC)

        billing.run_due(container.sessions, now=renewal)

        assert _due_dates(container, cid) == [date(2024, 3, 31), date(2024, 5, 1)]

    def test_tokyo_midnight_counts_from_the_local_day(self, tenant: Tenant, container: Container) -> None:
        # 2024-03-01 00:00 in Tokyo is 2024-02-29 15:00 UTC (still February in UTC).
        start = datetime(2024, 2, 29, 15, 0, tzinfo=UTC)

        cid = _subscribe(container, tenant.org_id, "Asia/Tokyo", start)

        assert _due_dates(container, cid) == [date(2024, 3, 31)]

    def test_manual_invoice_default_terms_count_from_the_local_day(
        self, tenant: Tenant, container: Container
    ) -> None:
        at = datetime(2024, 2, 29, 15, 0, tzinfo=UTC)  # 2024-03-01 00:00 in Tokyo
        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=FrozenClock(at))
            c = customers.create_customer(ctx, name="Tokyo", currency="JPY", timezone="Asia/Tokyo")
            inv = invoices.create_invoice(
                ctx, customer_id=c.id, items=[{"description": "Setup", "amount": 5000}]
            )

            finalized = invoices.finalize_invoice(ctx, inv.id)

            assert finalized.due_date == date(2024, 3, 31)  # the organization's default: net 30

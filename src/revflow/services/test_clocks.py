"""Test clocks (as Stripe has them): customers and subscriptions on a clock live at its frozen time;
advancing the clock bills everything that fell due in between, cycle by cycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.services import billing
from revflow.services.context import Ctx
from revflow.services.numbering import next_clock_number
from revflow.services.pagination import Page, paginate
from revflow.services.recorder import record
from revflow.services.views_subscriptions import TestClockView
from revflow.storage.models import Customer, Invoice, Subscription, TestClock

__all__ = ["ClockBackwards", "advance_clock", "create_clock", "list_clocks"]


class ClockBackwards(InvalidInput):
    """A test clock only moves forward."""

    code = "clock_backwards"


def create_clock(ctx: Ctx, *, frozen_time: datetime, name: str = "Test clock") -> TestClock:
    """Create a clock frozen at ``frozen_time`` and return it."""
    clock = TestClock(
        id=new_id("clock"),
        org_id=ctx.org_id,
        name=name,
        number=next_clock_number(ctx),
        frozen_time=frozen_time,
        status="ready",
        created_at=ctx.now(),
    )
    ctx.session.add(clock)
    ctx.session.flush()
    record(
        ctx,
        action="test_clock.create",
        object_type="test_clock",
        object_id=clock.id,
        changes={"frozen_time": {"before": None, "after": frozen_time.isoformat()}},
        event_type="test_clock.created",
        data=TestClockView.of(clock).payload(),
    )
    return clock


def advance_clock(ctx: Ctx, clock_id: str, *, to: datetime) -> tuple[TestClock, list[Invoice]]:
    """Move the clock forward to ``to`` and bill, in order, everything due on it in between.

    Returns the clock and the invoices created. Raises ClockBackwards for a time before the frozen time.
    """
    clock = ctx.get(TestClock, clock_id, for_update=True, label="test clock")
    if to < clock.frozen_time:
        raise ClockBackwards(
            f"the clock is at {clock.frozen_time.isoformat()}; it cannot move back to {to.isoformat()}",
            details=[{"field": "frozen_time", "code": "clock_backwards"}],
        )
    before = clock.frozen_time
    clock.frozen_time = to
    ctx.session.flush()
    customers = list(
        ctx.session.scalars(
            select(Customer.id)
            .where(Customer.org_id == ctx.org_id, Customer.test_clock_id == clock.id)
            .order_by(Customer.id)
        )
    )
    created: list[Invoice] = []
    for customer_id in customers:
        due = ctx.session.scalar(
            select(Subscription.id)
            .where(Subscription.customer_id == customer_id, Subscription.next_billing_at <= to)
            .limit(1)
        )
        draft = ctx.session.scalar(
            select(Invoice.id)
            .where(
                Invoice.customer_id == customer_id, Invoice.status == "draft", Invoice.auto_finalize_at <= to
            )
            .limit(1)
        )
        if due is not None or draft is not None:
            created += billing.bill_customer(ctx, customer_id, now=to)
    record(
        ctx,
        action="test_clock.advance",
        object_type="test_clock",
        object_id=clock.id,
        changes={"frozen_time": {"before": before.isoformat(), "after": to.isoformat()}},
        event_type="test_clock.advanced",
        data=TestClockView.of(clock).payload(),
    )
    return clock, created


def list_clocks(
    ctx: Ctx, *, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
) -> Page[TestClock]:
    """One page of test clocks, newest first."""
    stmt = select(TestClock).where(TestClock.org_id == ctx.org_id)
    return paginate(
        ctx, stmt, TestClock, limit=limit, starting_after=starting_after, ending_before=ending_before
    )

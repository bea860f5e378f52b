"""Queue a gateway charge for an invoice: a ``pending`` payment row that a worker claims and sends.

Written in the caller's transaction (finalization, a dunning step, a payment-method update), so the charge is
scheduled exactly when the change that causes it commits, and the gateway is never called inside it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.storage.models import Invoice, Payment, TestClock

__all__ = ["attempt_key", "clock_now", "enqueue_charge", "next_attempt_number", "wants_charge"]


def attempt_key(org_id: str, invoice_id: str, attempt: int) -> str:
    """The gateway idempotency key of ``attempt`` on an invoice: the same attempt never charges twice."""
    return f"revflow:{org_id}:{invoice_id}:attempt:{attempt}"


def wants_charge(inv: Invoice) -> bool:
    """True when ``inv`` is collected by charging the customer's default payment method."""
    return (
        inv.collection_method == "charge_automatically" and inv.status == "open" and inv.amount_remaining > 0
    )


def clock_now(ctx: Ctx, test_clock_id: str | None, now: datetime) -> datetime:
    """The frozen time of ``test_clock_id``, else ``now``."""
    if test_clock_id is None:
        return now
    frozen = ctx.session.scalar(select(TestClock.frozen_time).where(TestClock.id == test_clock_id))
    return frozen if frozen is not None else now


def next_attempt_number(ctx: Ctx, invoice_id: str) -> int:
    last = ctx.session.scalar(
        select(func.max(Payment.attempt_number)).where(Payment.invoice_id == invoice_id)
    )
    return (last or 0) + 1


def enqueue_charge(
    ctx: Ctx,
    inv: Invoice,
    *,
    at: datetime,
    attempt: int | None = None,
    reason: str = "finalized",
    test_clock_id: str | None = None,
) -> Payment:
    """Add a ``pending`` charge of what remains on ``inv``, due at ``at``; returns the payment row.

    ``attempt`` defaults to the next number (1 at finalization: the invoice has no payments yet, and no
    query is needed inside a billing batch). ``test_clock_id`` (the customer's) puts the charge on that test
    clock when the invoice itself is not on one (``at`` is then the clock's time: see :func:`clock_now`)."""
    number = attempt if attempt is not None else next_attempt_number(ctx, inv.id)
    clock_id = inv.test_clock_id or test_clock_id
    payment = Payment(
        id=new_id("pay"),
        org_id=ctx.org_id,
        invoice_id=inv.id,
        customer_id=inv.customer_id,
        amount=inv.amount_remaining,
        currency=inv.currency,
        status="pending",
        method="card",
        reference=None,
        paid_at=None,
        metadata_={"reason": reason},
        created_at=ctx.now(),
        updated_at=ctx.now(),
        idempotency_key=attempt_key(ctx.org_id, inv.id, number),
        attempt_number=number,
        hard_decline=False,
        scheduled_at=at,
        test_clock_id=clock_id,
        amount_refunded=0,
        disputed=False,
    )
    ctx.session.add(payment)
    return payment

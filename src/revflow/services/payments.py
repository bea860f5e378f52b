"""Collecting invoices through the payment gateway, kill-safe.

A charge is a ``payments`` row that moves ``pending`` → ``sending`` → outcome:

1. *Queue*: finalization, a dunning step or a manual charge adds a ``pending`` row in its own transaction
   (``collection_queue.enqueue_charge``), with the idempotency key ``f(invoice, attempt)``.
2. *Claim*: a worker takes due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), marks them ``sending`` with
   a lease, and commits. No gateway call happens inside a transaction.
3. *Send*: outside any transaction, it calls the gateway with that key.
4. *Record*: a new transaction applies the outcome (invoice paid, dunning step, ...).

A crash between 3 and 4 leaves the row ``sending``; once its lease ends the janitor (the same claim) asks
the gateway with ``find_charge`` and records what it says, or sends the charge again under the *same* key
when the gateway never saw it. Either way the gateway holds at most one charge per attempt. An ``unknown``
outcome (timeout) is resolved the same way before any retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from revflow import failpoints
from revflow.domain.errors import Conflict, InvalidInput
from revflow.services import dunning
from revflow.services.alerts import raise_alert
from revflow.services.collection_queue import enqueue_charge
from revflow.services.context import SYSTEM, Ctx
from revflow.services.invoices import apply_payment, mark_paid
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.ports import (
    ChargeRequest,
    ChargeResult,
    GatewayError,
    GatewayUnavailable,
    PaymentGateway,
)
from revflow.services.recorder import record
from revflow.services.views import PaymentView
from revflow.storage.models import (
    Customer,
    CustomerExternalId,
    Invoice,
    Payment,
    TestClock,
)
from revflow.storage.payment_models import PaymentMethod

__all__ = [
    "CollectionStats",
    "apply_outcome",
    "charge_invoice",
    "clock_time",
    "gateway_customer_ref",
    "list_payments",
    "run_collection",
]

log = structlog.get_logger("revflow.payments")

#: A later status never gives way to an earlier one (out-of-order webhooks cannot un-pay an invoice).
RANK = {
    "pending": 0,
    "sending": 0,
    "unknown": 0,
    "canceled": 0,
    "processing": 1,
    "requires_action": 2,
    "failed": 2,
    "succeeded": 3,
}
IN_FLIGHT = ("sending", "unknown", "processing")
#: Unknown outcomes in a row after which an alert is raised (the janitor keeps resolving).
UNRESOLVED_ALERT_AFTER = 5


class _FixedClock:
    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at


def clock_time(session: Session, test_clock_id: str | None, now: datetime) -> datetime:
    """The time of an object on ``test_clock_id`` (its frozen time), else ``now``."""
    if test_clock_id is None:
        return now
    frozen = session.scalar(select(TestClock.frozen_time).where(TestClock.id == test_clock_id))
    return frozen if frozen is not None else now


def ctx_at(session: Session, org_id: str, at: datetime) -> Ctx:
    return Ctx(session=session, org_id=org_id, actor=SYSTEM, clock=_FixedClock(at))


def gateway_customer_ref(session: Session, customer_id: str, gateway: str) -> str | None:
    return session.scalar(
        select(CustomerExternalId.external_id).where(
            CustomerExternalId.customer_id == customer_id, CustomerExternalId.system == gateway
        )
    )


def default_method(session: Session, customer_id: str) -> PaymentMethod | None:
    return session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.customer_id == customer_id,
            PaymentMethod.status == "active",
            PaymentMethod.is_default.is_(True),
        )
    )


# --- manual charge ---------------------------------------------------------------------------------


def charge_invoice(ctx: Ctx, invoice_id: str) -> Payment:
    """Queue a charge of what remains on an open invoice, due now, on the customer's default payment method.

    Returns the pending payment (the worker sends it; a pending retry is brought forward instead of adding
    one). Raises Conflict ``invalid_state`` (draft, paid, void), ``payment_in_progress`` (a charge awaits its
    outcome), InvalidInput ``no_payment_method``.
    """
    ctx.get(Invoice, invoice_id, label="invoice")  # 404 before taking any lock
    # Lock order everywhere: the invoice's payment rows, then the invoice (as the worker's claim does).
    list(
        ctx.session.scalars(
            select(Payment)
            .where(Payment.invoice_id == invoice_id, Payment.status == "pending")
            .with_for_update()
        )
    )
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    if inv.status not in ("open", "uncollectible") or inv.amount_remaining <= 0:
        raise Conflict(
            f"invoice {inv.id} is {inv.status}; only open invoices can be charged", code="invalid_state"
        )
    busy = ctx.session.scalar(
        select(Payment).where(Payment.invoice_id == inv.id, Payment.status.in_(IN_FLIGHT)).limit(1)
    )
    if busy is not None:
        raise Conflict(
            f"payment {busy.id} of invoice {inv.id} is {busy.status}; wait for its outcome",
            code="payment_in_progress",
        )
    if default_method(ctx.session, inv.customer_id) is None:
        raise InvalidInput(
            f"customer {inv.customer_id} has no default payment method", code="no_payment_method"
        )
    clock_id = inv.test_clock_id or ctx.session.scalar(
        select(Customer.test_clock_id).where(Customer.id == inv.customer_id)
    )
    at = clock_time(ctx.session, clock_id, ctx.now())
    pending = ctx.session.scalar(
        select(Payment).where(Payment.invoice_id == inv.id, Payment.status == "pending").limit(1)
    )
    if pending is not None:
        pending.scheduled_at = at
        pending.updated_at = ctx.now()
        return pending
    payment = enqueue_charge(ctx, inv, at=at, reason="manual", test_clock_id=clock_id)
    ctx.session.flush()
    _record(ctx, payment, "payment.create", "payment.created")
    return payment


# --- the worker's loop -----------------------------------------------------------------------------


@dataclass
class CollectionStats:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + 1


@dataclass(frozen=True)
class _Claim:
    payment_id: str
    org_id: str
    resolving: bool  # a stale ``sending``/``unknown`` row: ask the gateway before sending
    request: ChargeRequest


def run_collection(
    sessions: Callable[[], Session],
    gateway: PaymentGateway,
    *,
    now: datetime,
    lease_seconds: int,
    limit: int = 50,
) -> CollectionStats:
    """Send every due charge and resolve every stale one; returns what happened. Safe in several workers at
    once: rows are claimed with SKIP LOCKED and a lease, and the gateway dedupes by idempotency key."""
    stats = CollectionStats()
    seen: set[str] = set()
    while True:
        claims = _claim(
            sessions, gateway, now=now, lease=timedelta(seconds=lease_seconds), limit=limit, seen=seen
        )
        if not claims:
            return stats
        for claim in claims:
            seen.add(claim.payment_id)
            stats.claimed += 1
            stats.count(_send(sessions, gateway, claim, now=now, lease=timedelta(seconds=lease_seconds)))


def _due(now: datetime) -> Any:
    frozen = select(TestClock.frozen_time).where(TestClock.id == Payment.test_clock_id).scalar_subquery()
    pending = and_(
        Payment.status == "pending",
        or_(
            and_(Payment.test_clock_id.is_(None), Payment.scheduled_at <= now),
            and_(Payment.test_clock_id.is_not(None), Payment.scheduled_at <= frozen),
        ),
    )
    stale = and_(Payment.status.in_(("sending", "unknown")), Payment.lease_expires_at <= now)
    return or_(pending, stale)


def _claim(
    sessions: Callable[[], Session],
    gateway: PaymentGateway,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    seen: set[str],
) -> list[_Claim]:
    with sessions() as session:
        stmt = select(Payment).where(_due(now))
        if seen:
            stmt = stmt.where(Payment.id.not_in(seen))
        rows = list(
            session.scalars(
                stmt.order_by(Payment.scheduled_at, Payment.id).limit(limit).with_for_update(skip_locked=True)
            )
        )
        claims: list[_Claim] = []
        for p in rows:
            seen.add(p.id)
            claim = _claim_one(session, gateway, p, now=now, lease=lease)
            if claim is not None:
                claims.append(claim)
        session.commit()
        if not rows:
            return []
        if not claims:  # everything claimed was settled without the gateway: look for more
            return _claim(sessions, gateway, now=now, lease=lease, limit=limit, seen=seen)
        return claims


def _claim_one(
    session: Session, gateway: PaymentGateway, p: Payment, *, now: datetime, lease: timedelta
) -> _Claim | None:
    at = clock_time(session, p.test_clock_id, now)
    ctx = ctx_at(session, p.org_id, at)
    resolving = p.status != "pending"
    if not resolving:
        inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
        if inv.status not in ("open", "uncollectible") or inv.amount_remaining <= 0:
            p.status, p.updated_at, p.scheduled_at = "canceled", now, None
            p.failure_message = f"not sent: the invoice is {inv.status}"
            _record(ctx, p, "payment.cancel", "payment.canceled")
            return None
        method = default_method(session, p.customer_id)
        ref = gateway_customer_ref(session, p.customer_id, gateway.name)
        if method is None or ref is None or method.gateway != gateway.name:
            p.gateway = gateway.name
            apply_outcome(
                ctx,
                p,
                ChargeResult(
                    "failed",
                    None,
                    inv.amount_remaining,
                    inv.currency,
                    failure_code="no_payment_method",
                    failure_message="The customer has no default payment method.",
                ),
                at=at,
            )
            return None
        p.amount = inv.amount_remaining
        p.payment_method_id = method.id
        p.method = method.type
        p.gateway = gateway.name
        p.reference = method.token
        p.status = "sending"
    else:
        ref = gateway_customer_ref(session, p.customer_id, gateway.name)
    p.lease_expires_at = now + lease
    p.updated_at = now
    metadata = {
        "revflow_org_id": p.org_id,
        "revflow_invoice_id": p.invoice_id,
        "revflow_payment_id": p.id,
    }
    if p.test_clock_id is not None and p.scheduled_at is not None:
        metadata["revflow_test_clock_id"] = p.test_clock_id
        metadata["revflow_clock_time"] = p.scheduled_at.isoformat()
    request = ChargeRequest(
        customer_ref=ref or "",
        payment_method=p.reference or "",
        amount=p.amount,
        currency=p.currency,
        idempotency_key=p.idempotency_key or "",
        description=f"Invoice {p.invoice_id}",
        metadata=metadata,
        payment_method_type=p.method,
    )
    return _Claim(p.id, p.org_id, resolving, request)


def _send(
    sessions: Callable[[], Session],
    gateway: PaymentGateway,
    claim: _Claim,
    *,
    now: datetime,
    lease: timedelta,
) -> str:
    req = claim.request
    result: ChargeResult | None = None
    try:
        if claim.resolving:
            result = gateway.find_charge(
                idempotency_key=req.idempotency_key, customer_ref=req.customer_ref, metadata=req.metadata
            )
        if result is None:
            failpoints.hit("payments.before_gateway_call")
            result = gateway.charge(req)
    except GatewayUnavailable as exc:
        result = ChargeResult("unknown", None, req.amount, req.currency, failure_message=str(exc))
    except GatewayError as exc:
        result = ChargeResult(
            "failed",
            None,
            req.amount,
            req.currency,
            failure_code=exc.code or "gateway_error",
            failure_message=str(exc),
        )
    failpoints.hit("payments.after_gateway_call")
    with sessions() as session:
        p = session.get_one(Payment, claim.payment_id, with_for_update=True)
        if p.status not in ("sending", "unknown"):  # another worker recorded it meanwhile
            session.rollback()
            return p.status
        at = clock_time(session, p.test_clock_id, now)
        ctx = ctx_at(session, p.org_id, at)
        if result.status == "unknown":
            p.status, p.updated_at = "unknown", now
            p.lease_expires_at = now + lease  # the janitor asks the gateway once the lease ends
            p.gateway_ref = result.gateway_ref or p.gateway_ref
            tries = int(p.metadata_.get("unknown_outcomes", "0")) + 1
            p.metadata_ = {**p.metadata_, "unknown_outcomes": str(tries)}
            _record(ctx, p, "payment.unknown", None)
            if tries >= UNRESOLVED_ALERT_AFTER:  # keeps resolving, but a person should know
                raise_alert(
                    session,
                    org_id=p.org_id,
                    type="payment_unresolved",
                    message=f"Payment {p.id} of invoice {p.invoice_id}: the gateway has not answered "
                    f"{tries} times; it is retried under the same idempotency key",
                    dedupe_key=f"payment_unresolved:{p.id}",
                    now=at,
                    object_type="payment",
                    object_id=p.id,
                    details={"tries": tries, "error": result.failure_message},
                )
        else:
            apply_outcome(ctx, p, result, at=at)
        session.commit()
        log.info(
            "payment_attempt", payment=p.id, invoice=p.invoice_id, status=p.status, attempt=p.attempt_number
        )
        return p.status


# --- outcomes ----------------------------------------------------------------------------------------


def apply_outcome(
    ctx: Ctx, p: Payment, result: ChargeResult, *, at: datetime, reported_at: datetime | None = None
) -> bool:
    """Apply a gateway outcome to payment ``p`` (and through it to the invoice, dunning, the subscription).

    ``reported_at`` is the gateway's time of the outcome (a webhook's ``created``); an outcome that ranks
    below the current status, or an equal-rank one older than the last applied, is ignored. Returns True
    when something changed.
    """
    new = result.status
    if new == "unknown":
        return False
    stamp = reported_at or at
    current = RANK.get(p.status, 0)
    if RANK[new] < current:
        return False
    same_rank = RANK[new] == current and current > 0
    if same_rank and (new == p.status or (p.status_at is not None and stamp < p.status_at)):
        return False  # the same news again, or the older of two equal-rank outcomes
    counted = p.status in ("failed", "requires_action")  # dunning already counted this attempt's failure
    p.status = new
    p.gateway_ref = result.gateway_ref or p.gateway_ref
    p.failure_code, p.decline_code = result.failure_code, result.decline_code
    p.failure_message, p.hard_decline = result.failure_message, result.hard_decline
    p.method = result.payment_method_type or p.method
    p.status_at, p.updated_at, p.lease_expires_at = stamp, ctx.now(), None
    if new == "succeeded":
        p.paid_at = at
    ctx.session.flush()
    _record(ctx, p, f"payment.{new}", f"payment.{new}")
    inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
    if new == "succeeded":
        _apply_to_invoice(ctx, inv, p, at)
        dunning.on_success(ctx, inv, at=at)
    elif new in ("failed", "requires_action") and not counted:
        dunning.on_failure(ctx, inv, p, at=at)
    return True


def _apply_to_invoice(ctx: Ctx, inv: Invoice, p: Payment, at: datetime) -> None:
    description = f"Overpayment of invoice {inv.number} by payment {p.id}"
    applied = apply_payment(ctx, inv, amount=p.amount, at=at, description=description)
    if applied and inv.amount_remaining == 0:
        mark_paid(ctx, inv, at)


def _record(ctx: Ctx, p: Payment, action: str, event: str | None) -> None:
    record(
        ctx,
        action=action,
        object_type="payment",
        object_id=p.id,
        changes={"status": p.status, "attempt_number": p.attempt_number, "failure_code": p.failure_code},
        event_type=event,
        data=PaymentView.of(p).payload(),
    )


# --- reading -----------------------------------------------------------------------------------------


def list_payments(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    invoice_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
) -> Page[Payment]:
    """One page of payments (attempts included), newest first."""
    stmt = filtered(
        select(Payment).where(Payment.org_id == ctx.org_id),
        (Payment.invoice_id, invoice_id),
        (Payment.customer_id, customer_id),
        (Payment.status, status),
    )
    return paginate(
        ctx, stmt, Payment, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def attempts_of(ctx: Ctx, invoice_id: str) -> list[Payment]:
    """Every payment of an invoice in attempt order (hand-recorded ones last)."""
    rows = ctx.session.scalars(
        select(Payment).where(Payment.invoice_id == invoice_id, Payment.org_id == ctx.org_id)
    )
    return sorted(rows, key=lambda p: (p.attempt_number is None, p.attempt_number or 0, p.created_at))

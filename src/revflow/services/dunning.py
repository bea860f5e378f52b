"""Dunning: what happens after a charge fails, until the invoice is paid or the final action is taken.

Rules (ADR 0018):

- A policy has ``retry_days`` (days after the *first* failure on which each retry runs), ``max_attempts``
  (charges in all, the first included: at most ``len(retry_days) + 1``) and a ``final_action``: ``cancel``
  or ``pause`` the subscription, or ``mark_uncollectible`` the invoice (an invoice without a subscription is
  always marked uncollectible). The policy is the customer's, else the plan's, else the organization's
  default, else the built-in one (``[1, 3, 5, 7]``, 5 attempts, ``cancel``); it is frozen on the case when
  dunning begins.
- A hard decline (stolen or lost card, fraud, closed account) takes the final action at once.
- A failed bank debit (ACH return) is not retried on the same account: the case waits for a new payment
  method until the last retry day, then takes the final action.
- While dunning the subscription is ``past_due``; a payment makes it ``active`` again.
- A new or newly default payment method triggers an immediate retry of every active case of the customer.
- A ``send_invoice`` invoice is never charged: once its due date has passed unpaid (00:00 UTC the day
  after, or on its test clock) a ``send_invoice`` case opens with an ``overdue`` email and the subscription
  ``past_due``; further ``overdue`` reminders follow ``retry_days`` after that moment, and the last
  scheduled day (bounded by ``max_attempts`` steps) takes the final action instead (ADR 0020).
- Every step can queue a templated email (``retry``, ``ach_failed``, ``overdue``, ``final``, ``recovered``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.money import Currency
from revflow.domain.subscriptions import SubscriptionStatus, ensure_transition
from revflow.services import emails
from revflow.services.collection_queue import enqueue_charge, next_attempt_number
from revflow.services.context import SYSTEM, Ctx
from revflow.services.pagination import Page, paginate
from revflow.services.recorder import record
from revflow.services.views import PaymentView
from revflow.services.views_payments import DunningView
from revflow.storage.models import Customer, Invoice, Payment, Subscription, TestClock
from revflow.storage.payment_models import DunningAssignment, DunningCase, DunningPolicy

__all__ = [
    "BUILT_IN",
    "FINAL_ACTIONS",
    "SEND_INVOICE",
    "assignments_of",
    "collection_of",
    "create_policy",
    "list_policies",
    "on_failure",
    "on_payment_method_updated",
    "on_success",
    "open_overdue",
    "overdue_at",
    "resolve_policy",
    "run_deadlines",
    "update_policy",
]

log = structlog.get_logger("revflow.dunning")

FINAL_ACTIONS = ("cancel", "pause", "mark_uncollectible")
#: The mode of a case about an overdue ``send_invoice`` invoice: reminders, no charges.
SEND_INVOICE = "send_invoice"
BUILT_IN: dict[str, Any] = {
    "policy_id": None,
    "name": "Built-in",
    "retry_days": [1, 3, 5, 7],
    "max_attempts": 5,
    "final_action": "cancel",
    "send_emails": True,
    "templates": {},
}
_FINAL_TEXT = {
    "cancel": "Your subscription has been canceled.",
    "pause": "Your subscription has been paused until the invoice is paid.",
    "mark_uncollectible": "The invoice has been marked uncollectible.",
}


# --- policies ----------------------------------------------------------------------------------------


def _check(retry_days: list[int], max_attempts: int, final_action: str) -> None:
    if any(d <= 0 for d in retry_days) or retry_days != sorted(set(retry_days)):
        raise InvalidInput(
            "retry_days must be increasing positive day counts, e.g. [1, 3, 5, 7]",
            code="invalid_retry_days",
            details=[{"field": "retry_days", "code": "invalid"}],
        )
    if not 1 <= max_attempts <= len(retry_days) + 1:
        raise InvalidInput(
            "max_attempts counts the first charge and each retry: 1 to len(retry_days) + 1",
            code="invalid_max_attempts",
            details=[{"field": "max_attempts", "code": "invalid"}],
        )
    if final_action not in FINAL_ACTIONS:
        raise InvalidInput(
            f"final_action must be one of {list(FINAL_ACTIONS)}",
            code="invalid_final_action",
            details=[{"field": "final_action", "code": "invalid"}],
        )


def _assign(ctx: Ctx, policy: DunningPolicy, *, plan_ids: list[str], customer_ids: list[str]) -> None:
    from revflow.storage.models import Plan

    for plan_id in plan_ids:
        ctx.get(Plan, plan_id, label="plan")
    for customer_id in customer_ids:
        ctx.get(Customer, customer_id, label="customer")
    for row in ctx.session.scalars(
        select(DunningAssignment).where(
            DunningAssignment.org_id == ctx.org_id,
            or_(
                DunningAssignment.policy_id == policy.id,
                DunningAssignment.plan_id.in_(plan_ids),
                DunningAssignment.customer_id.in_(customer_ids),
            ),
        )
    ):
        ctx.session.delete(row)
    ctx.session.flush()
    for plan_id in plan_ids:
        ctx.session.add(DunningAssignment(org_id=ctx.org_id, policy_id=policy.id, plan_id=plan_id))
    for customer_id in customer_ids:
        ctx.session.add(DunningAssignment(org_id=ctx.org_id, policy_id=policy.id, customer_id=customer_id))


def assignments_of(ctx: Ctx, policy_id: str) -> tuple[list[str], list[str]]:
    rows = list(
        ctx.session.scalars(select(DunningAssignment).where(DunningAssignment.policy_id == policy_id))
    )
    return (
        sorted(r.plan_id for r in rows if r.plan_id),
        sorted(r.customer_id for r in rows if r.customer_id),
    )


def _unset_default(ctx: Ctx, keep: str) -> None:
    for other in ctx.session.scalars(
        select(DunningPolicy).where(
            DunningPolicy.org_id == ctx.org_id, DunningPolicy.is_default.is_(True), DunningPolicy.id != keep
        )
    ):
        other.is_default = False


def create_policy(
    ctx: Ctx,
    *,
    name: str,
    retry_days: list[int],
    max_attempts: int | None = None,
    final_action: str = "cancel",
    is_default: bool = False,
    send_emails: bool = True,
    templates: dict[str, Any] | None = None,
    plan_ids: list[str] | None = None,
    customer_ids: list[str] | None = None,
) -> DunningPolicy:
    """Create a dunning policy (assigned to ``plan_ids``/``customer_ids``, or the org default). Raises
    InvalidInput (schedule, action, templates), NotFound (plan, customer)."""
    attempts = max_attempts if max_attempts is not None else len(retry_days) + 1
    _check(retry_days, attempts, final_action)
    now = ctx.now()
    policy = DunningPolicy(
        id=new_id("dpol"),
        org_id=ctx.org_id,
        name=name,
        retry_days=list(retry_days),
        max_attempts=attempts,
        final_action=final_action,
        is_default=is_default,
        send_emails=send_emails,
        templates=emails.check_templates(templates or {}),
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(policy)
    ctx.session.flush()
    if is_default:
        _unset_default(ctx, policy.id)
    _assign(ctx, policy, plan_ids=plan_ids or [], customer_ids=customer_ids or [])
    record(
        ctx,
        action="dunning_policy.create",
        object_type="dunning_policy",
        object_id=policy.id,
        changes={"retry_days": retry_days, "max_attempts": attempts, "final_action": final_action},
        event_type="dunning_policy.created",
        data={"id": policy.id, "name": name},
    )
    return policy


def update_policy(ctx: Ctx, policy_id: str, *, changes: dict[str, Any]) -> DunningPolicy:
    """Change a policy; cases already running keep the policy they started with."""
    policy = ctx.get(DunningPolicy, policy_id, for_update=True, label="dunning policy")
    retry_days = changes.get("retry_days") or policy.retry_days
    max_attempts = changes.get("max_attempts") or (
        len(retry_days) + 1 if "retry_days" in changes else policy.max_attempts
    )
    final_action = changes.get("final_action") or policy.final_action
    _check(retry_days, max_attempts, final_action)
    before = {
        "retry_days": policy.retry_days,
        "max_attempts": policy.max_attempts,
        "final_action": policy.final_action,
    }
    policy.retry_days, policy.max_attempts, policy.final_action = list(retry_days), max_attempts, final_action
    for key in ("name", "send_emails"):
        if changes.get(key) is not None:
            setattr(policy, key, changes[key])
    if changes.get("templates") is not None:
        policy.templates = emails.check_templates(changes["templates"])
    if changes.get("is_default") is not None:
        policy.is_default = bool(changes["is_default"])
        if policy.is_default:
            _unset_default(ctx, policy.id)
    if changes.get("plan_ids") is not None or changes.get("customer_ids") is not None:
        plans, customers = assignments_of(ctx, policy.id)
        _assign(
            ctx,
            policy,
            plan_ids=changes["plan_ids"] if changes.get("plan_ids") is not None else plans,
            customer_ids=changes["customer_ids"] if changes.get("customer_ids") is not None else customers,
        )
    policy.updated_at = ctx.now()
    record(
        ctx,
        action="dunning_policy.update",
        object_type="dunning_policy",
        object_id=policy.id,
        changes={
            "before": before,
            "after": {"retry_days": retry_days, "max_attempts": max_attempts, "final_action": final_action},
        },
        event_type="dunning_policy.updated",
        data={"id": policy.id, "name": policy.name},
    )
    return policy


def list_policies(
    ctx: Ctx, *, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
) -> Page[DunningPolicy]:
    stmt = select(DunningPolicy).where(DunningPolicy.org_id == ctx.org_id)
    return paginate(
        ctx, stmt, DunningPolicy, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def resolve_policy(ctx: Ctx, inv: Invoice) -> dict[str, Any]:
    """The policy that governs ``inv``: the customer's, the plan's, the org default, or the built-in one."""
    policy_id = ctx.session.scalar(
        select(DunningAssignment.policy_id).where(DunningAssignment.customer_id == inv.customer_id)
    )
    if policy_id is None and inv.subscription_id is not None:
        plan_id = ctx.session.scalar(
            select(Subscription.plan_id).where(Subscription.id == inv.subscription_id)
        )
        if plan_id is not None:
            policy_id = ctx.session.scalar(
                select(DunningAssignment.policy_id).where(DunningAssignment.plan_id == plan_id)
            )
    policy = (
        ctx.session.get(DunningPolicy, policy_id)
        if policy_id is not None
        else ctx.session.scalar(
            select(DunningPolicy).where(
                DunningPolicy.org_id == ctx.org_id, DunningPolicy.is_default.is_(True)
            )
        )
    )
    if policy is None:
        return dict(BUILT_IN)
    return {
        "policy_id": policy.id,
        "name": policy.name,
        "retry_days": list(policy.retry_days),
        "max_attempts": policy.max_attempts,
        "final_action": policy.final_action,
        "send_emails": policy.send_emails,
        "templates": dict(policy.templates),
    }


# --- reacting to outcomes ----------------------------------------------------------------------------


def _case(ctx: Ctx, invoice_id: str) -> DunningCase | None:
    return ctx.session.scalar(
        select(DunningCase).where(DunningCase.invoice_id == invoice_id).with_for_update()
    )


def _money(amount: int, currency: str) -> str:
    exp = Currency.of(currency).exponent
    return f"{Decimal(amount).scaleb(-exp):.{exp}f} {currency}"


def _email(ctx: Ctx, case: DunningCase, inv: Invoice, template: str, step: str, **extra: Any) -> None:
    if not case.policy.get("send_emails", True):
        return
    customer = ctx.get(Customer, inv.customer_id, label="customer")
    context = {
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
        "invoice": {"id": inv.id, "number": inv.number, "due_date": str(inv.due_date)},
        "amount": _money(inv.amount_remaining or inv.amount_due, inv.currency),
        "attempt": case.attempts,
        "max_attempts": case.policy.get("max_attempts"),
        "final_action": case.policy.get("final_action"),
        "final_action_text": _FINAL_TEXT.get(str(case.policy.get("final_action")), ""),
        "mode": case.mode,
        **extra,
    }
    emails.queue_email(
        ctx,
        template=template,
        to=customer.email,
        context=context,
        dedupe_key=f"dunning:{inv.id}:{step}",
        overrides=case.policy.get("templates") or {},
        object_type="invoice",
        object_id=inv.id,
    )


def _set_sub_status(
    ctx: Ctx, sub_id: str | None, target: SubscriptionStatus, *, only_from: tuple[str, ...]
) -> None:
    if sub_id is None:
        return
    sub = ctx.session.get(Subscription, sub_id, with_for_update=True)
    if sub is None or sub.status not in only_from:
        return
    ensure_transition(sub.status, target)
    before = sub.status
    sub.status, sub.updated_at = target.value, ctx.now()
    record(
        ctx,
        action=f"subscription.{target.value}",
        object_type="subscription",
        object_id=sub.id,
        changes={"status": {"before": before, "after": target.value}},
        event_type="subscription.updated",
        data={"id": sub.id, "status": sub.status},
    )


def on_failure(ctx: Ctx, inv: Invoice, p: Payment, *, at: datetime) -> DunningCase | None:
    """A charge of ``inv`` failed: open or advance its dunning case (schedule the retry, or take the final
    action) and return the case; None when the invoice no longer needs collecting."""
    if inv.status not in ("open", "uncollectible") or inv.amount_remaining <= 0:
        return None
    case = _case(ctx, inv.id)
    if case is None:
        case = DunningCase(
            id=new_id("dun"),
            org_id=ctx.org_id,
            invoice_id=inv.id,
            customer_id=inv.customer_id,
            subscription_id=inv.subscription_id,
            policy=resolve_policy(ctx, inv),
            status="active",
            attempts=0,
            mode="card",
            started_at=at,
            test_clock_id=inv.test_clock_id or p.test_clock_id,
            updated_at=at,
        )
        case.policy_id = case.policy.get("policy_id")
        ctx.session.add(case)
    elif case.status != "active" or case.mode == SEND_INVOICE:
        return case  # a failed manual charge of an overdue send_invoice invoice keeps its reminders
    case.attempts = max(case.attempts + 1, p.attempt_number or 0)
    case.last_failure_code = p.decline_code or p.failure_code
    case.updated_at = at
    _set_sub_status(ctx, inv.subscription_id, SubscriptionStatus.PAST_DUE, only_from=("active", "trialing"))
    retry_days: list[int] = list(case.policy.get("retry_days") or [])
    failure = p.failure_message or p.failure_code
    if p.hard_decline:
        _final(ctx, case, inv, at=at, why=f"hard decline ({case.last_failure_code})")
    elif p.method == "us_bank_account":
        case.mode = "bank_debit"
        deadline = case.started_at + timedelta(days=retry_days[-1] if retry_days else 0)
        if deadline <= at:
            _final(ctx, case, inv, at=at, why="bank debit returned")
        else:
            case.next_action, case.next_action_at = "final_action", deadline
            _email(
                ctx,
                case,
                inv,
                "ach_failed",
                f"ach_failed:{case.attempts}",
                failure=failure,
                deadline=deadline.date().isoformat(),
            )
    elif case.attempts >= int(case.policy.get("max_attempts") or 1) or not retry_days:
        _final(ctx, case, inv, at=at, why="retries exhausted")
    else:
        day = retry_days[min(case.attempts - 1, len(retry_days) - 1)]
        due = max(case.started_at + timedelta(days=day), at)
        pending = ctx.session.scalar(
            select(Payment).where(Payment.invoice_id == inv.id, Payment.status == "pending").limit(1)
        )
        if pending is None:
            enqueue_charge(
                ctx,
                inv,
                at=due,
                attempt=next_attempt_number(ctx, inv.id),
                reason="dunning_retry",
                test_clock_id=case.test_clock_id,
            )
        case.mode = "card"
        case.next_action, case.next_action_at = "retry", due
        _email(
            ctx,
            case,
            inv,
            "retry",
            f"retry:{case.attempts}",
            failure=failure,
            next_retry=due.date().isoformat(),
        )
    ctx.session.flush()
    record(
        ctx,
        action="dunning.step",
        object_type="invoice",
        object_id=inv.id,
        changes={"attempts": case.attempts, "next_action": case.next_action, "status": case.status},
        event_type="invoice.payment_failed",
        data={
            "invoice_id": inv.id,
            "payment_id": p.id,
            "attempt": case.attempts,
            "dunning_status": case.status,
        },
    )
    return case


def _cancel_pending(ctx: Ctx, invoice_id: str, why: str) -> None:
    for p in ctx.session.scalars(
        select(Payment).where(Payment.invoice_id == invoice_id, Payment.status == "pending")
    ):
        p.status, p.failure_message, p.updated_at = "canceled", why, ctx.now()


def _final(ctx: Ctx, case: DunningCase, inv: Invoice, *, at: datetime, why: str) -> None:
    from revflow.services import invoices, subscriptions

    action = str(case.policy.get("final_action") or "mark_uncollectible")
    _cancel_pending(ctx, inv.id, f"dunning ended: {why}")
    case.status, case.final_action, case.ended_at = "exhausted", action, at
    case.next_action = case.next_action_at = None
    sub = ctx.session.get(Subscription, inv.subscription_id) if inv.subscription_id else None
    if action == "cancel" and sub is not None and sub.status not in ("canceled", "ended"):
        subscriptions.cancel_subscription(ctx, sub.id, at="now")
    elif action == "pause" and sub is not None and sub.status in ("active", "past_due", "trialing"):
        subscriptions.pause_subscription(ctx, sub.id)
    elif (action == "mark_uncollectible" or sub is None) and inv.status == "open":
        invoices.mark_uncollectible(ctx, inv.id)
    log.info("dunning_final_action", invoice=inv.id, action=action, why=why)
    extra = _overdue(case, inv, at) if case.mode == SEND_INVOICE else {}
    _email(ctx, case, inv, "final", "final", why=why, **extra)


def on_success(ctx: Ctx, inv: Invoice, *, at: datetime) -> None:
    """A charge of ``inv`` succeeded: close its case and, once paid, return the subscription to active."""
    case = _case(ctx, inv.id)
    if inv.status == "paid":
        _cancel_pending(ctx, inv.id, "invoice paid")
    if case is not None and case.status == "active" and inv.status == "paid":
        case.status, case.ended_at, case.updated_at = "recovered", at, at
        case.next_action = case.next_action_at = None
        _email(ctx, case, inv, "recovered", "recovered")
    if inv.status == "paid" and inv.subscription_id is not None:
        other = ctx.session.scalar(
            select(DunningCase.id).where(
                DunningCase.subscription_id == inv.subscription_id,
                DunningCase.status == "active",
                DunningCase.invoice_id != inv.id,
            )
        )
        if other is None:
            _set_sub_status(ctx, inv.subscription_id, SubscriptionStatus.ACTIVE, only_from=("past_due",))


def on_payment_method_updated(ctx: Ctx, customer_id: str, *, at: datetime) -> list[str]:
    """Retry at once every active case of the customer (a new default payment method); returns the
    invoices retried."""
    retried: list[str] = []
    for case in ctx.session.scalars(
        select(DunningCase).where(
            DunningCase.customer_id == customer_id,
            DunningCase.status == "active",
            DunningCase.mode != SEND_INVOICE,  # the customer pays those themselves: never charged
        )
    ):
        # Lock order everywhere: the invoice's payment rows, then the invoice (as the worker's claim does).
        pending = ctx.session.scalar(
            select(Payment)
            .where(Payment.invoice_id == case.invoice_id, Payment.status == "pending")
            .with_for_update()
        )
        inv = ctx.get(Invoice, case.invoice_id, for_update=True, label="invoice")
        if inv.status not in ("open", "uncollectible") or inv.amount_remaining <= 0:
            continue
        busy = ctx.session.scalar(
            select(Payment.id).where(
                Payment.invoice_id == inv.id, Payment.status.in_(("sending", "unknown", "processing"))
            )
        )
        if busy is not None:
            continue
        now = _time_of(ctx.session, case.test_clock_id, at)
        if pending is not None:
            pending.scheduled_at, pending.updated_at = now, ctx.now()
        else:
            enqueue_charge(
                ctx,
                inv,
                at=now,
                attempt=next_attempt_number(ctx, inv.id),
                reason="payment_method_updated",
                test_clock_id=case.test_clock_id,
            )
        case.next_action, case.next_action_at, case.updated_at = "retry", now, ctx.now()
        retried.append(inv.id)
    return retried


def _time_of(session: Session, test_clock_id: str | None, now: datetime) -> datetime:
    if test_clock_id is None:
        return now
    frozen = session.scalar(select(TestClock.frozen_time).where(TestClock.id == test_clock_id))
    return frozen if frozen is not None else now


class _At:
    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at


def run_deadlines(sessions: Callable[[], Session], *, now: datetime) -> int:
    """Take the final action of bank-debit cases whose deadline passed, and close cases whose invoice was
    settled another way (paid by hand, voided). Returns how many cases changed."""
    frozen = select(TestClock.frozen_time).where(TestClock.id == DunningCase.test_clock_id).scalar_subquery()
    changed = 0
    with sessions() as session:
        due = list(
            session.scalars(
                select(DunningCase)
                .where(
                    DunningCase.status == "active",
                    or_(
                        and_(
                            DunningCase.next_action.in_(("final_action", "remind")),
                            or_(
                                and_(DunningCase.test_clock_id.is_(None), DunningCase.next_action_at <= now),
                                and_(
                                    DunningCase.test_clock_id.is_not(None),
                                    DunningCase.next_action_at <= frozen,
                                ),
                            ),
                        ),
                        DunningCase.invoice_id.in_(
                            select(Invoice.id).where(Invoice.status.in_(("paid", "void")))
                        ),
                    ),
                )
                .with_for_update(skip_locked=True)
                .limit(200)
            )
        )
        for case in due:
            at = _time_of(session, case.test_clock_id, now)
            ctx = Ctx(session=session, org_id=case.org_id, actor=SYSTEM, clock=_At(at))
            inv = ctx.get(Invoice, case.invoice_id, for_update=True, label="invoice")
            if inv.status == "paid":
                on_success(ctx, inv, at=at)
            elif inv.status == "void":
                case.status, case.ended_at, case.updated_at = "closed", at, at
                case.next_action = case.next_action_at = None
            elif case.next_action == "remind":
                case.attempts += 1
                _email(ctx, case, inv, "overdue", f"overdue:{case.attempts}", **_overdue(case, inv, at))
                _next_reminder(ctx, case, inv, at=at)
            elif case.mode == SEND_INVOICE:
                late = (at.date() - _due(inv)).days
                _final(ctx, case, inv, at=at, why=f"unpaid {late} days after its due date")
            else:
                _final(ctx, case, inv, at=at, why="no new payment method after a returned bank debit")
            changed += 1
        session.commit()
    changed += open_overdue(sessions, now=now)
    return changed


# --- send_invoice invoices past their due date ----------------------------------------------------------


def _due(inv: Invoice) -> date:
    assert inv.due_date is not None
    return inv.due_date


def overdue_at(due: date) -> datetime:
    """When an invoice due on ``due`` becomes overdue: once that day is over (UTC)."""
    return datetime.combine(due + timedelta(days=1), time.min, tzinfo=UTC)


def _overdue(case: DunningCase, inv: Invoice, at: datetime) -> dict[str, Any]:
    return {
        "due_date": _due(inv).isoformat(),
        "days_overdue": (at.date() - _due(inv)).days,
        "next_reminder": case.next_action_at.date().isoformat() if case.next_action_at else None,
    }


def _next_reminder(ctx: Ctx, case: DunningCase, inv: Invoice, *, at: datetime) -> None:
    """Schedule the step after reminder ``case.attempts``: another reminder on the next retry day, or the
    final action on the last one (``max_attempts`` steps in all, the first overdue notice included)."""
    days: list[int] = list(case.policy.get("retry_days") or [])
    steps = min(len(days), int(case.policy.get("max_attempts") or 1) - 1)
    index = case.attempts - 1
    if index >= steps:
        _final(ctx, case, inv, at=at, why="unpaid after its due date")
        return
    case.next_action = "final_action" if index == steps - 1 else "remind"
    case.next_action_at = max(case.started_at + timedelta(days=days[index]), at)
    case.updated_at = at


def open_overdue(sessions: Callable[[], Session], *, now: datetime, limit: int = 200) -> int:
    """Open a ``send_invoice`` case for every open ``send_invoice`` invoice whose due date has passed
    (on its test clock, if any) and that has no case yet: ``overdue`` email, subscription ``past_due``,
    next reminder scheduled. Returns how many were opened. Safe in several workers at once (SKIP LOCKED,
    and one case per invoice)."""
    no_case = ~select(DunningCase.id).where(DunningCase.invoice_id == Invoice.id).exists()
    today = overdue_at(now.date()) - timedelta(days=1)
    stmt = (
        select(Invoice)
        .where(
            Invoice.status == "open",
            Invoice.collection_method == "send_invoice",
            Invoice.amount_remaining > 0,
            Invoice.due_date.is_not(None),
            no_case,
            or_(
                Invoice.due_date < today.date(),
                Invoice.test_clock_id.is_not(None),
                Invoice.customer_id.in_(select(Customer.id).where(Customer.test_clock_id.is_not(None))),
            ),
        )
        .order_by(Invoice.due_date, Invoice.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    opened = 0
    with sessions() as session:
        for inv in session.scalars(stmt):
            clock_id = inv.test_clock_id or session.scalar(
                select(Customer.test_clock_id).where(Customer.id == inv.customer_id)
            )
            at = _time_of(session, clock_id, now)
            start = overdue_at(_due(inv))
            if at < start:
                continue
            ctx = Ctx(session=session, org_id=inv.org_id, actor=SYSTEM, clock=_At(at))
            case = DunningCase(
                id=new_id("dun"),
                org_id=inv.org_id,
                invoice_id=inv.id,
                customer_id=inv.customer_id,
                subscription_id=inv.subscription_id,
                policy=resolve_policy(ctx, inv),
                status="active",
                attempts=1,
                mode=SEND_INVOICE,
                started_at=start,
                test_clock_id=clock_id,
                updated_at=at,
            )
            case.policy_id = case.policy.get("policy_id")
            session.add(case)
            _set_sub_status(
                ctx, inv.subscription_id, SubscriptionStatus.PAST_DUE, only_from=("active", "trialing")
            )
            _next_reminder(ctx, case, inv, at=at)
            if case.status == "active":
                _email(ctx, case, inv, "overdue", "overdue:1", **_overdue(case, inv, at))
            session.flush()
            record(
                ctx,
                action="dunning.overdue",
                object_type="invoice",
                object_id=inv.id,
                changes={"attempts": case.attempts, "next_action": case.next_action, "status": case.status},
                event_type="invoice.overdue",
                data={"invoice_id": inv.id, "due_date": _due(inv).isoformat(), "dunning_status": case.status},
            )
            opened += 1
        session.commit()
    return opened


def collection_of(ctx: Ctx, invoice_id: str) -> DunningView:
    """The collection view of an invoice: its case, every attempt (payment) and the retries still planned."""
    inv = ctx.get(Invoice, invoice_id, label="invoice")
    case = ctx.session.scalar(select(DunningCase).where(DunningCase.invoice_id == inv.id))
    rows = sorted(
        ctx.session.scalars(select(Payment).where(Payment.invoice_id == inv.id)),
        key=lambda p: (p.attempt_number is None, p.attempt_number or 0, p.created_at),
    )
    schedule: list[datetime] = []
    if case is not None and case.status == "active" and case.mode in ("card", SEND_INVOICE):
        days = list(case.policy.get("retry_days") or [])
        last = int(case.policy.get("max_attempts") or 1) - 1
        schedule = [case.started_at + timedelta(days=d) for d in days[case.attempts - 1 : last]]
    return DunningView(
        invoice_id=inv.id,
        invoice_status=inv.status,
        collection_method=inv.collection_method,
        amount_remaining=inv.amount_remaining,
        status=case.status if case is not None else "none",
        policy=case.policy if case is not None else None,
        attempts=case.attempts if case is not None else len([p for p in rows if p.attempt_number]),
        mode=case.mode if case is not None else None,
        next_action=case.next_action if case is not None else None,
        next_action_at=case.next_action_at if case is not None else None,
        final_action=case.final_action if case is not None else None,
        started_at=case.started_at if case is not None else None,
        ended_at=case.ended_at if case is not None else None,
        schedule=schedule,
        payments=[PaymentView.of(p) for p in rows],
        disputed=any(p.disputed for p in rows),
    )

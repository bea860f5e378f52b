"""Refunds of gateway payments, each documented by a credit note; disputes recorded against the invoice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from revflow.domain.errors import Conflict, InvalidInput
from revflow.domain.ids import new_id
from revflow.services.alerts import raise_alert
from revflow.services.context import Ctx
from revflow.services.credit_notes import create_credit_note
from revflow.services.invoices import add_balance_transaction
from revflow.services.payment_methods import gateway_errors
from revflow.services.ports import PaymentGateway, RefundResult
from revflow.services.recorder import record
from revflow.storage.models import Alert, Invoice, Payment
from revflow.storage.payment_models import Dispute, Refund

__all__ = [
    "DISPUTE_CLOSED",
    "REFUND_REASONS",
    "RefundTooLarge",
    "record_dispute",
    "record_refund",
    "refund_payment",
    "update_dispute",
    "update_refund",
]

#: Final dispute statuses: a later event about the dispute changes nothing (ADR 0035).
DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed"})

REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


class RefundTooLarge(InvalidInput):
    code = "refund_amount_too_large"


def refund_key(org_id: str, payment_id: str, refunded_before: int, amount: int) -> str:
    """The gateway idempotency key of a refund: a retried request (even after a lost commit) refunds once."""
    return f"revflow:{org_id}:refund:{payment_id}:{refunded_before}:{amount}"


def refund_payment(
    ctx: Ctx,
    payment_id: str,
    gateway: PaymentGateway,
    *,
    amount: int | None = None,
    reason: str | None = None,
) -> Refund:
    """Refund ``amount`` (default: what is left) of a succeeded payment at the gateway and issue a credit
    note for it. Returns the refund. Raises Conflict ``invalid_state`` (not succeeded), RefundTooLarge
    (more than was paid and not yet refunded), InvalidInput."""
    p = ctx.get(Payment, payment_id, for_update=True, label="payment")
    if p.status != "succeeded":
        raise Conflict(
            f"payment {p.id} is {p.status}; only succeeded payments can be refunded", code="invalid_state"
        )
    if reason is not None and reason not in REFUND_REASONS:
        raise InvalidInput(
            f"reason must be one of {sorted(REFUND_REASONS)}",
            code="invalid_reason",
            details=[{"field": "reason", "code": "invalid_reason"}],
        )
    left = p.amount - p.amount_refunded
    value = left if amount is None else amount
    if value <= 0 or value > left:
        raise RefundTooLarge(
            f"payment {p.id} can be refunded by at most {left}, asked {value}",
            details=[{"field": "amount", "code": "refund_amount_too_large"}],
        )
    result: RefundResult | None = None
    if p.gateway is not None and p.gateway_ref is not None:
        if p.gateway != gateway.name:
            raise Conflict(f"payment {p.id} was made through {p.gateway}", code="gateway_mismatch")
        with gateway_errors():
            result = gateway.refund(
                gateway_ref=p.gateway_ref,
                amount=value,
                idempotency_key=refund_key(ctx.org_id, p.id, p.amount_refunded, value),
                reason=reason,
            )
    return record_refund(
        ctx,
        p,
        amount=value,
        reason=reason,
        gateway_ref=result.gateway_ref if result else None,
        status=result.status if result else "succeeded",
    )


def record_refund(
    ctx: Ctx, p: Payment, *, amount: int, reason: str | None, gateway_ref: str | None, status: str
) -> Refund:
    """Book a refund of ``p`` (made by Revflow or reported by the gateway) with its credit note."""
    inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
    now = ctx.now()
    refund = Refund(
        id=new_id("re"),
        org_id=ctx.org_id,
        payment_id=p.id,
        invoice_id=inv.id,
        amount=amount,
        currency=p.currency,
        status=status,
        gateway_ref=gateway_ref,
        reason=reason,
        created_at=now,
    )
    ctx.session.add(refund)
    p.amount_refunded += amount
    p.updated_at = now
    if inv.status == "paid":
        note = create_credit_note(
            ctx,
            invoice_id=inv.id,
            amount=amount,
            reason=reason if reason in ("duplicate", "fraudulent") else None,
            memo=f"Refund of payment {p.id}",
            metadata={"refund_id": refund.id, "payment_id": p.id},
        )
        refund.credit_note_id = note.id
        # The credit note's credit was paid out as money: it does not stay on the customer's balance.
        add_balance_transaction(
            ctx,
            inv,
            type="refund",
            amount=-amount,
            description=f"Refunded to the customer ({refund.id})",
            at=now,
            credit_note_id=note.id,
        )
    else:  # a partly paid invoice: the refunded part is owed again
        inv.amount_paid -= amount
        inv.amount_remaining += amount
        inv.updated_at = now
    ctx.session.flush()
    record(
        ctx,
        action="refund.create",
        object_type="refund",
        object_id=refund.id,
        changes={"amount": amount, "payment_id": p.id, "credit_note_id": refund.credit_note_id},
        event_type="refund.created",
        data={"id": refund.id, "payment_id": p.id, "amount": amount, "credit_note_id": refund.credit_note_id},
    )
    return refund


def record_dispute(
    ctx: Ctx, p: Payment, *, gateway_ref: str, amount: int | None, reason: str | None, at: datetime
) -> Dispute:
    """Record a dispute (chargeback) of ``p`` once, flag the payment and raise an alert on its invoice."""
    existing = ctx.session.scalar(
        select(Dispute).where(Dispute.org_id == ctx.org_id, Dispute.gateway_ref == gateway_ref)
    )
    if existing is not None:
        return existing
    dispute = Dispute(
        id=new_id("dp"),
        org_id=ctx.org_id,
        payment_id=p.id,
        invoice_id=p.invoice_id,
        gateway_ref=gateway_ref,
        amount=amount if amount is not None else p.amount,
        currency=p.currency,
        reason=reason,
        status="needs_response",
        created_at=at,
    )
    ctx.session.add(dispute)
    p.disputed, p.updated_at = True, at
    inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
    inv.dispute_status, inv.updated_at = dispute.status, at
    ctx.session.flush()
    raise_alert(
        ctx.session,
        org_id=ctx.org_id,
        type="payment_disputed",
        message=f"Payment {p.id} of invoice {p.invoice_id} is disputed ({reason or 'no reason given'})",
        dedupe_key=f"dispute:{gateway_ref}",
        now=at,
        object_type="invoice",
        object_id=p.invoice_id,
        details={"payment_id": p.id, "dispute_id": dispute.id, "amount": dispute.amount, "reason": reason},
        severity="critical",
    )
    record(
        ctx,
        action="dispute.create",
        object_type="dispute",
        object_id=dispute.id,
        changes={"payment_id": p.id, "amount": dispute.amount, "reason": reason},
        event_type="charge.dispute.created",
        data={"id": dispute.id, "payment_id": p.id, "invoice_id": p.invoice_id, "amount": dispute.amount},
    )
    return dispute


def update_dispute(
    ctx: Ctx,
    p: Payment,
    *,
    gateway_ref: str,
    status: str,
    amount: int | None,
    reason: str | None,
    at: datetime,
) -> bool:
    """Apply the gateway's new ``status`` of a dispute of ``p`` (recording the dispute first when its
    ``created`` event has not arrived yet). A closed dispute stays closed. ``won`` clears the invoice's
    flag; ``lost`` takes the disputed amount off what the invoice has been paid: the invoice is open again
    for that amount (the customer still owes it) and a critical alert is raised. Returns True when
    something changed."""
    dispute = record_dispute(ctx, p, gateway_ref=gateway_ref, amount=amount, reason=reason, at=at)
    if dispute.status in DISPUTE_CLOSED or dispute.status == status:
        return False
    before = dispute.status
    dispute.status = status
    inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
    inv.dispute_status, inv.updated_at = status, at
    reopened = 0
    if status == "lost":
        reopened = min(dispute.amount, inv.amount_paid)
        inv.amount_paid -= reopened
        inv.amount_remaining += reopened
        if inv.status == "paid" and inv.amount_remaining > 0:
            inv.status, inv.paid_at = "open", None
        raise_alert(
            ctx.session,
            org_id=ctx.org_id,
            type="payment_dispute_lost",
            message=(
                f"Dispute {dispute.id} of payment {p.id} was lost: {reopened} {inv.currency} of invoice "
                f"{inv.id} is owed again"
            ),
            dedupe_key=f"dispute_lost:{gateway_ref}",
            now=at,
            object_type="invoice",
            object_id=inv.id,
            details={"payment_id": p.id, "dispute_id": dispute.id, "amount": reopened},
            severity="critical",
        )
    if status in DISPUTE_CLOSED:
        opened = ctx.session.scalar(
            select(Alert).where(Alert.org_id == ctx.org_id, Alert.dedupe_key == f"dispute:{gateway_ref}")
        )
        if opened is not None and opened.status != "resolved":
            opened.status, opened.resolved_at = "resolved", at
    ctx.session.flush()
    closed = status in DISPUTE_CLOSED
    record(
        ctx,
        action="dispute.close" if closed else "dispute.update",
        object_type="dispute",
        object_id=dispute.id,
        changes={"status": [before, status], "invoice_amount_reopened": reopened},
        event_type="charge.dispute.closed" if closed else "charge.dispute.updated",
        data={
            "id": dispute.id,
            "payment_id": p.id,
            "invoice_id": inv.id,
            "status": status,
            "amount_reopened": reopened,
        },
    )
    return True


def update_refund(ctx: Ctx, p: Payment, result: RefundResult, *, at: datetime) -> bool:
    """Apply the gateway's later status of a refund of ``p`` (a bank refund is ``pending`` for days).
    ``succeeded`` just records it. ``failed`` means the money never reached the customer: the refund no
    longer counts against the payment; its credit note stays (the invoice was credited) and its amount goes
    back to the customer's credit balance, or, for a refund of a partly paid invoice, the payment covers the
    invoice again; a critical alert asks a person to pay the customer another way. A failed refund stays
    failed. Unknown refunds are left to ``charge.refunded``. Returns True when something changed."""
    refund = ctx.session.scalar(
        select(Refund).where(Refund.org_id == ctx.org_id, Refund.gateway_ref == result.gateway_ref)
    )
    if refund is None or refund.status in ("failed", result.status) or result.status == "pending":
        return False
    before, refund.status = refund.status, result.status
    if result.status == "failed":
        p.amount_refunded -= refund.amount
        p.updated_at = at
        inv = ctx.get(Invoice, p.invoice_id, for_update=True, label="invoice")
        if refund.credit_note_id is not None:
            add_balance_transaction(
                ctx,
                inv,
                type="refund_failed",
                amount=refund.amount,
                description=f"Refund {refund.id} failed: the credit stays with the customer",
                at=at,
                credit_note_id=refund.credit_note_id,
            )
        else:
            back = min(refund.amount, inv.amount_remaining)
            inv.amount_paid += back
            inv.amount_remaining -= back
            inv.updated_at = at
        raise_alert(
            ctx.session,
            org_id=ctx.org_id,
            type="refund_failed",
            message=(
                f"Refund {refund.id} of {refund.amount} {refund.currency} (payment {p.id}) failed at the "
                "gateway: pay the customer another way or keep it as credit"
            ),
            dedupe_key=f"refund_failed:{result.gateway_ref}",
            now=at,
            object_type="refund",
            object_id=refund.id,
            details={"payment_id": p.id, "amount": refund.amount, "credit_note_id": refund.credit_note_id},
            severity="critical",
        )
    ctx.session.flush()
    record(
        ctx,
        action="refund.update",
        object_type="refund",
        object_id=refund.id,
        changes={"status": [before, refund.status]},
        event_type=f"refund.{refund.status}",
        data={"id": refund.id, "payment_id": p.id, "status": refund.status, "amount": refund.amount},
    )
    return True

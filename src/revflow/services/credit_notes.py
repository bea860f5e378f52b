"""Credit notes: corrections of finalized invoices, with their own gapless numbering (per test clock for
customers on one)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.invoices import CreditNoteTooLarge, InvoiceStatus, credit_note_kind, max_creditable
from revflow.services.context import Ctx
from revflow.services.invoices import add_balance_transaction, mark_paid
from revflow.services.numbering import next_number
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.recorder import diff, record
from revflow.services.views import CreditNoteView, InvoiceView
from revflow.storage.models import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    Organization,
)

__all__ = ["REASONS", "create_credit_note", "list_credit_notes"]

REASONS = frozenset({"duplicate", "fraudulent", "order_change", "product_unsatisfactory"})


def _credited_per_line(ctx: Ctx, invoice_id: str) -> dict[str, int]:
    rows = ctx.session.execute(
        select(CreditNoteLine.invoice_line_id, func.sum(CreditNoteLine.amount))
        .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
        .where(
            CreditNote.org_id == ctx.org_id,
            CreditNote.invoice_id == invoice_id,
            CreditNote.status == "issued",
        )
        .group_by(CreditNoteLine.invoice_line_id)
    )
    return {line_id: int(total) for line_id, total in rows if line_id is not None}


def create_credit_note(
    ctx: Ctx,
    *,
    invoice_id: str,
    amount: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    reason: str | None = None,
    memo: str | None = None,
    metadata: dict[str, str] | None = None,
) -> CreditNote:
    """Credit an open or paid invoice, whole (no amount and no lines), by ``amount``, or per line.

    On an open invoice the credit lowers what remains to pay (and pays the invoice when nothing remains);
    on a paid invoice it becomes customer credit, which the next invoice applies. Returns the credit note.
    Raises Conflict ``invalid_state`` (draft, void, uncollectible), CreditNoteTooLarge, InvalidInput.
    """
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    kind = credit_note_kind(inv.status)
    if reason is not None and reason not in REASONS:
        raise InvalidInput(
            f"reason must be one of {sorted(REASONS)}",
            code="invalid_reason",
            details=[{"field": "reason", "code": "invalid_reason"}],
        )
    credited = inv.pre_payment_credit_notes_amount + inv.post_payment_credit_notes_amount
    limit = max_creditable(
        status=inv.status, total=inv.total, credited=credited, amount_remaining=inv.amount_remaining
    )
    cn_id = new_id("cn")
    note_lines: list[CreditNoteLine] = []
    if lines:
        if amount is not None:
            raise InvalidInput("give either amount or lines, not both", code="parameter_conflict")
        by_id = {li.id: li for li in inv.lines}
        already = _credited_per_line(ctx, inv.id)
        for i, spec in enumerate(lines):
            line = by_id.get(spec["invoice_line_id"])
            if line is None:
                raise InvalidInput(
                    f"line {spec['invoice_line_id']} is not on invoice {inv.id}",
                    code="invalid_invoice_line",
                    details=[{"field": f"lines[{i}].invoice_line_id", "code": "invalid_invoice_line"}],
                )
            value = spec.get("amount")
            left = line.amount - already.get(line.id, 0)
            value = left if value is None else value
            if value <= 0 or value > left:
                raise CreditNoteTooLarge(
                    f"line {line.id} can be credited by at most {left}, asked {value}",
                    details=[{"field": f"lines[{i}].amount", "code": "credit_note_amount_too_large"}],
                )
            already[line.id] = already.get(line.id, 0) + value
            note_lines.append(
                CreditNoteLine(
                    id=new_id("cnli"),
                    org_id=ctx.org_id,
                    credit_note_id=cn_id,
                    invoice_line_id=line.id,
                    description=line.description,
                    amount=value,
                )
            )
        total = sum(li.amount for li in note_lines)
    else:
        total = limit if amount is None else amount
        if total <= 0:
            raise InvalidInput(
                "nothing to credit",
                code="invalid_amount",
                details=[{"field": "amount", "code": "invalid_amount"}],
            )
        note_lines.append(
            CreditNoteLine(
                id=new_id("cnli"),
                org_id=ctx.org_id,
                credit_note_id=cn_id,
                invoice_line_id=None,
                description=memo or f"Credit for invoice {inv.number}",
                amount=total,
            )
        )
    if total > limit:
        raise CreditNoteTooLarge(
            f"invoice {inv.number} can be credited by at most {limit}, asked {total}",
            details=[{"field": "amount", "code": "credit_note_amount_too_large"}],
        )
    org = ctx.get(Organization, ctx.org_id, label="organization")
    customer = ctx.get(Customer, inv.customer_id, label="customer")
    now = ctx.now()
    note = CreditNote(
        id=cn_id,
        org_id=ctx.org_id,
        invoice_id=inv.id,
        customer_id=inv.customer_id,
        number=next_number(
            ctx, kind="credit_note", prefix=org.credit_note_prefix, test_clock_id=customer.test_clock_id
        ),
        status="issued",
        type=kind,
        amount=total,
        currency=inv.currency,
        reason=reason,
        memo=memo,
        metadata_=metadata or {},
        created_at=now,
    )
    note.lines = note_lines
    ctx.session.add(note)
    inv_before = {
        "amount_remaining": inv.amount_remaining,
        "pre_payment_credit_notes_amount": inv.pre_payment_credit_notes_amount,
        "post_payment_credit_notes_amount": inv.post_payment_credit_notes_amount,
    }
    if kind == "pre_payment":
        inv.pre_payment_credit_notes_amount += total
        inv.amount_remaining -= total
    else:
        inv.post_payment_credit_notes_amount += total
        add_balance_transaction(
            ctx,
            inv,
            type="credit_note",
            amount=total,
            description=f"Credit note {note.number}",
            at=now,
            credit_note_id=cn_id,
        )
    inv.updated_at = now
    ctx.session.flush()
    record(
        ctx,
        action="credit_note.create",
        object_type="credit_note",
        object_id=note.id,
        changes=diff({}, {"amount": total, "type": kind, "invoice_id": inv.id, "number": note.number}),
        event_type="credit_note.created",
        data=CreditNoteView.of(note).payload(),
    )
    record(
        ctx,
        action="invoice.credit",
        object_type="invoice",
        object_id=inv.id,
        changes=diff(
            inv_before,
            {
                "amount_remaining": inv.amount_remaining,
                "pre_payment_credit_notes_amount": inv.pre_payment_credit_notes_amount,
                "post_payment_credit_notes_amount": inv.post_payment_credit_notes_amount,
            },
        ),
        event_type="invoice.updated",
        data=InvoiceView.of(inv).payload(),
    )
    if inv.status == InvoiceStatus.OPEN and inv.amount_remaining == 0:
        mark_paid(ctx, inv, now)
    return note


def list_credit_notes(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    invoice_id: str | None = None,
    customer_id: str | None = None,
) -> Page[CreditNote]:
    """One page of credit notes, newest first."""
    stmt = filtered(
        select(CreditNote).where(CreditNote.org_id == ctx.org_id),
        (CreditNote.invoice_id, invoice_id),
        (CreditNote.customer_id, customer_id),
    )
    return paginate(
        ctx, stmt, CreditNote, limit=limit, starting_after=starting_after, ending_before=ending_before
    )

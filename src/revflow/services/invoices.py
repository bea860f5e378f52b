"""One-off invoices: drafts, lines, finalization with gapless numbers, void, uncollectible, payments."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from revflow.domain.errors import Conflict, InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.invoices import InvoiceStatus, compute_totals, ensure_transition, line_amount
from revflow.domain.metadata import merge_metadata
from revflow.domain.money import Currency, CurrencyMismatch
from revflow.services.collection_queue import clock_now, enqueue_charge, wants_charge
from revflow.services.context import Ctx
from revflow.services.customers import balance_of
from revflow.services.numbering import next_number
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.recorder import diff, record
from revflow.services.views import InvoiceLineView, InvoiceView, PaymentView
from revflow.storage.models import (
    Customer,
    CustomerBalanceTransaction,
    Invoice,
    InvoiceLineItem,
    Organization,
    Payment,
)

__all__ = [
    "LineInput",
    "add_balance_transaction",
    "add_lines",
    "apply_finalization",
    "apply_payment",
    "check_finalizable",
    "create_invoice",
    "delete_draft",
    "delete_line",
    "finalize_invoice",
    "list_invoices",
    "local_date",
    "mark_paid",
    "mark_uncollectible",
    "pay_out_of_band",
    "recompute",
    "update_invoice",
    "void_invoice",
]

LineInput = dict[str, Any]
PAYMENT_METHODS = frozenset({"bank_transfer", "check", "cash", "other"})


class CustomerArchived(Conflict):
    code = "customer_archived"


def _check_line_currency(currency: str, line: LineInput, index: int) -> None:
    item_currency = line.get("currency")
    if item_currency is not None and Currency.of(item_currency).code != currency:
        raise CurrencyMismatch(
            f"item {index} is in {item_currency.upper()} but the invoice is in {currency}",
            details=[{"field": f"items[{index}].currency", "code": "currency_mismatch"}],
        )


def _new_line(ctx: Ctx, inv: Invoice, line: LineInput, position: int) -> InvoiceLineItem:
    """A line is either a fixed ``amount`` (quantity 1) or ``quantity × unit_amount[_decimal]``."""
    currency = Currency.of(inv.currency)
    if line.get("amount") is not None:
        quantity, unit = Decimal(1), Decimal(line["amount"])
    else:
        quantity = Decimal(line.get("quantity") or 1)
        raw = line.get("unit_amount_decimal")
        unit = Decimal(raw) if raw is not None else Decimal(line["unit_amount"])
    return InvoiceLineItem(
        id=new_id("il"),
        org_id=ctx.org_id,
        invoice_id=inv.id,
        position=position,
        description=line["description"],
        quantity=quantity,
        unit_amount_decimal=unit,
        amount=line_amount(quantity=quantity, unit_amount_decimal=unit, currency=currency),
        currency=inv.currency,
        period_start=line.get("period_start"),
        period_end=line.get("period_end"),
        metadata_=line.get("metadata") or {},
        kind="one_off",
        discount_amount=0,
        discounts=[],
    )


def recompute(inv: Invoice) -> None:
    """Refresh a draft's totals from its lines (customer credit is applied only at finalization)."""
    inv.discount = sum(li.discount_amount for li in inv.lines)
    totals = compute_totals(line_amounts=[li.amount for li in inv.lines], discount=inv.discount, tax=inv.tax)
    inv.subtotal, inv.total = totals.subtotal, totals.total
    inv.applied_balance = 0
    inv.amount_due = inv.amount_remaining = totals.total
    inv.amount_paid = 0


def _snapshot(inv: Invoice) -> dict[str, Any]:
    return {
        "status": inv.status,
        "number": inv.number,
        "due_date": inv.due_date.isoformat() if inv.due_date else None,
        "description": inv.description,
        "footer": inv.footer,
        "total": inv.total,
        "amount_paid": inv.amount_paid,
        "amount_remaining": inv.amount_remaining,
        "lines": [li.id for li in inv.lines],
        "metadata": dict(inv.metadata_),
    }


def _record(
    ctx: Ctx,
    inv: Invoice,
    action: str,
    before: dict[str, Any],
    event: str | None,
    *,
    flush: bool = True,
    lines: list[InvoiceLineView] | None = None,
) -> None:
    if flush:
        ctx.session.flush()
    record(
        ctx,
        action=action,
        object_type="invoice",
        object_id=inv.id,
        changes=diff(before, _snapshot(inv)),
        event_type=event,
        data=InvoiceView.of(inv, lines=lines).payload(),
    )


def create_invoice(
    ctx: Ctx,
    *,
    customer_id: str,
    items: list[LineInput],
    currency: str | None = None,
    due_date: date | None = None,
    description: str | None = None,
    footer: str | None = None,
    collection_method: str = "send_invoice",
    metadata: dict[str, str] | None = None,
) -> Invoice:
    """Create a draft invoice with ``items`` and return it.

    The currency is ``currency``, else the first item's, else the customer's; every item and the customer
    must agree (CurrencyMismatch). Raises NotFound (customer), CustomerArchived, InvalidInput.
    """
    customer = ctx.get(Customer, customer_id, for_update=True, label="customer")
    if customer.archived_at is not None:
        raise CustomerArchived(f"customer {customer.id} is archived")
    chosen = currency or next((i["currency"] for i in items if i.get("currency")), None) or customer.currency
    if chosen is None:
        raise InvalidInput(
            "currency is required: give it on the invoice, its items or the customer",
            code="currency_required",
            details=[{"field": "currency", "code": "required"}],
        )
    code = Currency.of(chosen).code
    for i, line in enumerate(items):
        _check_line_currency(code, line, i)
    if customer.currency is not None and customer.currency != code:
        raise CurrencyMismatch(
            f"the invoice is in {code} but customer {customer.id} is billed in {customer.currency}",
            details=[{"field": "currency", "code": "currency_mismatch"}],
        )
    now = ctx.now()
    inv = Invoice(
        id=new_id("inv"),
        org_id=ctx.org_id,
        customer_id=customer.id,
        status=InvoiceStatus.DRAFT.value,
        currency=code,
        collection_method=collection_method,
        description=description,
        footer=footer,
        due_date=due_date,
        metadata_=metadata or {},
        created_at=now,
        updated_at=now,
        discount=0,
        tax=0,
        pre_payment_credit_notes_amount=0,
        post_payment_credit_notes_amount=0,
    )
    inv.lines = [_new_line(ctx, inv, line, pos) for pos, line in enumerate(items)]
    recompute(inv)
    if customer.currency is None:
        customer.currency = code
    ctx.session.add(inv)
    _record(ctx, inv, "invoice.create", {}, "invoice.created")
    return inv


def _draft(ctx: Ctx, invoice_id: str) -> Invoice:
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    if inv.status != InvoiceStatus.DRAFT:
        raise Conflict(f"invoice {inv.id} is {inv.status}; only drafts can be edited", code="invalid_state")
    return inv


def update_invoice(ctx: Ctx, invoice_id: str, *, changes: dict[str, Any]) -> Invoice:
    """Edit a draft's header fields; raises Conflict ``invalid_state`` once finalized."""
    inv = _draft(ctx, invoice_id)
    before = _snapshot(inv)
    for key in ("due_date", "description", "footer", "collection_method"):
        if key in changes:
            setattr(inv, key, changes[key])
    if "metadata" in changes:
        inv.metadata_ = merge_metadata(inv.metadata_, changes["metadata"])
    inv.updated_at = ctx.now()
    _record(ctx, inv, "invoice.update", before, "invoice.updated")
    return inv


def add_lines(ctx: Ctx, invoice_id: str, *, items: list[LineInput]) -> Invoice:
    """Append lines to a draft and return it; raises Conflict ``invalid_state``, CurrencyMismatch."""
    inv = _draft(ctx, invoice_id)
    before = _snapshot(inv)
    for i, line in enumerate(items):
        _check_line_currency(inv.currency, line, i)
    start = len(inv.lines)
    inv.lines.extend(_new_line(ctx, inv, line, start + pos) for pos, line in enumerate(items))
    recompute(inv)
    inv.updated_at = ctx.now()
    _record(ctx, inv, "invoice.add_lines", before, "invoice.updated")
    return inv


def delete_line(ctx: Ctx, invoice_id: str, line_id: str) -> Invoice:
    """Remove one line from a draft; raises NotFound, Conflict ``invalid_state``."""
    inv = _draft(ctx, invoice_id)
    before = _snapshot(inv)
    line = next((li for li in inv.lines if li.id == line_id), None)
    if line is None:
        ctx.get(InvoiceLineItem, line_id, label="line item")  # raises NotFound
        raise Conflict("the line belongs to another invoice", code="invalid_state")
    inv.lines.remove(line)
    recompute(inv)
    inv.updated_at = ctx.now()
    _record(ctx, inv, "invoice.delete_line", before, "invoice.updated")
    return inv


def delete_draft(ctx: Ctx, invoice_id: str) -> Invoice:
    """Delete a draft invoice (finalized invoices are never deleted: void them)."""
    inv = _draft(ctx, invoice_id)
    before = _snapshot(inv)
    data = InvoiceView.of(inv).payload()
    ctx.session.delete(inv)
    ctx.session.flush()
    record(
        ctx,
        action="invoice.delete",
        object_type="invoice",
        object_id=inv.id,
        changes=diff(before, {}),
        event_type="invoice.deleted",
        data=data,
    )
    return inv


def local_date(at: datetime, timezone: str) -> date:
    """The calendar date of instant ``at`` in ``timezone`` (a customer's): due dates count from it."""
    return at.astimezone(ZoneInfo(timezone)).date()


def add_balance_transaction(
    ctx: Ctx,
    inv: Invoice,
    *,
    type: str,
    amount: int,
    description: str,
    at: datetime,
    credit_note_id: str | None = None,
) -> CustomerBalanceTransaction:
    """Book ``amount`` (positive: credit for the customer, negative: credit used) on the credit balance of
    ``inv``'s customer, in ``inv``'s currency. The one place balance transactions are written; returns it."""
    txn = CustomerBalanceTransaction(
        id=new_id("cbtxn"),
        org_id=ctx.org_id,
        customer_id=inv.customer_id,
        type=type,
        amount=amount,
        currency=inv.currency,
        invoice_id=inv.id,
        credit_note_id=credit_note_id,
        description=description,
        created_at=at,
    )
    ctx.session.add(txn)
    return txn


def apply_payment(ctx: Ctx, inv: Invoice, *, amount: int, at: datetime, description: str) -> int:
    """Apply a payment of ``amount`` to ``inv``: what remains of an open or uncollectible invoice is paid,
    the excess (overpaid, or paid after the invoice was settled another way) becomes customer credit,
    booked with ``description``. Returns the amount applied; marking the invoice paid is the caller's."""
    open_ = inv.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    applied = min(amount, inv.amount_remaining) if open_ else 0
    if applied:
        inv.amount_paid += applied
        inv.amount_remaining -= applied
        inv.updated_at = at
    if amount > applied:
        add_balance_transaction(
            ctx, inv, type="overpayment", amount=amount - applied, description=description, at=at
        )
    return applied


def _customer_snapshot(c: Customer) -> dict[str, Any]:
    return {
        "name": c.name,
        "email": c.email,
        "address": dict(c.address),
        "tax_ids": list(c.tax_ids),
        "locale": c.locale,
        "timezone": c.timezone,
    }


def finalize_invoice(ctx: Ctx, invoice_id: str) -> Invoice:
    """Finalize a draft: assign the next gapless number, freeze the buyer, apply customer credit.

    Returns the invoice, now ``open`` (or ``paid`` when credit covered it). A subscription invoice with a
    negative total (a proration credit) is paid at once and its surplus becomes customer credit. Raises
    Conflict ``invalid_state`` when it is not a draft and InvalidInput ``invalid_total`` for a negative
    one-off invoice.
    """
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    check_finalizable(inv)
    customer = ctx.get(Customer, inv.customer_id, for_update=True, label="customer")
    org = ctx.get(Organization, ctx.org_id, label="organization")
    number = next_number(ctx, kind="invoice", prefix=org.invoice_prefix, test_clock_id=customer.test_clock_id)
    apply_finalization(
        ctx, inv, customer=customer, org=org, number=number, credit=balance_of(ctx, customer.id)
    )
    return inv


def check_finalizable(inv: Invoice) -> None:
    """Raise unless ``inv`` may be finalized (a draft; one-off invoices not negative)."""
    ensure_transition(inv.status, InvoiceStatus.OPEN)
    if inv.total < 0 and inv.billing_reason == "manual":
        raise InvalidInput(
            "an invoice total cannot be negative; issue a credit note instead", code="invalid_total"
        )


def apply_finalization(
    ctx: Ctx,
    inv: Invoice,
    *,
    customer: Customer,
    org: Organization,
    number: str,
    credit: int,
    flush: bool = True,
    lines: list[InvoiceLineView] | None = None,
) -> int:
    """Finalize ``inv`` with ``number``, using up to ``credit`` of the customer's balance.

    The one place finalization happens (single invoices and billing runs alike). Returns the change of
    the customer's credit balance it caused (negative when credit was used, positive for a negative
    invoice's surplus). The caller has locked the invoice and the customer and reserved ``number``.
    ``lines`` are the views of the invoice's lines if the caller has them (billing runs built them for
    the ``invoice.created`` event), reused in the events' payloads.
    """
    before = _snapshot(inv)
    now = ctx.now()
    totals = compute_totals(
        line_amounts=[li.amount for li in inv.lines],
        discount=inv.discount,
        tax=inv.tax,
        credit_balance_available=credit,
    )
    inv.number = number
    inv.status = InvoiceStatus.OPEN.value
    inv.finalized_at = inv.updated_at = now
    if inv.due_date is None:
        inv.due_date = local_date(now, customer.timezone) + timedelta(days=org.default_net_days)
    inv.customer_snapshot = _customer_snapshot(customer)
    inv.applied_balance = totals.applied_balance
    inv.amount_due = totals.amount_due
    inv.amount_remaining = totals.amount_due
    change = 0
    if inv.total < 0:  # a billing correction that owes the customer: the surplus becomes credit
        inv.amount_due = inv.amount_remaining = 0
        change += -inv.total
        add_balance_transaction(
            ctx,
            inv,
            type="invoice_credit",
            amount=-inv.total,
            description=f"Credit from invoice {inv.number}",
            at=now,
        )
    if totals.applied_balance:
        change -= totals.applied_balance
        add_balance_transaction(
            ctx,
            inv,
            type="applied_to_invoice",
            amount=-totals.applied_balance,
            description=f"Applied to invoice {inv.number}",
            at=now,
        )
    _record(ctx, inv, "invoice.finalize", before, "invoice.finalized", flush=flush, lines=lines)
    if inv.amount_remaining == 0:
        mark_paid(ctx, inv, now, flush=flush, lines=lines)
    elif wants_charge(inv):  # charged by the worker, after this transaction commits
        clock_id = None if inv.test_clock_id else customer.test_clock_id  # API invoices: the customer's clock
        at = clock_now(ctx, clock_id, now)
        enqueue_charge(ctx, inv, at=at, attempt=1, test_clock_id=clock_id)
    return change


def mark_paid(
    ctx: Ctx, inv: Invoice, at: datetime, *, flush: bool = True, lines: list[InvoiceLineView] | None = None
) -> None:
    """Move an open invoice to ``paid`` at ``at`` (audit row and ``invoice.paid`` event); ``lines`` as
    for :func:`apply_finalization`."""
    before = _snapshot(inv)
    ensure_transition(inv.status, InvoiceStatus.PAID)
    inv.status = InvoiceStatus.PAID.value
    inv.paid_at = inv.updated_at = at
    _record(ctx, inv, "invoice.pay", before, "invoice.paid", flush=flush, lines=lines)


def void_invoice(ctx: Ctx, invoice_id: str) -> Invoice:
    """Void an open or uncollectible invoice; customer credit it used goes back to the customer."""
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    ensure_transition(inv.status, InvoiceStatus.VOID)
    if inv.amount_paid:
        raise Conflict(
            "the invoice has payments; refund or credit them instead of voiding", code="invoice_has_payments"
        )
    before = _snapshot(inv)
    now = ctx.now()
    if inv.applied_balance:
        add_balance_transaction(
            ctx,
            inv,
            type="invoice_voided",
            amount=inv.applied_balance,
            description=f"Returned from voided invoice {inv.number}",
            at=now,
        )
    inv.status = InvoiceStatus.VOID.value
    inv.voided_at = inv.updated_at = now
    inv.amount_remaining = 0
    _record(ctx, inv, "invoice.void", before, "invoice.voided")
    return inv


def mark_uncollectible(ctx: Ctx, invoice_id: str) -> Invoice:
    """Mark an open invoice uncollectible (it can still be paid or voided later)."""
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    ensure_transition(inv.status, InvoiceStatus.UNCOLLECTIBLE)
    before = _snapshot(inv)
    inv.status = InvoiceStatus.UNCOLLECTIBLE.value
    inv.marked_uncollectible_at = inv.updated_at = ctx.now()
    _record(ctx, inv, "invoice.mark_uncollectible", before, "invoice.marked_uncollectible")
    return inv


def pay_out_of_band(
    ctx: Ctx,
    invoice_id: str,
    *,
    amount: int | None = None,
    method: str = "bank_transfer",
    reference: str | None = None,
    paid_at: datetime | None = None,
    metadata: dict[str, str] | None = None,
) -> tuple[Invoice, Payment]:
    """Record a payment received outside Revflow (bank transfer, check, cash).

    ``amount`` defaults to what remains; a partial amount leaves the invoice open; any excess becomes
    customer credit. Returns (invoice, payment). Raises Conflict ``invalid_state`` unless the invoice is
    open or uncollectible, InvalidInput for a non-positive amount or unknown method.
    """
    inv = ctx.get(Invoice, invoice_id, for_update=True, label="invoice")
    if inv.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        raise Conflict(
            f"invoice {inv.id} is {inv.status}; only open invoices take payments", code="invalid_state"
        )
    if method not in PAYMENT_METHODS:
        raise InvalidInput(f"method must be one of {sorted(PAYMENT_METHODS)}", code="invalid_payment_method")
    value = inv.amount_remaining if amount is None else amount
    if value <= 0:
        raise InvalidInput(
            "a payment amount must be positive",
            code="invalid_amount",
            details=[{"field": "amount", "code": "invalid_amount"}],
        )
    before = _snapshot(inv)
    now = ctx.now()
    payment = Payment(
        id=new_id("pay"),
        org_id=ctx.org_id,
        invoice_id=inv.id,
        customer_id=inv.customer_id,
        amount=value,
        currency=inv.currency,
        status="succeeded",
        method=method,
        reference=reference,
        paid_at=paid_at or now,
        metadata_=metadata or {},
        created_at=now,
    )
    ctx.session.add(payment)
    apply_payment(ctx, inv, amount=value, at=now, description=f"Overpayment of invoice {inv.number}")
    ctx.session.flush()
    record(
        ctx,
        action="payment.create",
        object_type="payment",
        object_id=payment.id,
        changes=diff({}, {"amount": value, "method": method, "reference": reference, "invoice_id": inv.id}),
        event_type="payment.succeeded",
        data=PaymentView.of(payment).payload(),
    )
    _record(ctx, inv, "invoice.record_payment", before, None)
    if inv.amount_remaining == 0:
        mark_paid(ctx, inv, payment.paid_at or now)
    return inv, payment


def list_invoices(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    disputed: bool | None = None,
) -> Page[Invoice]:
    """One page of invoices, newest first, optionally by customer, status and dispute flag (an open or
    lost dispute)."""
    stmt = select(Invoice).where(Invoice.org_id == ctx.org_id)
    if disputed is True:
        stmt = stmt.where(Invoice.dispute_status.is_not(None), Invoice.dispute_status != "won")
    elif disputed is False:
        stmt = stmt.where(or_(Invoice.dispute_status.is_(None), Invoice.dispute_status == "won"))
    stmt = filtered(stmt, (Invoice.customer_id, customer_id), (Invoice.status, status))
    return paginate(
        ctx, stmt, Invoice, limit=limit, starting_after=starting_after, ending_before=ending_before
    )

"""Invoice rules: statuses and their transitions, line amounts, totals and what may be credited.

>>> ensure_transition(InvoiceStatus.DRAFT, InvoiceStatus.OPEN)
>>> ensure_transition(InvoiceStatus.PAID, InvoiceStatus.VOID)
Traceback (most recent call last):
...
revflow.domain.errors.InvalidTransition: cannot move an invoice from paid to void
>>> from revflow.domain.money import Currency
>>> line_amount(quantity=Decimal(3), unit_amount_decimal=Decimal("3333.5"), currency=Currency.of("USD"))
10001
>>> t = compute_totals(line_amounts=[50000, 2500], credit_balance_available=1000)
>>> t.subtotal, t.total, t.applied_balance, t.amount_due
(52500, 52500, 1000, 51500)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from revflow.domain.errors import InvalidInput, InvalidTransition
from revflow.domain.money import MAX_AMOUNT, Currency, round_to_minor

__all__ = [
    "TRANSITIONS",
    "AmountOutOfRange",
    "CreditNoteTooLarge",
    "InvoiceStatus",
    "InvoiceTotals",
    "compute_totals",
    "credit_note_kind",
    "ensure_transition",
    "line_amount",
    "max_creditable",
]


class InvoiceStatus(StrEnum):
    """Stripe's invoice statuses."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


#: The only allowed moves of an invoice's status. Drafts may also be deleted (no status: the row goes).
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN}),
    InvoiceStatus.OPEN: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}


def ensure_transition(current: InvoiceStatus | str, target: InvoiceStatus | str) -> None:
    """Return None if ``current → target`` is in :data:`TRANSITIONS`; raises InvalidTransition otherwise."""
    cur, tgt = InvoiceStatus(current), InvoiceStatus(target)
    if tgt not in TRANSITIONS[cur]:
        raise InvalidTransition(f"cannot move an invoice from {cur} to {tgt}")


class CreditNoteTooLarge(InvalidInput):
    """A credit note would credit more than remains creditable."""

    code = "credit_note_amount_too_large"


class AmountOutOfRange(InvalidInput):
    """An amount beyond ±10^15 minor units."""

    code = "amount_out_of_range"


def line_amount(*, quantity: Decimal, unit_amount_decimal: Decimal, currency: Currency) -> int:
    """Return a line's amount in minor units: ``quantity × unit price`` rounded once, at the line total.

    ``unit_amount_decimal`` is in minor units and may carry sub-minor precision (``"0.04"`` cents).
    Raises AmountOutOfRange when the result exceeds ±10^15 minor units.
    """
    exact = quantity * unit_amount_decimal
    amount = round_to_minor(exact.scaleb(-currency.exponent), currency)
    if abs(amount) > MAX_AMOUNT:
        raise AmountOutOfRange(f"line amount {amount} exceeds the limit of {MAX_AMOUNT} minor units")
    return amount


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    """The figures of an invoice, all in minor units of its currency."""

    subtotal: int
    discount: int
    tax: int
    total: int
    applied_balance: int
    amount_due: int


def compute_totals(
    *, line_amounts: Iterable[int], discount: int = 0, tax: int = 0, credit_balance_available: int = 0
) -> InvoiceTotals:
    """Return the invoice totals; customer credit (a positive balance) is applied up to the total.

    ``amount_due = total − applied_balance``; raises AmountOutOfRange when the total exceeds 10^15.
    """
    subtotal = sum(line_amounts)
    total = subtotal - discount + tax
    if abs(total) > MAX_AMOUNT:
        raise AmountOutOfRange(f"invoice total {total} exceeds the limit of {MAX_AMOUNT} minor units")
    applied = max(0, min(credit_balance_available, total))
    return InvoiceTotals(subtotal, discount, tax, total, applied, total - applied)


def credit_note_kind(status: InvoiceStatus | str) -> str:
    """Return ``pre_payment`` (open invoice: lowers what is owed) or ``post_payment`` (paid: becomes
    customer credit). Raises InvalidTransition for invoices that cannot be credited."""
    st = InvoiceStatus(status)
    if st is InvoiceStatus.OPEN:
        return "pre_payment"
    if st is InvoiceStatus.PAID:
        return "post_payment"
    raise InvalidTransition(f"a {st} invoice cannot be credited; only open or paid invoices can")


def max_creditable(*, status: InvoiceStatus | str, total: int, credited: int, amount_remaining: int) -> int:
    """Return how much may still be credited on an invoice.

    Paid invoices: the total less what earlier credit notes took. Open invoices: additionally no more
    than what remains to be paid (the paid part is credited once the invoice is paid).
    """
    left = total - credited
    if InvoiceStatus(status) is InvoiceStatus.OPEN:
        left = min(left, amount_remaining)
    return max(0, left)

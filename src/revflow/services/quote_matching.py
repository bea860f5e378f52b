"""Contract-to-invoice matching: every invoice of a subscription made from a quote is checked against it.

What a quote bills (:func:`quoted_lines`: each line's price, quantity and negotiated terms, and
:func:`quote_discount_terms`: its coupon's window) is defined here, for the matching, for accepting a
quote and for printing it.

For each line of the invoice that belongs to such a subscription:

* ``price_id``: the line bills one of the quote's prices (the custom price of a negotiated line, else
  the list price). A proration line is checked on this alone.
* ``quantity`` and ``amount``: a full-period recurring line (or a one-time line) bills the quoted
  quantity, and its amount is what the quoted terms give for the line's quantity over a whole period.
* ``discount``: the quote's coupon takes off exactly what it would take off the subscription's lines of
  this invoice, in its window (percent of each line, or the fixed amount spread), by the same rules as
  the billing engine (:func:`revflow.domain.discounts.allocate`).
* ``coupon``: no other coupon applies to the line.

Each deviation becomes a ``quote_discrepancy`` alert on the invoice holding the expected and the actual
value, deduplicated per invoice, line and field, so checking twice records nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from sqlalchemy import select

from revflow.domain.billing import owed_amount
from revflow.domain.clock import FrozenClock
from revflow.domain.discounts import DiscountableLine, DiscountTerms, Duration, allocate, window_end
from revflow.domain.errors import InvalidInput, NotFound
from revflow.domain.money import Currency
from revflow.domain.pricing import PriceTerms, PricingModel
from revflow.services.alerts import raise_alert
from revflow.services.context import Ctx
from revflow.services.price_terms import price_terms
from revflow.services.schedules import schedule_of
from revflow.storage.models import (
    Alert,
    Coupon,
    Invoice,
    InvoiceLineItem,
    Price,
    Quote,
    Subscription,
    TestClock,
)

__all__ = [
    "ALERT_TYPE",
    "QuotedLine",
    "check_invoice_against_quote",
    "check_subscription_invoices",
    "quote_discount_terms",
    "quoted_lines",
    "quoted_terms",
]

ALERT_TYPE: Final = "quote_discrepancy"


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One line of a quote as billing sees it.

    ``terms`` are the list price's terms with the negotiated amount in place; ``price_id`` is the price
    the subscription bills: the custom price made at acceptance for a negotiated line, else the list price.
    """

    index: int
    list_price: Price
    quantity: Decimal
    unit_amount: Decimal | None
    terms: PriceTerms
    price_id: str


def quoted_terms(price: Price, unit_amount: Decimal | None) -> PriceTerms:
    """The terms of ``price`` with ``unit_amount`` (minor units) negotiated in: it replaces the unit amount
    of a per-unit price or the flat amount of a flat price. Raises InvalidInput ``override_not_supported``
    for other models and InvalidPricing for a negative amount."""
    terms = price_terms(price)
    if unit_amount is None:
        return terms
    if terms.model is PricingModel.PER_UNIT:
        return replace(terms, unit_amount=unit_amount)
    if terms.model is PricingModel.FLAT:
        return replace(terms, flat_amount=unit_amount)
    raise InvalidInput(
        f"a {terms.model} price cannot be negotiated; only flat and per_unit prices can",
        code="override_not_supported",
    )


def quoted_lines(ctx: Ctx, quote: Quote) -> list[QuotedLine]:
    """The quote's lines with their prices and negotiated terms, in order. Raises NotFound for a price
    that no longer exists."""
    ids = {li["price_id"] for li in quote.lines} | {
        li["custom_price_id"] for li in quote.lines if li.get("custom_price_id")
    }
    prices = {
        p.id: p
        for p in ctx.session.scalars(select(Price).where(Price.org_id == ctx.org_id, Price.id.in_(ids)))
    }
    out = []
    for i, li in enumerate(quote.lines):
        price = prices.get(li["price_id"])
        if price is None:
            raise NotFound(f"No such price: '{li['price_id']}'")
        override = None if li.get("unit_amount") is None else Decimal(li["unit_amount"])
        out.append(
            QuotedLine(
                index=i,
                list_price=price,
                quantity=Decimal(li["quantity"]),
                unit_amount=override,
                terms=quoted_terms(price, override),
                price_id=li.get("custom_price_id") or price.id,
            )
        )
    return out


def quote_discount_terms(coupon: Coupon, *, start: datetime, tz: str) -> DiscountTerms:
    """The quote's coupon as redeemed on a subscription whose paid periods begin at ``start``: its window
    starts there (a ``once`` coupon applies to the period starting there only)."""
    duration = Duration(coupon.duration)
    return DiscountTerms(
        id=f"quote:{coupon.id}",
        coupon_id=coupon.id,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=duration,
        applies_to_products=frozenset(coupon.applies_to_products),
        applies_to_plans=frozenset(coupon.applies_to_plans),
        start=start,
        end=window_end(start=start, duration=duration, months=coupon.duration_in_months, tz=tz),
        once_period_start=start if duration is Duration.ONCE else None,
    )


# --- matching ---------------------------------------------------------------------------------------

#: (line, field, expected, actual)
_Finding = tuple[InvoiceLineItem, str, Any, Any]


def _qty(value: Any) -> str:
    text = format(value.normalize(), "f") if value else "0"
    return text


def _price_findings(
    lines: list[InvoiceLineItem], quoted: list[QuotedLine], currency: Currency
) -> list[_Finding]:
    expected: dict[str, tuple[QuotedLine, bool]] = {}
    for ql in quoted:
        expected[ql.price_id] = (ql, True)
    for ql in quoted:
        expected.setdefault(ql.list_price.id, (ql, False))
    out: list[_Finding] = []
    for line in lines:
        if line.price_id is None or line.kind in ("trial", "one_off"):
            continue
        match = expected.get(line.price_id)
        if match is None:
            out.append((line, "price_id", sorted(ql.price_id for ql in quoted), line.price_id))
            continue
        ql, exact = match
        if not exact:
            out.append((line, "price_id", ql.price_id, line.price_id))
        if line.kind not in ("recurring", "one_time"):
            continue
        if line.quantity != ql.quantity:
            out.append((line, "quantity", _qty(ql.quantity), _qty(line.quantity)))
        full = owed_amount(terms=ql.terms, quantity=line.quantity, fraction=Fraction(1), currency=currency)
        if line.amount != full:
            out.append((line, "amount", full, line.amount))
    return out


def _discount_findings(
    ctx: Ctx, inv: Invoice, sub: Subscription, quote: Quote, lines: list[InvoiceLineItem], currency: Currency
) -> list[_Finding]:
    expected = [0] * len(lines)
    if quote.coupon_id is not None:
        coupon = ctx.get(Coupon, quote.coupon_id, label="coupon")
        terms = quote_discount_terms(coupon, start=schedule_of(sub).billing_start, tz=sub.timezone)
        ids = {li.price_id for li in lines if li.price_id}
        products = {
            p.id: p.product_id
            for p in ctx.session.scalars(select(Price).where(Price.org_id == ctx.org_id, Price.id.in_(ids)))
        }
        discountable = [
            DiscountableLine(
                key=i,
                amount=li.amount,
                billing_period_start=li.billing_period_start or inv.created_at,
                currency=li.currency,
                product_id=products.get(li.price_id or ""),
                plan_id=quote.plan_id,
            )
            for i, li in enumerate(lines)
        ]
        allocated = allocate(lines=discountable, discounts=[terms], currency=currency)
        expected = [sum(part.amount for part in parts) for parts in allocated]
    out: list[_Finding] = []
    for line, want in zip(lines, expected, strict=True):
        by_coupon: dict[str, int] = defaultdict(int)
        for part in line.discounts or []:
            by_coupon[str(part.get("coupon_id"))] += int(part.get("amount", 0))
        got = by_coupon.pop(quote.coupon_id, 0) if quote.coupon_id is not None else 0
        if got != want:
            out.append((line, "discount", want, got))
        if by_coupon:
            out.append((line, "coupon", quote.coupon_id, sorted(by_coupon)))
    return out


def _alert(ctx: Ctx, inv: Invoice, quote: Quote, finding: _Finding) -> Alert:
    line, field, expected, actual = finding
    name = inv.number or inv.id
    return raise_alert(
        ctx.session,
        org_id=ctx.org_id,
        type=ALERT_TYPE,
        severity="warning",
        object_type="invoice",
        object_id=inv.id,
        message=(
            f"Invoice {name}, line '{line.description}': {field} is {actual!r}; "
            f"quote {quote.number or quote.id} says {expected!r}"
        ),
        details={
            "quote_id": quote.id,
            "line_id": line.id,
            "field": field,
            "expected": expected,
            "actual": actual,
        },
        dedupe_key=f"{ALERT_TYPE}:{inv.id}:{line.id}:{field}",
        now=ctx.now(),
    )


def check_invoice_against_quote(ctx: Ctx, invoice: Invoice) -> list[Alert]:
    """Check every line of ``invoice`` that belongs to a subscription made from a quote against that quote.

    Returns the ``quote_discrepancy`` alerts of the deviations found (empty when the invoice matches, or
    has no quoted subscription); an alert already recorded for the same invoice, line and field is
    returned refreshed rather than duplicated. Alerts are stamped ``ctx.now()``. Raises nothing of its own.
    """
    by_sub: dict[str, list[InvoiceLineItem]] = defaultdict(list)
    for line in invoice.lines:
        if line.subscription_id is not None:
            by_sub[line.subscription_id].append(line)
    if not by_sub:
        return []
    subs = ctx.session.scalars(
        select(Subscription)
        .where(
            Subscription.org_id == ctx.org_id,
            Subscription.id.in_(list(by_sub)),
            Subscription.quote_id.is_not(None),
        )
        .order_by(Subscription.id)
    )
    currency = Currency.of(invoice.currency)
    alerts: list[Alert] = []
    for sub in subs:
        quote = ctx.get(Quote, str(sub.quote_id), label="quote")
        lines = by_sub[sub.id]
        findings = _price_findings(lines, quoted_lines(ctx, quote), currency)
        findings += _discount_findings(ctx, invoice, sub, quote, lines, currency)
        alerts += [_alert(ctx, invoice, quote, f) for f in findings]
    return alerts


def _now(ctx: Ctx, test_clock_id: str | None) -> datetime:
    if test_clock_id is None:
        return ctx.now()
    return ctx.get(TestClock, test_clock_id, label="test clock").frozen_time


def check_subscription_invoices(ctx: Ctx, subscription_id: str) -> list[Alert]:
    """Check every invoice (void ones aside) billing the subscription against its quote, oldest first.

    Returns the ``quote_discrepancy`` alerts found, as :func:`check_invoice_against_quote` does; alerts
    are stamped with the subscription's time (its test clock's, if any). Raises NotFound, and InvalidInput
    ``subscription_not_quoted`` for a subscription not made from a quote.
    """
    sub = ctx.get(Subscription, subscription_id, label="subscription")
    if sub.quote_id is None:
        raise InvalidInput(f"subscription {sub.id} was not made from a quote", code="subscription_not_quoted")
    billed = select(InvoiceLineItem.invoice_id).where(
        InvoiceLineItem.org_id == ctx.org_id, InvoiceLineItem.subscription_id == sub.id
    )
    invoices = ctx.session.scalars(
        select(Invoice)
        .where(Invoice.org_id == ctx.org_id, Invoice.id.in_(billed), Invoice.status != "void")
        .order_by(Invoice.id)
    )
    at = Ctx(
        session=ctx.session,
        org_id=ctx.org_id,
        actor=ctx.actor,
        clock=FrozenClock(_now(ctx, sub.test_clock_id)),
        request_id=ctx.request_id,
    )
    alerts: list[Alert] = []
    for inv in list(invoices):
        alerts += check_invoice_against_quote(at, inv)
    return alerts

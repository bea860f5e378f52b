"""Build the printable form of a quote (what its PDF shows) from stored rows.

The figures are those the subscription will bill: each line's negotiated price for one billing period,
the first invoice (recurring and one-time prices, the coupon taken off by the billing engine's rules) and
a renewal invoice (the start of the next term, or the second period when there is no term). Usage prices
are listed with their unit price and bill on usage, so they add nothing to these totals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import select

from revflow.domain.billing import owed_amount
from revflow.domain.cycles import shift
from revflow.domain.discounts import DiscountableLine, Duration, allocate
from revflow.domain.money import Currency
from revflow.domain.pricing import PricingModel, exact_amount
from revflow.services.context import Ctx
from revflow.services.documents import _party
from revflow.services.ports import DocumentLine, QuoteDocument
from revflow.services.quote_matching import QuotedLine, quote_discount_terms, quoted_lines
from revflow.services.subscriptions import now_for
from revflow.storage.models import Coupon, Customer, Organization, Product, Quote

__all__ = ["discount_description", "quote_document"]

_EVERY = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _cadence(line: QuotedLine) -> str:
    price = line.list_price
    if price.type != "recurring" or price.interval is None:
        return "one-time"
    unit = _EVERY.get(price.interval, price.interval)
    return f"per {unit}" if price.interval_count == 1 else f"every {_plural(price.interval_count, unit)}"


def discount_description(coupon: Coupon) -> str:
    """Return what the coupon takes off and for how long, e.g. "20% off for the first 12 months"."""
    if coupon.percent_off is not None:
        value = f"{format(coupon.percent_off.normalize(), 'f')}% off"
    else:
        currency = Currency.of(str(coupon.currency))
        amount = Decimal(coupon.amount_off or 0).scaleb(-currency.exponent)
        value = f"{amount:f} {currency.code} off"
    duration = Duration(coupon.duration)
    if duration is Duration.ONCE:
        return f"{value} once"
    if duration is Duration.FOREVER:
        return f"{value} forever"
    months = coupon.duration_in_months or 1
    return f"{value} for the first month" if months == 1 else f"{value} for the first {months} months"


def _term(quote: Quote) -> str:
    if not quote.term_months:
        return "Until canceled"
    renewal = "renews automatically" if quote.auto_renew else "ends at term end"
    return f"{_plural(quote.term_months, 'month')}, {renewal}"


def _local_date(at: datetime | None, tz: str) -> datetime | None:
    return None if at is None else at.astimezone(ZoneInfo(tz))


def quote_document(ctx: Ctx, quote: Quote) -> QuoteDocument:
    """Return the printable quote: a draft prints as "Draft quote" without a number.

    Raises NotFound when the customer, a price or the coupon no longer exists.
    """
    org = ctx.get(Organization, quote.org_id, label="organization")
    customer = ctx.get(Customer, quote.customer_id, label="customer")
    tz = customer.timezone
    currency = Currency.of(quote.currency)
    lines = quoted_lines(ctx, quote)
    product_ids = {li.list_price.product_id for li in lines}
    products = {
        p.id: p
        for p in ctx.session.scalars(
            select(Product).where(Product.org_id == ctx.org_id, Product.id.in_(product_ids))
        )
    }
    doc_lines: list[DocumentLine] = []
    first: list[tuple[int, str]] = []  # (amount, product id)
    renewal: list[tuple[int, str]] = []
    for li in lines:
        price = li.list_price
        usage = price.metric_code is not None
        amount = (
            0
            if usage
            else owed_amount(terms=li.terms, quantity=li.quantity, fraction=Fraction(1), currency=currency)
        )
        if li.terms.model is PricingModel.PER_UNIT or usage or not li.quantity:
            unit = li.terms.unit_amount
        else:
            unit = exact_amount(terms=li.terms, quantity=li.quantity) / li.quantity
        product = products.get(price.product_id)
        name = product.name if product is not None else "Subscription"
        if price.nickname:
            name = f"{name} ({price.nickname})"
        notes = [_cadence(li)]
        if li.unit_amount is not None:
            notes.append("negotiated price")
        if usage:
            notes.append(f"billed on usage of {price.metric_code}")
        doc_lines.append(
            DocumentLine(
                description=f"{name}, {', '.join(notes)}",
                quantity=li.quantity,
                unit_amount_decimal=unit.normalize(),
                amount=amount,
            )
        )
        if not usage:
            first.append((amount, price.product_id))
            if price.type == "recurring":
                renewal.append((amount, price.product_id))

    start = quote.start_at or now_for(ctx, customer.test_clock_id)
    billing_start = start + timedelta(days=quote.trial_days) if quote.trial_days else start
    recurring = next(li.list_price for li in lines if li.list_price.type == "recurring")
    if quote.term_months:
        renews_at = shift(anchor=start, interval="month", count=quote.term_months, n=1, tz=tz)
    else:
        renews_at = shift(
            anchor=billing_start,
            interval=str(recurring.interval),
            count=recurring.interval_count,
            n=1,
            tz=tz,
        )
    coupon = ctx.get(Coupon, quote.coupon_id, label="coupon") if quote.coupon_id else None

    def discount(amounts: list[tuple[int, str]], period_start: datetime) -> int:
        if coupon is None:
            return 0
        terms = quote_discount_terms(coupon, start=billing_start, tz=tz)
        discountable = [
            DiscountableLine(
                key=i,
                amount=amount,
                billing_period_start=period_start,
                currency=currency.code,
                product_id=product_id,
                plan_id=quote.plan_id,
            )
            for i, (amount, product_id) in enumerate(amounts)
        ]
        parts = allocate(lines=discountable, discounts=[terms], currency=currency)
        return sum(p.amount for per_line in parts for p in per_line)

    subtotal = sum(a for a, _ in first)
    first_discount = discount(first, billing_start)
    has_renewal = bool(renewal) and (not quote.term_months or quote.auto_renew)
    renewal_total = sum(a for a, _ in renewal) - discount(renewal, renews_at) if has_renewal else None
    valid_until = _local_date(quote.expires_at, tz)
    starts = _local_date(quote.start_at, tz)
    finalized = _local_date(quote.finalized_at, tz)
    return QuoteDocument(
        title="Quote" if quote.number else "Draft quote",
        number=quote.number,
        status=quote.status,
        currency=currency.code,
        locale=customer.locale or "en_US",
        issue_date=finalized.date() if finalized else None,
        valid_until=valid_until.date() if valid_until else None,
        start=starts.date() if starts else None,
        term=_term(quote),
        seller=_party(org.name, org.email, org.address, org.tax_ids),
        buyer=_party(customer.name, customer.email, customer.address, customer.tax_ids),
        lines=tuple(doc_lines),
        discount_description=discount_description(coupon) if coupon else None,
        first_invoice_subtotal=subtotal,
        first_invoice_discount=first_discount,
        first_invoice_total=subtotal - first_discount,
        renewal_total=renewal_total,
        trial=_plural(quote.trial_days, "day") if quote.trial_days else None,
    )

"""Recompute-and-diff billing (as Kill Bill does it).

For each billing period of a subscription the engine computes what is owed from the subscription's
timeline, then bills only the difference from what earlier invoices already billed for that period. So
billing twice bills nothing new, a mid-period change produces a credit and a charge, and a change
followed by its reversal nets to zero.

What is owed, per period ``P`` and per key:

* recurring prices, key ``(price, quantity)``: the price's full-period amount × the exact fraction of
  ``P`` that the timeline's segments with that key cover (seconds / seconds), rounded once. Several
  segments with the same key add their fractions before rounding, so splitting a period never loses a
  cent. In-advance prices are owed from the period's start, in-arrears prices at its end.
* one-time prices, key ``(price, quantity, "one_time")``: the full amount, in the period where the
  segment begins; never prorated.
* usage prices, key ``(price, "usage")``: the price applied to the period's metered quantity; never
  prorated.

>>> from datetime import datetime, timedelta, UTC
>>> from decimal import Decimal as D
>>> from revflow.domain.money import Currency
>>> from revflow.domain.pricing import PriceTerms, PricingModel
>>> usd = Currency.of("USD")
>>> june = Period(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
>>> def flat(amount): return PriceTerms(model=PricingModel.FLAT, flat_amount=D(amount))
>>> basic = Charge("price_basic", "recurring", "in_advance", flat(10000))
>>> pro = Charge("price_pro", "recurring", "in_advance", flat(20000))
>>> day16 = june.start + timedelta(days=15)
>>> before = [Segment(basic, D(1), june.start, None)]
>>> [(d.price_id, d.amount) for d in diff(period=june, segments=before, billed=[], currency=usd)]
[('price_basic', 10000)]
>>> billed = [Billed("price_basic", D(1), "recurring", 10000, june.start, june.end)]
>>> after = [Segment(basic, D(1), june.start, day16), Segment(pro, D(1), day16, None)]
>>> lines = diff(period=june, segments=after, billed=billed, currency=usd)
>>> [(d.price_id, d.amount, d.proration) for d in lines]
[('price_basic', -5000, True), ('price_pro', 10000, True)]
>>> back = [Segment(basic, D(1), june.start, day16), Segment(basic, D(1), day16, None)]
>>> diff(period=june, segments=back, billed=billed, currency=usd)
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fractions import Fraction

from revflow.domain.money import Currency, round_to_minor
from revflow.domain.period import Period
from revflow.domain.pricing import PriceTerms, exact_amount

__all__ = ["Billed", "Charge", "LineDraft", "Segment", "diff", "owed_amount"]


@dataclass(frozen=True, slots=True)
class Charge:
    """A price as billing sees it. ``type`` is ``recurring`` or ``one_time``; ``timing`` is
    ``in_advance`` or ``in_arrears``; ``usage`` prices are metered (always in arrears)."""

    price_id: str
    type: str
    timing: str
    terms: PriceTerms
    usage: bool = False


@dataclass(frozen=True, slots=True)
class Segment:
    """A price and quantity billed over ``[start, end)`` (end None: open)."""

    charge: Charge
    quantity: Decimal
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Billed:
    """An invoice line already billed for the period."""

    price_id: str | None
    quantity: Decimal
    kind: str  # recurring, proration, one_time, usage, trial, one_off
    amount: int
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class LineDraft:
    """A line to add to an invoice. ``amount`` is before discounts; ``period`` is its service period."""

    kind: str
    price_id: str
    quantity: Decimal
    amount: int
    period: Period
    billing_period: Period
    proration: bool


def owed_amount(*, terms: PriceTerms, quantity: Decimal, fraction: Fraction, currency: Currency) -> int:
    """The full-period amount of ``quantity`` under ``terms`` × ``fraction``, rounded once."""
    exact = exact_amount(terms=terms, quantity=quantity)
    with localcontext() as ctx:
        ctx.prec = 60
        value = exact * Decimal(fraction.numerator) / Decimal(fraction.denominator)
    return round_to_minor(value.scaleb(-currency.exponent), currency)


def _seconds(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds())


def _overlap(period: Period, start: datetime, end: datetime | None) -> tuple[datetime, datetime] | None:
    lo = max(period.start, start)
    hi = period.end if end is None else min(period.end, end)
    return (lo, hi) if lo < hi else None


def _span(intervals: Iterable[tuple[datetime, datetime]], fallback: Period) -> Period:
    spans = list(intervals)
    if not spans:
        return fallback
    return Period(min(s for s, _ in spans), max(e for _, e in spans))


def _subtract(
    a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Parts of the intervals ``a`` not covered by any interval of ``b``."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in a:
        pieces = [(start, end)]
        for bs, be in b:
            nxt: list[tuple[datetime, datetime]] = []
            for ps, pe in pieces:
                if be <= ps or bs >= pe:
                    nxt.append((ps, pe))
                    continue
                if ps < bs:
                    nxt.append((ps, bs))
                if be < pe:
                    nxt.append((be, pe))
            pieces = nxt
        out.extend(pieces)
    return out


@dataclass
class _Key:
    owed: int = 0
    billed: int = 0
    owed_cover: list[tuple[datetime, datetime]] | None = None
    billed_cover: list[tuple[datetime, datetime]] | None = None


def diff(
    *,
    period: Period,
    segments: Iterable[Segment],
    billed: Iterable[Billed],
    currency: Currency,
    usage: Mapping[str, Decimal] | None = None,
    usage_owed: Mapping[str, int] | None = None,
    include_advance: bool = True,
    include_arrears: bool = True,
    basis: Period | None = None,
) -> list[LineDraft]:
    """Return the lines that bring what was billed for ``period`` to what is owed.

    ``usage`` maps usage price ids to the period's metered quantity (given only once the period closed);
    ``usage_owed`` optionally gives what that usage costs when it is not the price applied to the total
    quantity (a metric priced per group).
    ``include_advance`` / ``include_arrears`` select which recurring prices are due now. ``basis`` is
    the period a full price is measured against (default ``period``; longer for a prorated stub). A line
    is a ``proration`` when it corrects an amount already billed or covers part of the period only.
    """
    segs = list(segments)
    keys: dict[tuple[str, Decimal, str], _Key] = {}
    charges: dict[str, Charge] = {}
    fractions: dict[tuple[str, Decimal, str], Fraction] = {}
    measure = basis or period
    total = _seconds(measure.start, measure.end)

    for seg in segs:
        ch = seg.charge
        charges[ch.price_id] = ch
        if ch.usage:
            continue
        if ch.type == "one_time":
            if period.contains(seg.start):
                k = (ch.price_id, seg.quantity, "one_time")
                entry = keys.setdefault(k, _Key(owed_cover=[], billed_cover=[]))
                entry.owed += owed_amount(
                    terms=ch.terms, quantity=seg.quantity, fraction=Fraction(1), currency=currency
                )
                assert entry.owed_cover is not None
                entry.owed_cover.append((period.start, period.end))
            continue
        due = include_advance if ch.timing == "in_advance" else include_arrears
        if not due:
            continue
        span = _overlap(period, seg.start, seg.end)
        if span is None:
            continue
        k = (ch.price_id, seg.quantity, "recurring")
        fractions[k] = fractions.get(k, Fraction(0)) + Fraction(_seconds(*span), total)
        entry = keys.setdefault(k, _Key(owed_cover=[], billed_cover=[]))
        assert entry.owed_cover is not None
        entry.owed_cover.append(span)

    for k, frac in fractions.items():
        ch = charges[k[0]]
        keys[k].owed = owed_amount(terms=ch.terms, quantity=k[1], fraction=frac, currency=currency)

    if usage:
        for price_id, units in usage.items():
            usage_charge = charges.get(price_id)
            if usage_charge is None:
                continue
            k = (price_id, units, "usage")
            entry = keys.setdefault(k, _Key(owed_cover=[], billed_cover=[]))
            if usage_owed is not None and price_id in usage_owed:
                entry.owed = usage_owed[price_id]
            else:
                entry.owed = owed_amount(
                    terms=usage_charge.terms, quantity=units, fraction=Fraction(1), currency=currency
                )
            assert entry.owed_cover is not None
            entry.owed_cover.append((period.start, period.end))

    for line in billed:
        if line.price_id is None or line.kind in ("one_off", "trial"):
            continue
        line_charge = charges.get(line.price_id)
        if line.kind == "usage":
            if not usage or line.price_id not in usage:
                continue  # usage is only re-examined when the period's quantities are given
            k = (line.price_id, usage[line.price_id], "usage")
        elif line.kind == "one_time":
            k = (line.price_id, line.quantity, "one_time")
        else:
            if line_charge is not None:
                due = include_advance if line_charge.timing == "in_advance" else include_arrears
                if not due:
                    continue
            k = (line.price_id, line.quantity, "recurring")
        entry = keys.setdefault(k, _Key(owed_cover=[], billed_cover=[]))
        entry.billed += line.amount
        if line.start is not None and line.end is not None and line.amount > 0:
            assert entry.billed_cover is not None
            entry.billed_cover.append((line.start, line.end))

    out: list[LineDraft] = []
    for (price_id, quantity, kind), entry in keys.items():
        delta = entry.owed - entry.billed
        if delta == 0:
            continue
        owed_cover, billed_cover = entry.owed_cover or [], entry.billed_cover or []
        if delta > 0:
            service = _span(_subtract(owed_cover, billed_cover), _span(owed_cover, period))
        else:
            service = _span(_subtract(billed_cover, owed_cover), _span(billed_cover, period))
        full = entry.billed == 0 and service.start == period.start and service.end == period.end
        out.append(
            LineDraft(
                kind=kind if (full or kind != "recurring") else "proration",
                price_id=price_id,
                quantity=quantity,
                amount=delta,
                period=service,
                billing_period=period,
                proration=not full and kind == "recurring",
            )
        )
    return out

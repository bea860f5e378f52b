"""Proration: what part of a period's price is owed when a subscription changes mid-period.

The rule: proration is by the second over the actual length of the period. The fraction remaining is
``(period.end − at) / (period.end − period.start)`` counted in whole seconds of real elapsed time (UTC),
so a 23-hour DST day weighs 23 hours; when changes happen at midnight this equals prorating by days. A
change takes effect from the start of the second it happens in (sub-second digits of ``at`` are dropped).
The fraction is an exact :class:`fractions.Fraction`; the amount is rounded once, with
:func:`revflow.domain.money.round_to_minor` (half up, away from zero), so ``prorate(-x) == -prorate(x)``
and a credit and a charge of the same price over the same time always cancel.

>>> from datetime import datetime, timedelta, UTC
>>> from revflow.domain.money import Currency
>>> usd = Currency.of("USD")
>>> june = Period(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))  # 30 days
>>> day_16 = june.start + timedelta(days=15)  # 15 days elapsed
>>> fraction_remaining(period=june, at=day_16)
Fraction(1, 2)
>>> credit, charge = change_prorations(
...     old_amount=10000, new_amount=20000, period=june, at=day_16, currency=usd
... )
>>> credit.amount, charge.amount
(-5000, 10000)
>>> credit.description
'Unused time on the previous price from 2024-06-16 00:00:00 UTC'
>>> prorate(amount=10000, fraction=Fraction(1, 3), currency=usd)  # 3333.33… rounds down
3333
>>> prorate(amount=-1, fraction=Fraction(1, 2), currency=usd)  # -0.5 rounds away from zero
-1
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Final

from revflow.domain.money import Currency, round_to_minor
from revflow.domain.period import Period

__all__ = [
    "ProrationLine",
    "change_prorations",
    "fraction_remaining",
    "prorate",
]

_SECOND: Final = timedelta(seconds=1)

#: Significant digits of the one division in :func:`prorate`; far more than a half-way tie needs to be
#: told apart from its neighbours (denominators are seconds, below 10^11).
_PRECISION: Final = 50


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    return instant.astimezone(UTC)


def fraction_remaining(*, period: Period, at: datetime) -> Fraction:
    """Return the exact share of ``period`` left after ``at``, by whole seconds, clamped to [0, 1].

    ``at`` on or before the start gives 1, on or after the end gives 0. Raises ValueError for a naive
    ``at``.
    """
    instant = _utc(at).replace(microsecond=0)
    if instant <= period.start:
        return Fraction(1)
    if instant >= period.end:
        return Fraction(0)
    total = period.duration // _SECOND
    if total == 0:  # a period shorter than a second: nothing left once it has begun
        return Fraction(0)
    return Fraction((period.end - instant) // _SECOND, total)


def prorate(*, amount: int, fraction: Fraction, currency: Currency) -> int:
    """Return ``amount × fraction`` in minor units of ``currency``, rounded once (half up).

    ``amount`` is in minor units; the product is formed exactly and divided once with 50 significant
    digits before :func:`round_to_minor`. Raises TypeError unless ``amount`` is an int and ``fraction``
    a Fraction or int.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of minor units, got {type(amount).__name__}")
    if isinstance(fraction, bool) or not isinstance(fraction, Fraction | int):
        raise TypeError(f"fraction must be a Fraction, got {type(fraction).__name__}")
    share = Fraction(fraction)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact_minor = Decimal(amount * share.numerator) / Decimal(share.denominator)
        return round_to_minor(exact_minor.scaleb(-currency.exponent), currency)


@dataclass(frozen=True, slots=True)
class ProrationLine:
    """A prorated invoice line: negative for a credit, positive for a charge, in minor units."""

    description: str
    amount: int
    period: Period


def change_prorations(
    *, old_amount: int, new_amount: int, period: Period, at: datetime, currency: Currency
) -> tuple[ProrationLine, ProrationLine]:
    """Return the credit and the charge of a price change at ``at`` within ``period``.

    The credit (≤ 0) gives back the unused part of ``old_amount``; the charge (≥ 0) bills the remaining
    part of ``new_amount``; both cover ``[at, period.end)`` (``at`` taken from the start of its second)
    with the fraction of :func:`fraction_remaining`. Amounts are per-period prices in minor units.
    Raises ValueError when ``at`` is naive or outside ``[period.start, period.end)`` (a change at the end
    takes effect with the next period and has nothing to prorate).
    """
    instant = _utc(at)
    if not period.contains(instant):
        raise ValueError(
            f"{instant.isoformat()} is outside the period "
            f"[{period.start.isoformat()}, {period.end.isoformat()})"
        )
    effective = max(instant.replace(microsecond=0), period.start)
    fraction = fraction_remaining(period=period, at=effective)
    remaining = Period(effective, period.end)
    since = effective.strftime("%Y-%m-%d %H:%M:%S UTC")
    credit = ProrationLine(
        description=f"Unused time on the previous price from {since}",
        amount=-prorate(amount=old_amount, fraction=fraction, currency=currency),
        period=remaining,
    )
    charge = ProrationLine(
        description=f"Remaining time on the new price from {since}",
        amount=prorate(amount=new_amount, fraction=fraction, currency=currency),
        period=remaining,
    )
    return credit, charge

"""Discounts: how the coupons applied to a customer or a subscription reduce the lines of an invoice.

A :class:`DiscountTerms` is one applied coupon with its window; a :class:`DiscountableLine` is one invoice
line as the discount rules see it. :func:`allocate` returns, per line, the amount each discount takes off.
The rules:

* **Window.** A discount applies to a line when the line's billing period start lies in ``[start, end)``
  (``end`` None: forever). A ``once`` discount applies to one billing period only: the one starting at
  ``once_period_start``, or, while that is not fixed yet, the earliest period start at or after ``start``
  among the lines it could apply to (:func:`resolve_once_period`; the caller stores it).
* **Restriction.** ``applies_to_products`` / ``applies_to_plans``: each non-empty set must contain the
  line's product / plan; both empty means every line.
* **Percent** discounts take ``round_to_minor(amount × percent / 100)`` (half up, away from zero) of each
  line, negative lines included, so a credit for a discounted period is discounted the same way and a
  change plus its reversal nets to zero.
* **Fixed** (``amount_off``) discounts take at most ``amount_off`` per invoice, in the coupon's currency;
  on an invoice in another currency they do not apply. The amount is spread over the eligible positive
  lines in proportion to what remains of them, with the largest-remainder method, so the parts sum exactly
  to ``min(amount_off, eligible remaining total)``.
* **Stacking.** All percent discounts come first, each on the original amount, then the fixed ones on what
  remains, each in the order given. No line is ever taken below zero (nor a credit above zero): a discount
  that would is capped at what is left.

Amounts are minor units; a discount amount is positive when it lowers a charge and negative when it
lowers a credit. Zero amounts are left out.

>>> from datetime import datetime, UTC
>>> usd = Currency.of("USD")
>>> signed = datetime(2024, 1, 1, tzinfo=UTC)
>>> renewal = datetime(2025, 1, 1, tzinfo=UTC)
>>> first_year = DiscountTerms(
...     id="di_1", coupon_id="cpn_1", percent_off=Decimal("20"), duration=Duration.REPEATING,
...     start=signed, end=window_end(start=signed, duration="repeating", months=12, tz="UTC"),
... )
>>> lines = [
...     DiscountableLine(key=0, amount=1_000_000, billing_period_start=signed, currency="USD"),
...     DiscountableLine(key=1, amount=1_000_000, billing_period_start=renewal, currency="USD"),
... ]
>>> allocate(lines=lines, discounts=[first_year], currency=usd)
[[LineDiscount(discount_id='di_1', coupon_id='cpn_1', amount=200000)], []]
>>> ten_off = DiscountTerms(
...     id="di_2", coupon_id="cpn_2", amount_off=1000, currency="USD", duration=Duration.ONCE, start=signed
... )
>>> small = [
...     DiscountableLine(key="a", amount=700, billing_period_start=signed, currency="USD"),
...     DiscountableLine(key="b", amount=200, billing_period_start=signed, currency="USD"),
...     DiscountableLine(key="c", amount=-50, billing_period_start=signed, currency="USD"),
... ]
>>> [[d.amount for d in per_line] for per_line in allocate(lines=small, discounts=[ten_off], currency=usd)]
[[700], [200], []]
>>> allocate(lines=small, discounts=[ten_off], currency=Currency.of("EUR"))
Traceback (most recent call last):
...
revflow.domain.money.CurrencyMismatch: line 'a' is in USD, the invoice in EUR
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Final, NamedTuple

from revflow.domain.cycles import Interval, shift
from revflow.domain.money import Currency, CurrencyMismatch, round_to_minor

__all__ = [
    "DiscountTerms",
    "DiscountableLine",
    "Duration",
    "LineDiscount",
    "allocate",
    "resolve_once_period",
    "window_end",
]

_HUNDRED: Final = Decimal(100)
#: Significant digits for the percent product: amounts below 10^16 times a percent of 7 digits fit.
_PRECISION: Final = 50


class Duration(StrEnum):
    """How long a coupon keeps applying once redeemed (Stripe's ``coupon.duration``)."""

    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


def _aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscountTerms:
    """One applied coupon: its value, restrictions and window ``[start, end)``.

    Exactly one of ``percent_off`` (0 < p ≤ 100) and ``amount_off`` (minor units of ``currency``, > 0) is
    set. Raises ValueError otherwise, and for naive instants or an ``end`` not after ``start``.
    """

    id: str
    coupon_id: str
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: Duration = Duration.FOREVER
    applies_to_products: frozenset[str] = field(default_factory=frozenset)
    applies_to_plans: frozenset[str] = field(default_factory=frozenset)
    start: datetime
    end: datetime | None = None
    once_period_start: datetime | None = None

    def __post_init__(self) -> None:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off and amount_off")
        percent = self.percent_off
        if percent is not None and (not isinstance(percent, Decimal) or not Decimal(0) < percent <= _HUNDRED):
            raise ValueError(f"percent_off must be a Decimal in (0, 100], got {self.percent_off!r}")
        if self.amount_off is not None:
            if (
                isinstance(self.amount_off, bool)
                or not isinstance(self.amount_off, int)
                or self.amount_off <= 0
            ):
                raise ValueError(f"amount_off must be a positive int of minor units, got {self.amount_off!r}")
            if self.currency is None:
                raise ValueError("amount_off needs a currency")
            object.__setattr__(self, "currency", Currency.of(self.currency).code)
        object.__setattr__(self, "duration", Duration(self.duration))
        object.__setattr__(self, "applies_to_products", frozenset(self.applies_to_products))
        object.__setattr__(self, "applies_to_plans", frozenset(self.applies_to_plans))
        _aware(self.start, "start")
        if self.end is not None:
            _aware(self.end, "end")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        if self.once_period_start is not None:
            _aware(self.once_period_start, "once_period_start")


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscountableLine:
    """An invoice line as discounts see it. ``amount`` is in minor units and negative for a credit.

    ``billing_period_start`` is the start of the subscription period the line bills; for a line that
    belongs to no period, pass the instant the invoice is made. Raises ValueError when it is naive.
    """

    key: int | str
    amount: int
    billing_period_start: datetime
    currency: str
    product_id: str | None = None
    plan_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValueError(f"amount must be an int of minor units, got {self.amount!r}")
        _aware(self.billing_period_start, "billing_period_start")


class LineDiscount(NamedTuple):
    """What one discount takes off one line (minor units; negative on a credit line)."""

    discount_id: str
    coupon_id: str
    amount: int


def window_end(*, start: datetime, duration: Duration | str, months: int | None, tz: str) -> datetime | None:
    """Return the end of a discount's window that starts at ``start``.

    ``repeating`` ends ``months`` calendar months later on the local calendar of ``tz`` (the month's end
    clamps: Jan 31 + 1 month is Feb 29 in 2024; the local time of day survives DST); ``once`` and
    ``forever`` have no end (None). Raises ValueError for a ``repeating`` duration without ``months`` ≥ 1,
    a naive ``start`` or an unknown zone.
    """
    if Duration(duration) is not Duration.REPEATING:
        return None
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise ValueError(f"a repeating duration needs months >= 1, got {months!r}")
    return shift(anchor=start, interval=Interval.MONTH, count=months, n=1, tz=tz)


def _matches(discount: DiscountTerms, line: DiscountableLine) -> bool:
    if discount.applies_to_products and line.product_id not in discount.applies_to_products:
        return False
    return not (discount.applies_to_plans and line.plan_id not in discount.applies_to_plans)


def resolve_once_period(*, discount: DiscountTerms, lines: Sequence[DiscountableLine]) -> datetime | None:
    """Return the one billing period start a ``once`` discount applies to among ``lines``.

    That is ``once_period_start`` when it is fixed, otherwise the earliest billing period start at or
    after the discount's start among the lines its restrictions allow (None when there is none). For
    other durations, returns None.
    """
    if discount.duration is not Duration.ONCE:
        return None
    if discount.once_period_start is not None:
        return discount.once_period_start
    starts = [
        line.billing_period_start
        for line in lines
        if line.billing_period_start >= discount.start and _matches(discount, line)
    ]
    return min(starts, default=None)


def _applies(discount: DiscountTerms, line: DiscountableLine, once_start: datetime | None) -> bool:
    if not _matches(discount, line):
        return False
    if discount.duration is Duration.ONCE:
        return once_start is not None and line.billing_period_start == once_start
    if line.billing_period_start < discount.start:
        return False
    return discount.end is None or line.billing_period_start < discount.end


def _percent_of(amount: int, percent: Decimal, currency: Currency) -> int:
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact = Decimal(amount).scaleb(-currency.exponent) * percent / _HUNDRED
        return round_to_minor(exact, currency)


def _capped(amount: int, taken: int, wanted: int) -> int:
    """``wanted`` limited to what is left of the line (towards zero), never changing its sign."""
    left = amount - taken
    if amount >= 0:
        return max(0, min(wanted, left))
    return min(0, max(wanted, left))


def _spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` (≤ sum of ``weights``) in proportion to positive ``weights``, largest remainder
    first (ties to the earlier weight), so the parts sum to ``total`` and none exceeds its weight."""
    whole = sum(weights)
    if total >= whole:
        return list(weights)
    parts, remainders = [], []
    for w in weights:
        q, r = divmod(total * w, whole)
        parts.append(q)
        remainders.append(r)
    left = total - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[i] += 1
    return parts


def allocate(
    *, lines: Sequence[DiscountableLine], discounts: Sequence[DiscountTerms], currency: Currency
) -> list[list[LineDiscount]]:
    """Return, for each line in order, the discounts it receives, by the module's rules.

    ``currency`` is the invoice's: it sets the rounding and decides whether fixed-amount coupons apply.
    Each inner list holds the non-zero :class:`LineDiscount` s of one line, percent discounts first, then
    fixed ones, each group in the order of ``discounts``. Raises CurrencyMismatch when a line is in
    another currency than the invoice.
    """
    for line in lines:
        if Currency.of(line.currency).code != currency.code:
            raise CurrencyMismatch(f"line {line.key!r} is in {line.currency}, the invoice in {currency.code}")
    out: list[list[LineDiscount]] = [[] for _ in lines]
    taken = [0] * len(lines)
    ordered = [d for d in discounts if d.percent_off is not None] + [
        d for d in discounts if d.amount_off is not None and d.currency == currency.code
    ]
    for d in ordered:
        once_start = resolve_once_period(discount=d, lines=lines)
        eligible = [i for i, line in enumerate(lines) if _applies(d, line, once_start)]
        amounts: dict[int, int] = {}
        if d.percent_off is not None:
            for i in eligible:
                wanted = _percent_of(lines[i].amount, d.percent_off, currency)
                amounts[i] = _capped(lines[i].amount, taken[i], wanted)
        elif d.amount_off is not None:
            positive = [i for i in eligible if lines[i].amount > taken[i] and lines[i].amount > 0]
            remaining = [lines[i].amount - taken[i] for i in positive]
            parts = _spread(min(d.amount_off, sum(remaining)), remaining)
            amounts = dict(zip(positive, parts, strict=True))
        for i, amount in amounts.items():
            if amount:
                taken[i] += amount
                out[i].append(LineDiscount(d.id, d.coupon_id, amount))
    return out

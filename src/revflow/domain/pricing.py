"""Pricing models: what a quantity costs under a price's terms.

Every amount here is in MINOR units of the price's currency (cents, yen, fils) as an exact ``Decimal``;
unit amounts may be sub-minor (``Decimal("0.04")`` cents per API call). :func:`exact_amount` never
rounds. :func:`amount` rounds once, at the line total, with :func:`revflow.domain.money.round_to_minor`
(half up, away from zero).

Tiers follow Stripe: ``up_to`` is the inclusive upper bound of a tier and the last tier is open-ended
(``up_to=None``). *Graduated* prices each unit at the tier it falls in and adds a tier's ``flat_amount``
once, as soon as part of the quantity falls in that tier. *Volume* prices every unit at the tier the
total falls in, plus that tier's ``flat_amount``. A quantity of zero falls in no tier and costs nothing.

>>> from decimal import Decimal as D
>>> from revflow.domain.money import Currency
>>> usd = Currency.of("USD")
>>> tiers = (
...     Tier(up_to=D(100), unit_amount=D(100)),  # units 1-100 at 1.00
...     Tier(up_to=D(200), unit_amount=D(50)),  # units 101-200 at 0.50
...     Tier(up_to=None, unit_amount=D(25)),  # above at 0.25
... )
>>> graduated = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)
>>> amount(terms=graduated, quantity=D(150), currency=usd)  # 125.00 USD
12500
>>> [(t.up_to, units, exact) for t, units, exact in tier_breakdown(terms=graduated, quantity=D(150))]
[(Decimal('100'), Decimal('100'), Decimal('10000')), (Decimal('200'), Decimal('50'), Decimal('2500'))]
>>> amount(terms=PriceTerms(model=PricingModel.VOLUME, tiers=tiers), quantity=D(150), currency=usd)
7500
>>> package = PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(500), package_size=20)
>>> amount(terms=package, quantity=D(45), currency=usd)  # 3 packages of 20
1500
>>> per_call = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("0.04"))
>>> exact_amount(terms=per_call, quantity=D(12345))
Decimal('493.80')
>>> amount(terms=per_call, quantity=D(12345), currency=usd)  # 4.938 USD, rounded half up
494
>>> half_yen = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("12.5"))
>>> amount(terms=half_yen, quantity=D(3), currency=Currency.of("JPY"))  # 37.5 yen
38
>>> fils = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("1.2345"))
>>> amount(terms=fils, quantity=D(1000), currency=Currency.of("KWD"))  # 1.2345 KWD → 1.235
1235
>>> amount(terms=per_call, quantity=D(-1), currency=usd)
Traceback (most recent call last):
...
revflow.domain.pricing.InvalidQuantity: quantity must not be negative, got -1
>>> PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(500), package_size=0)
Traceback (most recent call last):
...
revflow.domain.pricing.InvalidPricing: package_size must be at least 1, got 0
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, Inexact, localcontext
from enum import StrEnum
from fractions import Fraction
from math import ceil, floor
from typing import Final

from revflow.domain.errors import InvalidInput
from revflow.domain.invoices import AmountOutOfRange
from revflow.domain.money import MAX_AMOUNT, Currency, round_to_minor

__all__ = [
    "InvalidPricing",
    "InvalidQuantity",
    "PackageRounding",
    "PercentageSplit",
    "PriceTerms",
    "PricingModel",
    "Tier",
    "TierLine",
    "amount",
    "exact_amount",
    "grouped_amount",
    "percentage_fee",
    "percentage_split",
    "percentage_total",
    "round_amount",
    "tier_breakdown",
]

_ZERO: Final = Decimal(0)

#: Significant digits kept while computing exact amounts; a result that needs more raises
#: AmountOutOfRange instead of being silently rounded.
_PRECISION: Final = 100


class InvalidPricing(InvalidInput):
    """A price's terms are inconsistent (negative amounts, bad tiers, missing package size, ...)."""

    code = "invalid_pricing"


class InvalidQuantity(InvalidInput):
    """A quantity is negative or not a finite number."""

    code = "invalid_quantity"


class PricingModel(StrEnum):
    """How a quantity becomes an amount."""

    FLAT = "flat"
    """``flat_amount`` per period, whatever the quantity."""
    PER_UNIT = "per_unit"
    """``quantity × unit_amount``."""
    GRADUATED = "graduated"
    """Each unit at the price of its own tier, plus each reached tier's ``flat_amount``."""
    VOLUME = "volume"
    """All units at the price of the tier the total falls in, plus that tier's ``flat_amount``."""
    PACKAGE = "package"
    """``unit_amount`` per started (or, rounding down, per complete) block of ``package_size`` units."""
    FLAT_PER_UNIT = "flat_per_unit"
    """``flat_amount + quantity × unit_amount``."""
    PERCENTAGE = "percentage"
    """Per usage event: ``unit_amount`` percent of the event's amount (minor units) plus ``flat_amount``,
    kept between ``event_min`` and ``event_max`` (transaction fees). See :func:`percentage_fee`."""


class PackageRounding(StrEnum):
    """How a partly filled package counts: ``up`` bills it whole, ``down`` ignores it."""

    UP = "up"
    DOWN = "down"


def _amount_field(value: object, name: str) -> Decimal:
    """Return ``value`` as a finite, non-negative Decimal; raises InvalidPricing otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidPricing(f"{name} must be a Decimal, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise InvalidPricing(f"{name} must be a finite amount of at least 0, got {number}")
    return number


@dataclass(frozen=True, slots=True)
class Tier:
    """One pricing tier: units up to and including ``up_to`` (``None``: no upper bound).

    ``unit_amount`` and ``flat_amount`` are minor units. Raises InvalidPricing for negative amounts or
    an ``up_to`` that is not a positive number.
    """

    up_to: Decimal | None
    unit_amount: Decimal = _ZERO
    flat_amount: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            up_to = _amount_field(self.up_to, "tier up_to")
            if up_to == 0:
                raise InvalidPricing("tier up_to must be greater than 0")
            object.__setattr__(self, "up_to", up_to)
        object.__setattr__(self, "unit_amount", _amount_field(self.unit_amount, "tier unit_amount"))
        object.__setattr__(self, "flat_amount", _amount_field(self.flat_amount, "tier flat_amount"))


#: One line of a tiered amount: the tier, the units priced in it and their exact amount (minor units).
TierLine = tuple[Tier, Decimal, Decimal]

_TIERED: Final = frozenset({PricingModel.GRADUATED, PricingModel.VOLUME})

#: The fields each model reads; every other field must keep its default.
_USES: Final[dict[PricingModel, frozenset[str]]] = {
    PricingModel.FLAT: frozenset({"flat_amount"}),
    PricingModel.PER_UNIT: frozenset({"unit_amount"}),
    PricingModel.GRADUATED: frozenset({"tiers"}),
    PricingModel.VOLUME: frozenset({"tiers"}),
    PricingModel.PACKAGE: frozenset({"unit_amount", "package_size", "package_rounding"}),
    PricingModel.FLAT_PER_UNIT: frozenset({"unit_amount", "flat_amount"}),
    PricingModel.PERCENTAGE: frozenset({"unit_amount", "flat_amount", "event_min", "event_max"}),
}


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """The terms of a price, checked when built.

    Amounts are minor units and may be sub-minor. A field the model does not read must keep its
    default (a per-unit price with a ``flat_amount`` is refused: that is ``flat_per_unit``). Tiered
    models need ascending tiers whose last, and only last, tier is open-ended; ``package`` needs
    ``package_size ≥ 1``. Raises InvalidPricing when the terms are inconsistent.
    """

    model: PricingModel
    unit_amount: Decimal = _ZERO
    flat_amount: Decimal = _ZERO
    tiers: tuple[Tier, ...] = ()
    package_size: int | None = None
    package_rounding: PackageRounding = PackageRounding.UP
    event_min: Decimal | None = None
    event_max: Decimal | None = None

    def __post_init__(self) -> None:
        try:
            model = PricingModel(self.model)
            rounding = PackageRounding(self.package_rounding)
        except ValueError as exc:
            raise InvalidPricing(str(exc)) from None
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "package_rounding", rounding)
        object.__setattr__(self, "unit_amount", _amount_field(self.unit_amount, "unit_amount"))
        object.__setattr__(self, "flat_amount", _amount_field(self.flat_amount, "flat_amount"))
        object.__setattr__(self, "tiers", tuple(self.tiers))
        for name in ("event_min", "event_max"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _amount_field(getattr(self, name), name))
        if self.event_min is not None and self.event_max is not None and self.event_min > self.event_max:
            raise InvalidPricing(f"event_min {self.event_min} exceeds event_max {self.event_max}")
        self._check_unused_fields()
        if model in _TIERED:
            self._check_tiers()
        if model is PricingModel.PACKAGE:
            size = self.package_size
            if isinstance(size, bool) or not isinstance(size, int):
                raise InvalidPricing("a package price needs an integer package_size")
            if size < 1:
                raise InvalidPricing(f"package_size must be at least 1, got {size}")

    def _check_unused_fields(self) -> None:
        used = _USES[self.model]
        set_fields = {
            "unit_amount": self.unit_amount != 0,
            "flat_amount": self.flat_amount != 0,
            "tiers": bool(self.tiers),
            "package_size": self.package_size is not None,
            "package_rounding": self.package_rounding is not PackageRounding.UP,
            "event_min": self.event_min is not None,
            "event_max": self.event_max is not None,
        }
        unused = sorted(name for name, is_set in set_fields.items() if is_set and name not in used)
        if unused:
            raise InvalidPricing(f"a {self.model} price does not use {', '.join(unused)}")

    def _check_tiers(self) -> None:
        if not self.tiers:
            raise InvalidPricing(f"a {self.model} price needs at least one tier")
        for tier in self.tiers:
            if not isinstance(tier, Tier):
                raise InvalidPricing(f"tiers must be Tier objects, got {type(tier).__name__}")
        *bounded, last = self.tiers
        if last.up_to is not None:
            raise InvalidPricing("the last tier must be open-ended (up_to=None)")
        previous = _ZERO
        for tier in bounded:
            if tier.up_to is None:
                raise InvalidPricing("only the last tier may be open-ended")
            if tier.up_to <= previous:
                raise InvalidPricing(f"tiers must ascend: up_to {tier.up_to} follows {previous}")
            previous = tier.up_to


def _quantity(quantity: object) -> Decimal:
    if isinstance(quantity, bool) or not isinstance(quantity, int | Decimal):
        raise InvalidQuantity(f"quantity must be a Decimal, got {type(quantity).__name__}")
    number = Decimal(quantity)
    if not number.is_finite():
        raise InvalidQuantity(f"quantity must be a finite number, got {number}")
    if number < 0:
        raise InvalidQuantity(f"quantity must not be negative, got {number}")
    return number


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> list[TierLine]:
    lines: list[TierLine] = []
    lower = _ZERO
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        lines.append((tier, units, units * tier.unit_amount + tier.flat_amount))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return lines


def _volume(tiers: tuple[Tier, ...], quantity: Decimal) -> list[TierLine]:
    if quantity == 0:
        return []
    tier = next(t for t in tiers if t.up_to is None or quantity <= t.up_to)
    return [(tier, quantity, quantity * tier.unit_amount + tier.flat_amount)]


def _breakdown(terms: PriceTerms, quantity: Decimal) -> list[TierLine]:
    if terms.model is PricingModel.GRADUATED:
        return _graduated(terms.tiers, quantity)
    return _volume(terms.tiers, quantity)


def _exact(terms: PriceTerms, quantity: Decimal) -> Decimal:
    model = terms.model
    if model is PricingModel.FLAT:
        return terms.flat_amount
    if model is PricingModel.PER_UNIT:
        return quantity * terms.unit_amount
    if model is PricingModel.FLAT_PER_UNIT:
        return terms.flat_amount + quantity * terms.unit_amount
    if model is PricingModel.PERCENTAGE:
        return _clamp(terms, quantity * terms.unit_amount / 100 + terms.flat_amount)
    if model is PricingModel.PACKAGE:
        size = Decimal(terms.package_size or 1)
        packages = quantity // size
        if terms.package_rounding is PackageRounding.UP and quantity % size != 0:
            packages += 1
        return packages * terms.unit_amount
    return sum((exact for _, _, exact in _breakdown(terms, quantity)), _ZERO)


def exact_amount(*, terms: PriceTerms, quantity: Decimal) -> Decimal:
    """Return the exact amount, in minor units and unrounded, that ``quantity`` costs under ``terms``.

    Raises InvalidQuantity for a negative or non-finite quantity, AmountOutOfRange when the exact
    figure needs more than 100 significant digits.
    """
    number = _quantity(quantity)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.traps[Inexact] = True
        try:
            return _exact(terms, number)
        except Inexact:
            raise AmountOutOfRange(f"the amount for quantity {number} cannot be computed exactly") from None


def amount(*, terms: PriceTerms, quantity: Decimal, currency: Currency) -> int:
    """Return what ``quantity`` costs under ``terms``, in minor units of ``currency``.

    The exact amount is rounded once, at the total, with :func:`round_to_minor` (half up). Raises
    InvalidQuantity for a negative quantity and AmountOutOfRange beyond ±10^15 minor units.
    """
    exact = exact_amount(terms=terms, quantity=quantity)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        rounded = round_to_minor(exact.scaleb(-currency.exponent), currency)
    if abs(rounded) > MAX_AMOUNT:
        raise AmountOutOfRange(f"amount {rounded} exceeds the limit of {MAX_AMOUNT} minor units")
    return rounded


def tier_breakdown(*, terms: PriceTerms, quantity: Decimal) -> list[TierLine]:
    """Return how a tiered amount is built: ``(tier, units, exact amount)`` for each tier reached.

    Graduated: one line per tier the quantity reaches, each with its own units and ``flat_amount``.
    Volume: one line, the tier the total falls in, with all units. A quantity of zero gives no lines.
    The exact amounts sum to :func:`exact_amount`. Raises ValueError for a non-tiered price and
    InvalidQuantity for a negative quantity.
    """
    if terms.model not in _TIERED:
        raise ValueError(f"a {terms.model} price has no tiers to break down")
    number = _quantity(quantity)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.traps[Inexact] = True
        try:
            return _breakdown(terms, number)
        except Inexact:
            raise AmountOutOfRange(f"the amount for quantity {number} cannot be computed exactly") from None


def grouped_amount(*, terms: PriceTerms, quantities: list[Decimal], currency: Currency) -> int:
    """Return what several groups cost when ``terms`` apply to each group's quantity on its own (a
    metric with a group-by dimension: tiers restart per region, per workspace, ...).

    The exact amounts of the groups are added, then rounded once. Raises like :func:`amount`.

    >>> from revflow.domain.money import Currency
    >>> tiers = (Tier(up_to=Decimal(10), unit_amount=Decimal(100)), Tier(up_to=None, unit_amount=Decimal(50)))
    >>> graduated = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)
    >>> grouped_amount(terms=graduated, quantities=[Decimal(12), Decimal(5)], currency=Currency.of("USD"))
    1600
    >>> amount(terms=graduated, quantity=Decimal(17), currency=Currency.of("USD"))
    1350
    """
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact = sum((exact_amount(terms=terms, quantity=q) for q in quantities), _ZERO)
        rounded = round_to_minor(exact.scaleb(-currency.exponent), currency)
    if abs(rounded) > MAX_AMOUNT:
        raise AmountOutOfRange(f"amount {rounded} exceeds the limit of {MAX_AMOUNT} minor units")
    return rounded


def _clamp(terms: PriceTerms, fee: Decimal) -> Decimal:
    if terms.event_min is not None and fee < terms.event_min:
        return terms.event_min
    if terms.event_max is not None and fee > terms.event_max:
        return terms.event_max
    return fee


def percentage_fee(*, terms: PriceTerms, value: Decimal) -> Decimal:
    """The exact fee (minor units) of one event whose amount property is ``value`` (minor units) under a
    ``percentage`` price: ``value × unit_amount / 100 + flat_amount``, kept between ``event_min`` and
    ``event_max``.

    >>> card = PriceTerms(model=PricingModel.PERCENTAGE, unit_amount=Decimal("2.9"), flat_amount=Decimal(30),
    ...                   event_min=Decimal(50), event_max=Decimal(500))
    >>> [percentage_fee(terms=card, value=Decimal(v)) for v in (100, 10000, 100000)]
    [Decimal('50'), Decimal('320.0'), Decimal('500')]
    """
    if terms.model is not PricingModel.PERCENTAGE:
        raise ValueError(f"a {terms.model} price has no per-event fee")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return _clamp(terms, value * terms.unit_amount / 100 + terms.flat_amount)


@dataclass(frozen=True, slots=True)
class PercentageSplit:
    """Fixed-point value bounds (value × 10^``scale``) that sort events by the clamp they hit: events
    with value ≤ ``low`` pay ``event_min``, those with value ≥ ``high`` (and above ``low``) pay
    ``event_max``, the others pay the percentage. ``None``: no such bound."""

    low: int | None
    high: int | None


def percentage_split(*, terms: PriceTerms, scale: int) -> PercentageSplit:
    """The bounds for events whose values are stored as integers × 10^``scale`` (exact, by Fraction)."""
    rate = Fraction(terms.unit_amount) / 100
    flat = Fraction(terms.flat_amount)
    factor = 10**scale
    if rate == 0:  # every event pays the same clamped flat fee: percentage_total handles it
        return PercentageSplit(low=None, high=None)
    low = None if terms.event_min is None else floor((Fraction(terms.event_min) - flat) / rate * factor)
    high = None if terms.event_max is None else ceil((Fraction(terms.event_max) - flat) / rate * factor)
    return PercentageSplit(low=low, high=high)


def percentage_total(
    *, terms: PriceTerms, events: int, low_events: int, high_events: int, middle_sum: Decimal
) -> Decimal:
    """The exact total fee of ``events`` events of which ``low_events`` pay ``event_min``,
    ``high_events`` pay ``event_max`` and the others, whose amounts add up to ``middle_sum`` (minor
    units), pay the percentage plus ``flat_amount``. Equals the sum of :func:`percentage_fee` over the
    events when they were sorted with :func:`percentage_split`.

    >>> card = PriceTerms(model=PricingModel.PERCENTAGE, unit_amount=Decimal("2.9"), flat_amount=Decimal(30),
    ...                   event_min=Decimal(50), event_max=Decimal(500))
    >>> percentage_total(terms=card, events=3, low_events=1, high_events=1, middle_sum=Decimal(10000))
    Decimal('870.0')
    """
    middle = events - low_events - high_events
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = middle_sum * terms.unit_amount / 100 + middle * terms.flat_amount
        if terms.unit_amount == 0:
            total = middle * _clamp(terms, terms.flat_amount)
        if low_events:
            total += low_events * (terms.event_min or _ZERO)
        if high_events:
            total += high_events * (terms.event_max or _ZERO)
        return total


def round_amount(exact: Decimal, currency: Currency) -> int:
    """Round an exact amount (minor units) once, like :func:`amount` does. Raises AmountOutOfRange."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        rounded = round_to_minor(exact.scaleb(-currency.exponent), currency)
    if abs(rounded) > MAX_AMOUNT:
        raise AmountOutOfRange(f"amount {rounded} exceeds the limit of {MAX_AMOUNT} minor units")
    return rounded

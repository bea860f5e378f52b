"""Usage metering rules: billable metrics, event values, filters and the arithmetic of aggregates.

Event values are stored as fixed-point integers, the decimal value × 10^6 (:data:`VALUE_SCALE`), so
that sums and comparisons are exact in SQL on SQLite and PostgreSQL alike. A value with more than six
decimal places, or beyond ±9,223,372 million, is refused rather than rounded.

>>> to_micros("12.5")
12500000
>>> to_micros(3)
3000000
>>> from_micros(1500000)
Decimal('1.5')
>>> to_micros("0.0000001")
Traceback (most recent call last):
...
revflow.domain.usage.InvalidValue: value 0.0000001 has more than 6 decimal places
>>> to_micros("ten")
Traceback (most recent call last):
...
revflow.domain.usage.InvalidValue: value 'ten' is not a number
>>> matches_filters({"region": ["eu"]}, {"region": "eu", "plan": "x"})
True
>>> matches_filters({"region": ["eu"]}, {"region": "us"})
False
>>> weighted_units(level_at_start=0, sum_value=2_000_000, sum_value_offset=2_000_000 * 1800, seconds=3600)
Decimal('1')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from typing import Any, Final

from revflow.domain.errors import InvalidInput

__all__ = [
    "MAX_MICROS",
    "VALUE_SCALE",
    "Aggregation",
    "InvalidValue",
    "ceil_hour",
    "floor_hour",
    "from_micros",
    "matches_filters",
    "project_units",
    "to_micros",
    "weighted_units",
]

VALUE_SCALE: Final = 6
MAX_MICROS: Final = 2**63 - 1
_HOUR = timedelta(hours=1)
#: weighted_sum units are value-hours, rounded half up to this many decimal places.
WEIGHTED_PLACES: Final = Decimal("0.000001")


class InvalidValue(InvalidInput):
    """An event's value is not a number usable by its metric."""

    code = "invalid_value"


class Aggregation(StrEnum):
    """How a metric turns the events of a period into units."""

    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    MIN = "min"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    WEIGHTED_SUM = "weighted_sum"

    @property
    def reads_value(self) -> bool:
        """Whether the aggregation reads a numeric property."""
        return self not in (Aggregation.COUNT, Aggregation.UNIQUE_COUNT)


def to_micros(value: object) -> int:
    """Return ``value`` (int, Decimal or decimal string; not bool, not float) × 10^6 as an int.

    Raises InvalidValue for a non-number, a non-finite number, more than 6 decimal places or a value
    outside the 64-bit range.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise InvalidValue(f"value {value!r} is not a number")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise InvalidValue(f"value {value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidValue(f"value {value!r} is not a number")
    with localcontext() as ctx:
        ctx.prec = 60
        scaled = number.scaleb(VALUE_SCALE)
    if scaled != scaled.to_integral_value():
        raise InvalidValue(f"value {format(number, 'f')} has more than {VALUE_SCALE} decimal places")
    micros = int(scaled)
    if abs(micros) > MAX_MICROS:
        raise InvalidValue(f"value {number} is out of range")
    return micros


def from_micros(micros: int) -> Decimal:
    """The decimal value of a fixed-point integer (exact)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(micros).scaleb(-VALUE_SCALE).normalize()


def matches_filters(filters: dict[str, Any], properties: dict[str, Any]) -> bool:
    """Whether ``properties`` pass ``filters``: each filtered property must hold one of its values
    (compared as text)."""
    for name, allowed in filters.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if name not in properties or str(properties[name]) not in {str(v) for v in values}:
            return False
    return True


def floor_hour(at: datetime) -> datetime:
    """The start of the UTC hour holding ``at``."""
    at = at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    """The first UTC hour boundary at or after ``at``."""
    floor = floor_hour(at)
    return floor if floor == at else floor + _HOUR


def weighted_units(*, level_at_start: int, sum_value: int, sum_value_offset: int, seconds: int) -> Decimal:
    """Value-hours of a gauge over a window of ``seconds``, from fixed-point sums.

    Events carry changes of the gauge (+5 GB, -2 GB). ``level_at_start`` is the gauge when the window
    opens (0 unless the metric carries over); ``sum_value`` the sum of the changes inside the window and
    ``sum_value_offset`` the sum of each change × the whole seconds from the window start to it. The
    integral is ``level × seconds + Σ v × (seconds - offset)``, in value-seconds × 10^6, returned in
    value-hours rounded half up to 6 decimal places.
    """
    integral = level_at_start * seconds + sum_value * seconds - sum_value_offset
    with localcontext() as ctx:
        ctx.prec = 60
        hours = Decimal(integral) / Decimal(3600 * 10**VALUE_SCALE)
        return hours.quantize(WEIGHTED_PLACES, rounding=ROUND_HALF_UP).normalize()


def project_units(
    *, aggregation: Aggregation, recurring: bool, units: Decimal, elapsed: int, total: int
) -> Decimal:
    """A forecast of a period's units from the ``units`` measured after ``elapsed`` of ``total``
    seconds: ``count`` and ``sum`` that reset each period grow linearly; every other aggregation (and
    carried-over metrics) are forecast at their current value (a weighted sum passed in is already
    measured to the period end)."""
    linear = aggregation in (Aggregation.COUNT, Aggregation.SUM) and not recurring
    if not linear or elapsed <= 0 or elapsed >= total:
        return units
    with localcontext() as ctx:
        ctx.prec = 60
        projected = units * Decimal(total) / Decimal(elapsed)
        return projected.quantize(WEIGHTED_PLACES, rounding=ROUND_HALF_UP).normalize()

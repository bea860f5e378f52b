"""Billing cycles: the boundaries of "every `count` intervals from an anchor" in a customer's time zone.

Rules, all computed on the anchor's wall clock in the customer's zone ``tz`` and then converted to UTC:

* Boundary ``n`` is always computed from the ORIGINAL anchor (anchor + n × count intervals), never from
  the previous boundary, so month-end clamping never drifts (Jan 31 → Feb 29 → Mar 31, not Mar 29).
* Months, quarters and years add calendar months and clamp the day to the month's end; days and weeks
  add calendar days. The anchor's local time of day is kept: local midnight stays local midnight across
  DST, so a period containing a DST change lasts an hour more or less in real time.
* An ambiguous local time (clocks going back) resolves to its first occurrence (``fold=0``). A local
  time that does not exist (clocks jumping forward over it) resolves to the first valid instant after
  the jump, i.e. the moment of the transition (02:30 on a 02:00 → 03:00 day becomes 03:00).
* ``day_of_month`` keeps a billing day above 28 when the anchor itself had to be clamped: an anchor of
  Feb 29 with ``day_of_month=31`` renews on Mar 31, without it on Mar 29.

>>> from datetime import datetime, UTC
>>> jan31 = datetime(2024, 1, 31, tzinfo=UTC)
>>> [shift(anchor=jan31, interval="month", count=1, n=n, tz="UTC").date().isoformat() for n in (1, 2, 3)]
['2024-02-29', '2024-03-31', '2024-04-30']
>>> la_march = datetime(2024, 3, 1, 8, tzinfo=UTC)  # 2024-03-01 00:00 in Los Angeles (PST)
>>> shift(anchor=la_march, interval=Interval.MONTH, count=1, n=1, tz="America/Los_Angeles").isoformat()
'2024-04-01T07:00:00+00:00'
>>> mar31 = datetime(2024, 3, 31, tzinfo=UTC)
>>> p = period_at(anchor=jan31, interval=Interval.MONTH, count=1, tz="UTC", at=mar31)
>>> p.start.date().isoformat(), p.end.date().isoformat()  # on a boundary: the new period
('2024-03-31', '2024-04-30')
>>> start = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
>>> day_of_month_anchor(start=start, day=1, tz="UTC").isoformat()
'2024-02-01T00:00:00+00:00'
>>> stub = first_period(start=start, day=1, tz="UTC")
>>> stub.start.isoformat(), stub.end.isoformat()
('2024-01-15T09:30:00+00:00', '2024-02-01T00:00:00+00:00')
>>> feb29 = day_of_month_anchor(start=datetime(2024, 2, 10, tzinfo=UTC), day=31, tz="UTC")
>>> feb29.date().isoformat()
'2024-02-29'
>>> shift(anchor=feb29, interval=Interval.MONTH, count=1, n=1, tz="UTC", day_of_month=31).date().isoformat()
'2024-03-31'
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from revflow.domain.period import Period

__all__ = [
    "Interval",
    "day_of_month_anchor",
    "first_period",
    "period_at",
    "shift",
]


class Interval(StrEnum):
    """The unit of a billing cycle (Stripe's ``recurring.interval`` plus ``quarter``)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_MONTHS: Final = {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.YEAR: 12}
_DAYS: Final = {Interval.DAY: 1, Interval.WEEK: 7}
_MICROSECOND: Final = timedelta(microseconds=1)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return instant.astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock reading of ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the UTC instant of the local wall time ``wall`` (naive) in ``zone``.

    Ambiguous times take their first occurrence (``fold=0``); times skipped by a forward jump take the
    first valid instant after the jump (the transition itself).
    """
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(instant, zone) == wall:
        return instant
    # ``wall`` falls in a gap. Reading it with the offset after the transition lands before the gap,
    # with the offset before it after the gap; the transition is the first instant in between whose
    # wall clock reads ``wall`` or later.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(instant, other), max(instant, other)
    if _wall(low, zone) >= wall:
        return low
    steps_low, steps_high = 0, (high - low) // _MICROSECOND
    while steps_high - steps_low > 1:
        middle = (steps_low + steps_high) // 2
        if _wall(low + middle * _MICROSECOND, zone) >= wall:
            steps_high = middle
        else:
            steps_low = middle
    return low + steps_high * _MICROSECOND


def _check_cycle(interval: Interval | str, count: int, day_of_month: int | None) -> Interval:
    unit = Interval(interval)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer of at least 1, got {count!r}")
    if day_of_month is not None:
        if unit not in _MONTHS:
            raise ValueError(f"day_of_month applies to monthly, quarterly and yearly cycles, not {unit}")
        if not 1 <= day_of_month <= 31:
            raise ValueError(f"day_of_month must be between 1 and 31, got {day_of_month}")
    return unit


class _Cycle:
    """An anchor, its cycle and its zone, checked once; boundary ``n`` on demand."""

    def __init__(
        self, *, anchor: datetime, interval: Interval | str, count: int, tz: str, day_of_month: int | None
    ):
        self.unit = _check_cycle(interval, count, day_of_month)
        self.count = count
        self.zone = _zone(tz)
        self.anchor = _utc(anchor, "anchor")
        self.wall = _wall(self.anchor, self.zone)
        self.day = self.wall.day if day_of_month is None else day_of_month
        if min(self.day, _days_in_month(self.wall.year, self.wall.month)) != self.wall.day:
            raise ValueError(
                f"anchor {self.wall.date().isoformat()} is not on billing day {day_of_month} in {tz}"
            )

    def boundary(self, n: int) -> datetime:
        if n < 0:
            raise ValueError(f"n must be at least 0, got {n}")
        if n == 0:
            return self.anchor
        steps = n * self.count
        if self.unit in _DAYS:
            return _resolve(self.wall + timedelta(days=steps * _DAYS[self.unit]), self.zone)
        year, month0 = divmod(self.wall.year * 12 + self.wall.month - 1 + steps * _MONTHS[self.unit], 12)
        day = min(self.day, _days_in_month(year, month0 + 1))
        return _resolve(self.wall.replace(year=year, month=month0 + 1, day=day), self.zone)

    def estimate(self, at: datetime) -> int:
        """A close guess of the index of the period containing ``at``, from the local calendar."""
        local = _wall(at, self.zone)
        if self.unit in _DAYS:
            elapsed = (local.date() - self.wall.date()).days // _DAYS[self.unit]
        else:
            months = (local.year - self.wall.year) * 12 + local.month - self.wall.month
            elapsed = months // _MONTHS[self.unit]
        return max(0, elapsed // self.count)


def shift(
    *,
    anchor: datetime,
    interval: Interval | str,
    count: int,
    n: int,
    tz: str,
    day_of_month: int | None = None,
) -> datetime:
    """Return boundary ``n`` (UTC) of the cycle "every ``count`` ``interval``s from ``anchor``" in ``tz``.

    ``n = 0`` is the anchor itself. Computed from the original anchor on the local calendar with the
    module's rules (month-end clamping, local time of day kept, DST gaps and folds resolved
    deterministically); ``day_of_month`` overrides the anchor's day for monthly and longer cycles.
    Strictly increasing in ``n`` except in zones that skipped a whole calendar day (Pacific/Apia,
    2011-12-30), where two daily boundaries may coincide. Raises ValueError for a naive anchor, an
    unknown zone, ``count < 1``, ``n < 0`` or an anchor that is not on ``day_of_month``.
    """
    cycle = _Cycle(anchor=anchor, interval=interval, count=count, tz=tz, day_of_month=day_of_month)
    return cycle.boundary(n)


def period_at(
    *,
    anchor: datetime,
    interval: Interval | str,
    count: int,
    tz: str,
    at: datetime,
    day_of_month: int | None = None,
) -> Period:
    """Return the billing period ``[shift(n), shift(n + 1))`` that contains ``at``.

    An instant exactly on a boundary belongs to the period that starts there (half-open periods). The
    index is estimated from the local calendar and corrected by a step or two, so the cost does not
    grow with the age of the subscription. Raises ValueError when ``at`` is before ``anchor`` or naive,
    and for the inputs :func:`shift` refuses.
    """
    cycle = _Cycle(anchor=anchor, interval=interval, count=count, tz=tz, day_of_month=day_of_month)
    instant = _utc(at, "at")
    if instant < cycle.anchor:
        raise ValueError(f"{instant.isoformat()} is before the anchor {cycle.anchor.isoformat()}")
    n = cycle.estimate(instant)
    while n > 0 and cycle.boundary(n) > instant:
        n -= 1
    while cycle.boundary(n + 1) <= instant:
        n += 1
    return Period(cycle.boundary(n), cycle.boundary(n + 1))


def day_of_month_anchor(*, start: datetime, day: int, tz: str) -> datetime:
    """Return the first local midnight on billing day ``day`` at or after ``start``, in UTC.

    ``day`` (1..31) is clamped to the month's end (31 → Feb 29 in 2024). A subscription started on
    2024-01-15 with billing day 1 gets 2024-02-01 00:00 local; one started exactly at local midnight on
    its billing day gets ``start`` itself. To keep renewing on a day above 28 after a clamped month, pass
    ``day_of_month=day`` to :func:`shift` and :func:`period_at`. Raises ValueError for a naive ``start``,
    an unknown zone or a day outside 1..31.
    """
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
        raise ValueError(f"day must be between 1 and 31, got {day!r}")
    zone = _zone(tz)
    instant = _utc(start, "start")
    local = _wall(instant, zone)
    year, month = local.year, local.month
    while True:
        candidate = _resolve(datetime(year, month, min(day, _days_in_month(year, month))), zone)
        if candidate >= instant:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def first_period(*, start: datetime, day: int, tz: str) -> Period | None:
    """Return the prorated stub period ``[start, first billing-day boundary)``.

    Returns None when ``start`` already is that boundary (the first period is a full one). Raises what
    :func:`day_of_month_anchor` raises.
    """
    boundary = day_of_month_anchor(start=start, day=day, tz=tz)
    if boundary == start:
        return None
    return Period(start, boundary)

"""Clocks. The domain never reads the time itself: services receive a :class:`Clock`.

>>> from datetime import datetime, UTC, timedelta
>>> clock = FrozenClock(datetime(2024, 1, 31, tzinfo=UTC))
>>> clock.now().isoformat()
'2024-01-31T00:00:00+00:00'
>>> clock.advance(timedelta(days=1)).now().date().isoformat()
'2024-02-01'
>>> SystemClock().now().tzinfo is UTC
True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock", "utc"]


def utc(instant: datetime) -> datetime:
    """Return ``instant`` in UTC; naive datetimes are taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


class Clock(Protocol):
    """Something that tells the current instant, timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, test clocks)."""

    def __init__(self, at: datetime):
        self._now = utc(at)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> FrozenClock:
        """Move forward by ``delta`` and return self; moving backwards raises ValueError."""
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        self._now += delta
        return self

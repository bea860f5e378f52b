"""Half-open time periods ``[start, end)`` over timezone-aware instants.

>>> from datetime import datetime, UTC
>>> jan = Period(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
>>> jan.contains(datetime(2024, 1, 31, 23, 59, tzinfo=UTC)), jan.contains(jan.end)
(True, False)
>>> jan.duration.days
31
>>> Period(jan.end, jan.start)
Traceback (most recent call last):
...
ValueError: period end must be after its start
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Period"]


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval of time; both ends are timezone-aware and stored in UTC.

    Converting to UTC matters: Python subtracts two datetimes sharing one zone by wall time, so a
    DST day in Los Angeles would otherwise last 24 hours instead of 23.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError("period end must be after its start")

    @property
    def duration(self) -> timedelta:
        """Length of the period."""
        return self.end - self.start

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` lies in ``[start, end)``."""
        return self.start <= instant < self.end

    def overlaps(self, other: Period) -> bool:
        """Whether the two periods share any instant."""
        return self.start < other.end and other.start < self.end

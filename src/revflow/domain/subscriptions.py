"""Subscription statuses, their allowed transitions, and the schedule of billing periods.

>>> ensure_transition("active", "paused")
>>> ensure_transition("canceled", "active")
Traceback (most recent call last):
...
revflow.domain.errors.InvalidTransition: cannot move a subscription from canceled to active
>>> from datetime import datetime, UTC
>>> s = Schedule(start=datetime(2024, 1, 31, tzinfo=UTC), interval="month", count=1, tz="UTC")
>>> [b.date().isoformat() for b in s.boundaries_after(s.start, limit=3)]
['2024-02-29', '2024-03-31', '2024-04-30']
>>> t = Schedule(start=datetime(2024, 1, 15, 9, tzinfo=UTC), interval="month", count=1, tz="UTC", day=1)
>>> p = t.period_at(t.start); p.start.isoformat(), p.end.isoformat()  # prorated stub to the 1st
('2024-01-15T09:00:00+00:00', '2024-02-01T00:00:00+00:00')
>>> t.period_at(p.end).end.date().isoformat()
'2024-03-01'
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from revflow.domain.cycles import Interval, day_of_month_anchor, period_at, shift
from revflow.domain.errors import InvalidTransition
from revflow.domain.period import Period

__all__ = ["TRANSITIONS", "Schedule", "SubscriptionStatus", "ensure_transition"]


@lru_cache(maxsize=65536)
def _period_at(schedule: Schedule, at: datetime) -> Period:
    return schedule._compute_period_at(at)


class SubscriptionStatus(StrEnum):
    """Stripe's subscription statuses, plus ``ended`` for a fixed term that ran out."""

    INCOMPLETE = "incomplete"  # created, not started yet (future start)
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELED = "canceled"
    ENDED = "ended"


_S = SubscriptionStatus

#: The only allowed moves of a subscription's status.
TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    _S.INCOMPLETE: frozenset({_S.TRIALING, _S.ACTIVE, _S.CANCELED}),
    _S.TRIALING: frozenset({_S.ACTIVE, _S.PAST_DUE, _S.PAUSED, _S.CANCELED}),
    _S.ACTIVE: frozenset({_S.PAST_DUE, _S.PAUSED, _S.CANCELED, _S.ENDED}),
    _S.PAST_DUE: frozenset({_S.ACTIVE, _S.PAUSED, _S.CANCELED, _S.ENDED}),
    _S.PAUSED: frozenset({_S.ACTIVE, _S.CANCELED}),
    _S.CANCELED: frozenset(),
    _S.ENDED: frozenset(),
}


def ensure_transition(current: SubscriptionStatus | str, target: SubscriptionStatus | str) -> None:
    """Return None if ``current → target`` is in :data:`TRANSITIONS`; raises InvalidTransition otherwise."""
    cur, tgt = SubscriptionStatus(current), SubscriptionStatus(target)
    if tgt not in TRANSITIONS[cur]:
        raise InvalidTransition(f"cannot move a subscription from {cur} to {tgt}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a subscription's periods start and end.

    Billing begins at ``trial_end`` when there is a trial, else at ``start``; before it, the trial is one
    period ``[start, trial_end)``. With ``day`` (1..31) the cycle renews at local midnight on that day and
    the time before the first such day is a prorated stub period; without it the cycle is the
    anniversary of the billing start, in the customer's zone ``tz``.
    """

    start: datetime
    interval: Interval | str
    count: int
    tz: str
    day: int | None = None
    trial_end: datetime | None = None

    @property
    def billing_start(self) -> datetime:
        """When paid periods begin (the trial's end, or the start)."""
        return self.trial_end if self.trial_end is not None and self.trial_end > self.start else self.start

    @property
    def anchor(self) -> datetime:
        """The first boundary of the regular cycle."""
        if self.day is None:
            return self.billing_start
        return day_of_month_anchor(start=self.billing_start, day=self.day, tz=self.tz)

    def in_trial(self, at: datetime) -> bool:
        return self.trial_end is not None and self.start <= at < self.trial_end

    def period_at(self, at: datetime) -> Period:
        """The period containing ``at`` (the trial, a stub, or a regular period). Raises ValueError
        before the start. Results are memoized: schedules are immutable values."""
        return _period_at(self, at)

    def _compute_period_at(self, at: datetime) -> Period:
        if at < self.start:
            raise ValueError("the subscription has not started at that time")
        if self.trial_end is not None and at < self.trial_end:
            return Period(self.start, self.trial_end)
        anchor = self.anchor
        if at < anchor:
            return Period(self.billing_start, anchor)
        return period_at(
            anchor=anchor, interval=self.interval, count=self.count, tz=self.tz, at=at, day_of_month=self.day
        )

    def basis(self, period: Period) -> Period:
        """The period a price's full amount is measured against when billing ``period``.

        It is the period itself, except for the stub before a billing-day anchor, which is measured
        against the full cycle ending at the anchor (Jan 15 → Feb 1 with day 1 owes 17/31 of a month).
        """
        if self.day is None or (self.trial_end is not None and period.end <= self.trial_end):
            return period
        anchor = self.anchor
        if period.end != anchor or period.start == anchor:
            return period
        months = {"month": 1, "quarter": 3, "year": 12}.get(str(self.interval))
        if months is None:
            return period
        zone = ZoneInfo(self.tz)
        local = anchor.astimezone(zone)
        total = local.year * 12 + (local.month - 1) - months * self.count
        year, month = divmod(total, 12)
        day = min(self.day, calendar.monthrange(year, month + 1)[1])
        start = datetime(year, month + 1, day, tzinfo=zone).astimezone(UTC)
        return Period(min(start, period.start), anchor)

    def boundaries_after(self, after: datetime, *, limit: int) -> list[datetime]:
        """The next ``limit`` period boundaries strictly after ``after``."""
        out: list[datetime] = []
        at = after
        while len(out) < limit:
            at = self.period_at(at).end
            out.append(at)
        return out

    def regular_boundary(self, n: int) -> datetime:
        """Boundary ``n`` of the regular cycle (0 is the anchor)."""
        return shift(
            anchor=self.anchor,
            interval=self.interval,
            count=self.count,
            n=n,
            tz=self.tz,
            day_of_month=self.day,
        )

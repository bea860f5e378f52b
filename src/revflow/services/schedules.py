"""Turn a stored subscription into the domain's period schedule (billing and quote matching both need it;
quote matching cannot import billing, which imports it)."""

from __future__ import annotations

from revflow.domain.subscriptions import Schedule
from revflow.storage.models import Subscription

__all__ = ["schedule_of"]


def schedule_of(sub: Subscription) -> Schedule:
    """The period schedule of ``sub``."""
    return Schedule(
        start=sub.start_at,
        interval=sub.interval,
        count=sub.interval_count,
        tz=sub.timezone,
        day=sub.billing_cycle_day,
        trial_end=sub.trial_end,
    )

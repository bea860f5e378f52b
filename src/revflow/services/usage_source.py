"""Where the billing engine gets metered quantities. Until usage metering lands, every usage price
meters zero units for every period (so usage prices bill nothing)."""

from __future__ import annotations

from decimal import Decimal

from revflow.domain.period import Period
from revflow.services.context import Ctx
from revflow.storage.models import Price, Subscription

__all__ = ["quantities"]


def quantities(ctx: Ctx, sub: Subscription, period: Period, prices: list[Price]) -> dict[str, Decimal]:
    """Units of each usage price of ``sub`` over ``period``: none recorded yet."""
    return {}

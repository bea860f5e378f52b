"""Real-time usage: what each usage price of a customer's subscriptions measures so far in the current
period, what that costs, and a forecast for the whole period.

It reads the same aggregation as the billing engine (:func:`usage_source.price_usage`), over the
events received for the current period so far (``[period start, period end)``; a ``weighted_sum``
gauge integrates to now): once the period closes with no more events, the invoice bills exactly the
``amount`` shown here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from revflow.domain.money import Currency
from revflow.domain.pricing import PricingModel, amount, grouped_amount, round_amount
from revflow.domain.subscriptions import SubscriptionStatus
from revflow.domain.usage import Aggregation, project_units
from revflow.services.billing import schedule_of
from revflow.services.context import Ctx
from revflow.services.price_terms import price_terms
from revflow.services.usage_source import PriceUsage, price_usage
from revflow.storage.models import Customer, Price, Subscription, TestClock

__all__ = ["SubscriptionUsage", "customer_now", "customer_usage"]

_CLOSED = (SubscriptionStatus.CANCELED.value, SubscriptionStatus.ENDED.value)


@dataclass(frozen=True, slots=True)
class SubscriptionUsage:
    subscription: Subscription
    start: datetime
    end: datetime
    lines: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription.id,
            "currency": self.subscription.currency,
            "period_start": self.start,
            "period_end": self.end,
            "amount": sum(li["amount"] for li in self.lines),
            "projected_amount": sum(li["projected_amount"] for li in self.lines),
            "lines": self.lines,
        }


def customer_now(ctx: Ctx, customer: Customer) -> datetime:
    """The customer's present: its test clock's time, or the real one."""
    if customer.test_clock_id is None:
        return ctx.now()
    return ctx.get(TestClock, customer.test_clock_id, label="test clock").frozen_time


def _projected(
    price: Price, used: PriceUsage, elapsed: int, total: int, whole: PriceUsage | None
) -> PriceUsage:
    """``used`` forecast to the period end (``whole``: a weighted sum measured to the period end)."""
    if used.metric is None:
        return used
    if whole is not None:
        return whole
    agg, recurring = Aggregation(used.metric.aggregation), used.metric.recurring
    groups = {
        g: project_units(aggregation=agg, recurring=recurring, units=u, elapsed=elapsed, total=total)
        for g, u in used.groups.items()
    }
    terms, currency = price_terms(price), Currency.of(price.currency)
    units = sum(groups.values(), Decimal(0))
    if terms.model is PricingModel.PERCENTAGE:  # fees accrue per event: forecast them like a sum
        fee = project_units(
            aggregation=Aggregation.SUM,
            recurring=False,
            units=Decimal(used.amount),
            elapsed=elapsed,
            total=total,
        )
        return PriceUsage(price.id, used.metric, units, round_amount(fee, currency), groups)
    if used.metric.group_by:
        cost = grouped_amount(terms=terms, quantities=list(groups.values()), currency=currency)
    else:
        cost = amount(terms=terms, quantity=units, currency=currency)
    return PriceUsage(price.id, used.metric, units, cost, groups)


def customer_usage(ctx: Ctx, customer_id: str) -> tuple[datetime, list[SubscriptionUsage]]:
    """The customer's present instant and, for each live subscription with usage prices, the current
    period's units, amount so far and projected amount per price. Raises NotFound."""
    customer = ctx.get(Customer, customer_id, label="customer")
    now = customer_now(ctx, customer)
    subs = ctx.session.scalars(
        select(Subscription)
        .where(
            Subscription.org_id == ctx.org_id,
            Subscription.customer_id == customer.id,
            Subscription.status.not_in(_CLOSED),
            Subscription.start_at <= now,
        )
        .order_by(Subscription.id)
    ).all()
    out: list[SubscriptionUsage] = []
    for sub in subs:
        live = [it.price_id for it in sub.items if it.bill_end is None or it.bill_end > now]
        prices = list(
            ctx.session.scalars(select(Price).where(Price.id.in_(live), Price.metric_code.is_not(None)))
        )
        if not prices:
            continue
        period = schedule_of(sub).period_at(now)
        # Every event received for the period so far, as the invoice will bill them (an event may be
        # stamped up to an hour ahead). Measured to the period end, the window is whole rollup hours:
        # the cost does not grow with the traffic of the current hour.
        whole = price_usage(ctx, sub=sub, prices=prices, start=period.start, end=period.end)
        weighted = [
            p
            for p in prices
            if (u := whole[p.id]).metric is not None and u.metric.aggregation == "weighted_sum"
        ]
        # a gauge integrates over time: what it used so far ends now
        used = {
            **whole,
            **(price_usage(ctx, sub=sub, prices=weighted, start=period.start, end=now) if weighted else {}),
        }
        elapsed = int((now - period.start).total_seconds())
        total = int((period.end - period.start).total_seconds())
        lines = []
        for price in prices:
            u = used[price.id]
            p = _projected(price, u, elapsed, total, whole[price.id] if price in weighted else None)
            lines.append(
                {
                    "price_id": price.id,
                    "metric_code": price.metric_code,
                    "aggregation": None if u.metric is None else u.metric.aggregation,
                    "units": u.units,
                    "amount": u.amount,
                    "projected_units": p.units,
                    "projected_amount": p.amount,
                    "groups": {g or "": v for g, v in sorted(u.groups.items())}
                    if u.metric and u.metric.group_by
                    else {},
                }
            )
        out.append(SubscriptionUsage(sub, period.start, period.end, lines))
    return now, out

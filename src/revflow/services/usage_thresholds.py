"""Usage thresholds per subscription: ``units`` of one metric or ``amount`` of all usage in the current
period. Crossing one emits ``usage.threshold_reached`` once per period; an ``amount`` threshold with
``invoice`` also bills the usage so far at once (progressive billing), and the period-end invoice bills
only the rest.

Thresholds are checked in the ingestion transaction, for the customers of the accepted events that
have thresholds at all (one indexed query per batch when none do). The threshold row is locked while
it is checked, so concurrent batches fire it once.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.services import billing
from revflow.services.context import Ctx
from revflow.services.pagination import Page, paginate
from revflow.services.recorder import record
from revflow.services.usage_live import customer_now
from revflow.services.usage_source import price_usage
from revflow.services.views_usage import UsageThresholdView
from revflow.storage.bulk import among
from revflow.storage.models import Customer, Price, Subscription
from revflow.storage.usage_models import UsageThreshold

__all__ = ["check_thresholds", "create_threshold", "list_thresholds"]


def create_threshold(
    ctx: Ctx,
    *,
    subscription_id: str,
    kind: str,
    value: Decimal,
    metric_code: str | None = None,
    invoice: bool = False,
    recurring: bool = False,
) -> UsageThreshold:
    """Create a threshold on the subscription. ``units`` needs ``metric_code``; ``invoice`` (progressive
    billing) is for ``amount`` thresholds, whose ``value`` is in minor units. Raises NotFound,
    InvalidInput."""
    sub = ctx.get(Subscription, subscription_id, label="subscription")
    if kind not in ("units", "amount"):
        raise InvalidInput(
            "kind must be units or amount", details=[{"field": "kind", "code": "invalid_kind"}]
        )
    if kind == "units" and not metric_code:
        raise InvalidInput(
            "a units threshold needs a metric_code", details=[{"field": "metric_code", "code": "required"}]
        )
    if kind == "amount" and metric_code:
        raise InvalidInput(
            "an amount threshold covers all usage prices; omit metric_code",
            details=[{"field": "metric_code", "code": "unused"}],
        )
    if invoice and kind != "amount":
        raise InvalidInput(
            "progressive billing needs an amount threshold", details=[{"field": "invoice", "code": "invalid"}]
        )
    threshold = UsageThreshold(
        id=new_id("uth"),
        org_id=ctx.org_id,
        subscription_id=sub.id,
        metric_code=metric_code,
        kind=kind,
        value=value,
        invoice=invoice,
        recurring=recurring,
        last_period_start=None,
        last_multiple=0,
        created_at=ctx.now(),
    )
    ctx.session.add(threshold)
    ctx.session.flush()
    record(
        ctx,
        action="usage_threshold.create",
        object_type="usage_threshold",
        object_id=threshold.id,
        changes={"value": {"before": None, "after": str(value)}},
        event_type="usage_threshold.created",
        data=UsageThresholdView.of(threshold).payload(),
    )
    return threshold


def list_thresholds(
    ctx: Ctx,
    *,
    subscription_id: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Page[UsageThreshold]:
    stmt = select(UsageThreshold).where(UsageThreshold.org_id == ctx.org_id)
    if subscription_id is not None:
        stmt = stmt.where(UsageThreshold.subscription_id == subscription_id)
    return paginate(
        ctx, stmt, UsageThreshold, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def check_thresholds(ctx: Ctx, customer_ids: set[str]) -> int:
    """Fire the thresholds of these customers' subscriptions that their current period crossed (once
    per period each); returns how many fired."""
    if not customer_ids:
        return 0
    rows = ctx.session.execute(
        select(UsageThreshold, Subscription)
        .join(Subscription, Subscription.id == UsageThreshold.subscription_id)
        .where(
            UsageThreshold.org_id == ctx.org_id, among(ctx.session, Subscription.customer_id, customer_ids)
        )
        .order_by(UsageThreshold.id)
        .with_for_update(of=UsageThreshold)
    ).all()
    fired = 0
    for threshold, sub in rows:
        if sub.next_billing_at is None:
            continue
        customer = ctx.get(Customer, sub.customer_id, label="customer")
        now = customer_now(ctx, customer)
        if now < sub.start_at:
            continue
        period = billing.schedule_of(sub).period_at(now)
        if threshold.last_period_start == period.start and not threshold.recurring:
            continue
        ids = [it.price_id for it in sub.items]
        prices = list(
            ctx.session.scalars(select(Price).where(Price.id.in_(ids), Price.metric_code.is_not(None)))
        )
        if threshold.kind == "units":
            prices = [p for p in prices if p.metric_code == threshold.metric_code]
        # every event received for the current period so far (events may be stamped up to an hour ahead)
        usage = price_usage(ctx, sub=sub, prices=prices, start=period.start, end=period.end)
        if threshold.kind == "units":
            observed = max((u.units for u in usage.values()), default=Decimal(0))
        else:
            observed = Decimal(sum(u.amount for u in usage.values()))
        done = 0
        if threshold.last_period_start == period.start:
            done = threshold.last_multiple if threshold.recurring else 1
        reached = (
            int(observed // threshold.value) if threshold.recurring else int(observed >= threshold.value)
        )
        if reached <= done:
            continue
        before = threshold.last_period_start
        threshold.last_period_start, threshold.last_multiple = period.start, reached
        for multiple in range(done + 1, reached + 1):  # each crossing once, in order
            fired += 1
            record(
                ctx,
                action="usage.threshold_reached",
                object_type="usage_threshold",
                object_id=threshold.id,
                changes={
                    "last_period_start": {
                        "before": None if before is None else before.isoformat(),
                        "after": period.start.isoformat(),
                    }
                },
                event_type="usage.threshold_reached",
                data={
                    **UsageThresholdView.of(threshold).payload(),
                    "customer_id": sub.customer_id,
                    "period_start": period.start.isoformat(),
                    "period_end": period.end.isoformat(),
                    "observed": format(observed, "f"),
                    "crossed": format(threshold.value * multiple, "f"),
                },
            )
        if threshold.invoice:
            billing.bill_usage_now(ctx, sub, at=now)
    return fired

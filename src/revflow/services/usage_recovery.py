"""Unmatched events become billable once their customer or metric exists; voided events leave the
rollups. Both rebuild the affected hourly rollups from the events themselves (in SQL)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, literal, select, update

from revflow.domain.usage import InvalidValue, floor_hour
from revflow.services.context import Ctx
from revflow.services.usage_ingest import MetricReader, resolve_externals
from revflow.storage.models import Customer, Subscription
from revflow.storage.usage_models import BillableMetric, UsageEvent, UsageRollup, UsageUniqueValue

__all__ = ["rebuild_buckets", "recover_customer", "recover_metric"]

_HOUR = timedelta(hours=1)
_CHUNK = 1000

Bucket = tuple[str, str, datetime]  # customer, metric code, hour


def rebuild_buckets(ctx: Ctx, buckets: Iterable[Bucket]) -> None:
    """Recompute the rollups and unique values of each (customer, metric, hour) from its billable
    events, under every rollup key of the customer (its own and its subscriptions', ADR 0033)."""
    s = ctx.session
    keys_of: dict[str, list[str]] = {}
    owner = func.coalesce(UsageEvent.subscription_id, UsageEvent.customer_id)
    for customer_id, metric_code, hour in sorted(set(buckets)):
        if customer_id not in keys_of:
            subs = s.scalars(
                select(Subscription.id).where(
                    Subscription.org_id == ctx.org_id, Subscription.customer_id == customer_id
                )
            )
            keys_of[customer_id] = [customer_id, *subs]
        keys = keys_of[customer_id]
        where = (
            UsageEvent.org_id == ctx.org_id,
            UsageEvent.customer_id == customer_id,
            UsageEvent.metric_code == metric_code,
            UsageEvent.status == "billable",
            UsageEvent.timestamp >= hour,
            UsageEvent.timestamp < hour + _HOUR,
        )
        s.execute(
            delete(UsageRollup).where(
                UsageRollup.org_id == ctx.org_id,
                UsageRollup.customer_id.in_(keys),
                UsageRollup.metric_code == metric_code,
                UsageRollup.bucket == hour,
            )
        )
        s.execute(
            delete(UsageUniqueValue).where(
                UsageUniqueValue.org_id == ctx.org_id,
                UsageUniqueValue.customer_id.in_(keys),
                UsageUniqueValue.metric_code == metric_code,
                UsageUniqueValue.bucket == hour,
            )
        )
        ranked = (
            select(
                owner.label("owner"),
                UsageEvent.group_key,
                UsageEvent.timestamp,
                UsageEvent.value,
                UsageEvent.id,
                func.row_number()
                .over(
                    partition_by=(owner, UsageEvent.group_key),
                    order_by=(UsageEvent.timestamp.desc(), UsageEvent.id.desc()),
                )
                .label("rank"),
            )
            .where(*where)
            .subquery()
        )
        latest = {
            (k, g): (at, v, i)
            for k, g, at, v, i in s.execute(
                select(
                    ranked.c.owner, ranked.c.group_key, ranked.c.timestamp, ranked.c.value, ranked.c.id
                ).where(ranked.c.rank == 1)
            )
        }
        rows = s.execute(
            select(
                owner,
                UsageEvent.group_key,
                func.count(),
                func.coalesce(func.sum(UsageEvent.value), 0),
                func.min(UsageEvent.value),
                func.max(UsageEvent.value),
            )
            .where(*where)
            .group_by(owner, UsageEvent.group_key)
            .order_by(owner, UsageEvent.group_key)
        ).all()
        if rows:
            s.execute(
                insert(UsageRollup),
                [
                    {
                        "org_id": ctx.org_id,
                        "customer_id": k,
                        "metric_code": metric_code,
                        "group_key": g,
                        "bucket": hour,
                        "shard": 0,
                        "events": n,
                        "total": int(total or 0),
                        "min_value": lo,
                        "max_value": hi,
                        "latest_at": latest[(k, g)][0],
                        "latest_value": latest[(k, g)][1],
                        "latest_id": latest[(k, g)][2],
                    }
                    for k, g, n, total, lo, hi in rows
                ],
            )
        uniques = (
            select(
                literal(ctx.org_id),
                owner,
                literal(metric_code),
                UsageEvent.group_key,
                literal(hour, UsageUniqueValue.bucket.type),
                UsageEvent.unique_value,
            )
            .where(*where, UsageEvent.unique_value.is_not(None))
            .distinct()
        )
        s.execute(
            insert(UsageUniqueValue).from_select(
                ["org_id", "customer_id", "metric_code", "group_key", "bucket", "value"], uniques
            )
        )


def recover_customer(ctx: Ctx, customer: Customer) -> int:
    """Attach the unmatched events that name one of ``customer``'s external ids to it; returns how
    many became billable."""
    externals = [e.external_id for e in customer.external_ids]
    if not externals:
        return 0
    owners = resolve_externals(ctx.session, ctx.org_id, externals)
    mine = [ext for ext, cid in owners.items() if cid == customer.id]
    if not mine:
        return 0
    where = (
        UsageEvent.org_id == ctx.org_id,
        UsageEvent.status == "unmatched",
        UsageEvent.reason == "unknown_customer",
        UsageEvent.external_customer_id.in_(mine),
    )
    hits = ctx.session.execute(select(UsageEvent.metric_code, UsageEvent.timestamp).where(*where)).all()
    if not hits:
        return 0
    ctx.session.execute(
        update(UsageEvent)
        .where(*where)
        .values(customer_id=customer.id, status="billable", reason=None)
        .execution_options(synchronize_session=False)
    )
    rebuild_buckets(ctx, {(customer.id, code, floor_hour(at)) for code, at in hits})
    return len(hits)


def recover_metric(ctx: Ctx, metric: BillableMetric) -> int:
    """Read the value of the unmatched events waiting for ``metric``'s code; those whose customer is
    known become billable (or filtered), the others wait for their customer. An event whose value the
    metric cannot read becomes ``invalid``. Returns how many became billable."""
    s = ctx.session
    billable = 0
    buckets: set[Bucket] = set()
    reader = MetricReader(metric)
    while True:
        events = s.scalars(  # properties are read exactly (storage.types.ExactJSON)
            select(UsageEvent)
            .where(
                UsageEvent.org_id == ctx.org_id,
                UsageEvent.status == "unmatched",
                UsageEvent.reason == "unknown_metric",
                UsageEvent.metric_code == metric.code,
            )
            .limit(_CHUNK)
        ).all()
        if not events:
            break
        externals = {
            e.external_customer_id for e in events if e.customer_id is None and e.external_customer_id
        }
        owners = resolve_externals(s, ctx.org_id, externals)
        for event in events:
            event.status, event.reason = "billable", None
            try:
                reader(event, event.properties)
            except InvalidValue:
                event.status, event.reason = "invalid", "invalid_value"
                continue
            if event.customer_id is None and event.external_customer_id:
                event.customer_id = owners.get(event.external_customer_id)
            if event.customer_id is None:
                event.status, event.reason = "unmatched", "unknown_customer"
            elif event.status == "billable":
                billable += 1
                buckets.add((event.customer_id, metric.code, floor_hour(event.timestamp)))
        s.flush()
    rebuild_buckets(ctx, buckets)
    return billable

"""Where the billing engine and the real-time usage view get metered quantities: SQL aggregation over
the hourly rollups, plus the events of the partial hours at a window's edges.

A window ``[start, end)`` reads the rollups of the whole UTC hours inside it and the events of the
partial hours at either edge (a period starting 14:23 reads events from 14:23 to 15:00), so the result
is exact for any boundary while the work stays proportional to the hours of the window, not to the
number of events. ``unique_count`` reads the per-hour distinct values the same way. ``weighted_sum``
reads the events of the window (gauges change rarely). A metric that carries over (``recurring``)
reads from the beginning of time. The invoice and ``GET /v1/customers/{id}/usage`` call the same code.

Usage belongs to a subscription, not to a customer (ADR 0033): an event that names a subscription
counts for it alone (its rollups are keyed by the subscription id); an event that names only the
customer counts for the customer's subscription that prices its metric at the event's instant, the
earliest started when several do (ties: the smaller id), and, between or before such subscriptions, for
the next one to start (so seats recorded before a subscription starts carry into it). A subscription's
usage is therefore read over *slices*: its own key over the window, and the customer's key over the
parts of the window it owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, false, func, or_, select, true, union
from sqlalchemy.orm import Session

from revflow.domain.money import Currency
from revflow.domain.period import Period
from revflow.domain.pricing import (
    PriceTerms,
    PricingModel,
    amount,
    grouped_amount,
    percentage_split,
    percentage_total,
    round_amount,
)
from revflow.domain.usage import VALUE_SCALE, Aggregation, ceil_hour, floor_hour, from_micros, weighted_units
from revflow.services.context import Ctx
from revflow.services.price_terms import price_terms
from revflow.storage.models import Price, Subscription, SubscriptionItem
from revflow.storage.usage_models import BillableMetric, UsageEvent, UsageRollup, UsageUniqueValue

__all__ = [
    "PriceUsage",
    "Slice",
    "measure",
    "owned_windows",
    "owner_at",
    "price_usage",
    "quantities",
    "slices_of",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PriceUsage:
    """A usage price's units over a window, per group, and what they cost (minor units)."""

    price_id: str
    metric: BillableMetric | None
    units: Decimal
    amount: int
    groups: dict[str, Decimal] = field(default_factory=dict)

    def details(self) -> dict[str, str]:
        """What an invoice line shows of it (its ``metadata``)."""
        if self.metric is None:
            return {}
        out: dict[str, str] = {
            "metric_code": self.metric.code,
            "aggregation": self.metric.aggregation,
            "units": format(self.units, "f"),
        }
        if self.metric.property:
            out["property"] = self.metric.property
        if self.metric.group_by:
            out["group_by"] = self.metric.group_by
            for g, u in sorted(self.groups.items()):
                out[f"group:{g}"] = format(u, "f")
        return out


@dataclass(frozen=True, slots=True)
class Slice:
    """Part of a subscription's usage: the events of ``customer_id`` under one rollup ``key`` in
    ``[start, end)`` (``start`` None: from the beginning). ``named``: the key is a subscription id and
    the events are those that name it; otherwise the key is the customer id and the events are those
    that name no subscription."""

    customer_id: str
    key: str
    named: bool
    start: datetime | None
    end: datetime


def _windows(start: datetime | None, end: datetime) -> tuple[datetime | None, datetime | None, list[Any]]:
    """(first rollup hour, end of rollup hours, edge intervals read from events). A None first hour is
    unbounded; a None end means no rollup hours at all."""
    hi = floor_hour(end)
    if start is None:
        return None, hi, [(hi, end)] if hi < end else []
    lo = ceil_hour(start)
    if lo >= hi:
        return None, None, [(start, end)]
    edges = []
    if start < lo:
        edges.append((start, lo))
    if hi < end:
        edges.append((hi, end))
    return lo, hi, edges


def _whose(sl: Slice) -> Any:
    return UsageEvent.subscription_id == sl.key if sl.named else UsageEvent.subscription_id.is_(None)


def _event_scope(org_id: str, sl: Slice, code: str, edges: list[Any]) -> list[Any]:
    return [
        UsageEvent.org_id == org_id,
        UsageEvent.customer_id == sl.customer_id,
        UsageEvent.metric_code == code,
        UsageEvent.status == "billable",
        _whose(sl),
        or_(*[and_(UsageEvent.timestamp >= a, UsageEvent.timestamp < b) for a, b in edges]),
    ]


def _events_in(org_id: str, slices: list[Slice], code: str) -> list[Any]:
    """Billable events of ``code`` in any of ``slices`` (whole windows, read from the events)."""
    return [
        UsageEvent.org_id == org_id,
        UsageEvent.customer_id == slices[0].customer_id,
        UsageEvent.metric_code == code,
        UsageEvent.status == "billable",
        or_(
            *[
                and_(
                    _whose(sl),
                    UsageEvent.timestamp < sl.end,
                    true() if sl.start is None else UsageEvent.timestamp >= sl.start,
                )
                for sl in slices
            ]
        ),
    ]


def _rollup_scope(org_id: str, key: str, code: str, lo: datetime | None, hi: datetime) -> list[Any]:
    scope = [
        UsageRollup.org_id == org_id,
        UsageRollup.customer_id == key,
        UsageRollup.metric_code == code,
        UsageRollup.bucket < hi,
    ]
    if lo is not None:
        scope.append(UsageRollup.bucket >= lo)
    return scope


def _stats(
    s: Session, org_id: str, slices: list[Slice], code: str, *, with_latest: bool = True
) -> dict[str, list[Any]]:
    """Per group: [events, total, min, max, (latest_at, latest_value)] over the slices. The latest value
    (two ranking queries per slice) is read only ``with_latest``; otherwise it stays None."""
    out: dict[str, list[Any]] = {}

    def merge(group: str, n: int, total: Any, mn: Any, mx: Any) -> None:
        row = out.setdefault(group, [0, 0, None, None, None])
        row[0] += int(n or 0)
        row[1] += int(total or 0)
        if mn is not None:
            row[2] = int(mn) if row[2] is None else min(row[2], int(mn))
        if mx is not None:
            row[3] = int(mx) if row[3] is None else max(row[3], int(mx))

    def latest(group: str, at: datetime | None, value: Any, ident: Any) -> None:
        row = out.setdefault(group, [0, 0, None, None, None])
        if at is not None and (row[4] is None or (at, ident or "") >= (row[4][0], row[4][2])):
            row[4] = (at, None if value is None else int(value), ident or "")

    for sl in slices:
        lo, hi, edges = _windows(sl.start, sl.end)
        if hi is not None:
            scope = _rollup_scope(org_id, sl.key, code, lo, hi)
            for g, n, total, mn, mx in s.execute(
                select(
                    UsageRollup.group_key,
                    func.sum(UsageRollup.events),
                    func.sum(UsageRollup.total),
                    func.min(UsageRollup.min_value),
                    func.max(UsageRollup.max_value),
                )
                .where(*scope)
                .group_by(UsageRollup.group_key)
            ):
                merge(g, n, total, mn, mx)
        if hi is not None and with_latest:
            ranked = (
                select(
                    UsageRollup.group_key,
                    UsageRollup.latest_at,
                    UsageRollup.latest_value,
                    UsageRollup.latest_id,
                    func.row_number()
                    .over(
                        partition_by=UsageRollup.group_key,
                        order_by=(UsageRollup.latest_at.desc(), UsageRollup.latest_id.desc()),
                    )
                    .label("rank"),
                )
                .where(*scope)
                .subquery()
            )
            for g, at, value, ident in s.execute(
                select(
                    ranked.c.group_key, ranked.c.latest_at, ranked.c.latest_value, ranked.c.latest_id
                ).where(ranked.c.rank == 1)
            ):
                latest(g, at, value, ident)
        if edges:
            scope = _event_scope(org_id, sl, code, edges)
            for g, count, sum_, low, high in s.execute(
                select(
                    UsageEvent.group_key,
                    func.count(),
                    func.sum(UsageEvent.value),
                    func.min(UsageEvent.value),
                    func.max(UsageEvent.value),
                )
                .where(*scope)
                .group_by(UsageEvent.group_key)
            ):
                merge(g, count, sum_, low, high)
        if edges and with_latest:
            ranked_events = (
                select(
                    UsageEvent.group_key,
                    UsageEvent.timestamp,
                    UsageEvent.value,
                    UsageEvent.id,
                    func.row_number()
                    .over(
                        partition_by=UsageEvent.group_key,
                        order_by=(UsageEvent.timestamp.desc(), UsageEvent.id.desc()),
                    )
                    .label("rank"),
                )
                .where(*scope)
                .subquery()
            )
            for g, at, value, ident in s.execute(
                select(
                    ranked_events.c.group_key,
                    ranked_events.c.timestamp,
                    ranked_events.c.value,
                    ranked_events.c.id,
                ).where(ranked_events.c.rank == 1)
            ):
                latest(g, at, value, ident)
    return out


def _unique(s: Session, org_id: str, slices: list[Slice], code: str) -> dict[str, Decimal]:
    parts: list[Any] = []
    for sl in slices:
        lo, hi, edges = _windows(sl.start, sl.end)
        if hi is not None:
            scope = [
                UsageUniqueValue.org_id == org_id,
                UsageUniqueValue.customer_id == sl.key,
                UsageUniqueValue.metric_code == code,
                UsageUniqueValue.bucket < hi,
            ]
            if lo is not None:
                scope.append(UsageUniqueValue.bucket >= lo)
            parts.append(select(UsageUniqueValue.group_key, UsageUniqueValue.value.label("v")).where(*scope))
        if edges:
            parts.append(
                select(UsageEvent.group_key, UsageEvent.unique_value.label("v")).where(
                    *_event_scope(org_id, sl, code, edges), UsageEvent.unique_value.is_not(None)
                )
            )
    if not parts:
        return {}
    both = union(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    rows = s.execute(select(both.c.group_key, func.count()).group_by(both.c.group_key))
    return {g: Decimal(n) for g, n in rows}


def _epoch(s: Session) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", UsageEvent.timestamp)), BigInteger)
    return cast(func.strftime("%s", UsageEvent.timestamp), Integer)


def _clip(slices: list[Slice], start: datetime | None, end: datetime) -> list[Slice]:
    out = []
    for sl in slices:
        lo = sl.start if start is None else (start if sl.start is None else max(sl.start, start))
        hi = min(sl.end, end)
        if lo is None or lo < hi:
            out.append(Slice(sl.customer_id, sl.key, sl.named, lo, hi))
    return out


def _weighted(
    s: Session, org_id: str, slices: list[Slice], metric: BillableMetric, start: datetime, end: datetime
) -> dict[str, Decimal]:
    first, last = int(start.timestamp()), int(end.timestamp())
    levels: dict[str, int] = {}
    if metric.recurring:
        before = _clip(slices, None, start)
        levels = (
            {g: row[1] for g, row in _stats(s, org_id, before, metric.code, with_latest=False).items()}
            if before
            else {}
        )
    inside = _clip(slices, start, end)
    sums: dict[str, tuple[int, int]] = {}
    if inside:
        rows = s.execute(
            select(
                UsageEvent.group_key,
                func.sum(UsageEvent.value),
                func.sum(UsageEvent.value * (_epoch(s) - first)),
            )
            .where(*_events_in(org_id, inside, metric.code))
            .group_by(UsageEvent.group_key)
        )
        sums = {g: (int(total or 0), int(offset or 0)) for g, total, offset in rows}
    return {
        g: weighted_units(
            level_at_start=levels.get(g, 0),
            sum_value=sums.get(g, (0, 0))[0],
            sum_value_offset=sums.get(g, (0, 0))[1],
            seconds=last - first,
        )
        for g in set(levels) | set(sums)
    }


def measure(
    session: Session,
    *,
    org_id: str,
    slices: list[Slice],
    metric: BillableMetric,
    start: datetime,
    end: datetime,
) -> dict[str, Decimal]:
    """Units of ``metric`` per group (``""`` without a group-by) over the subscription's ``slices`` (see
    :func:`slices_of`) for the window ``[start, end)`` (from the beginning of time for a carried-over
    metric; a weighted sum's level carries over instead). Never negative."""
    agg = Aggregation(metric.aggregation)
    if agg is Aggregation.WEIGHTED_SUM:
        units = _weighted(session, org_id, slices, metric, start, end)
    else:
        window = _clip(slices, None if metric.recurring else start, end)
        if agg is Aggregation.UNIQUE_COUNT:
            units = _unique(session, org_id, window, metric.code)
        else:
            stats = _stats(session, org_id, window, metric.code, with_latest=agg is Aggregation.LATEST)
            units = {g: _pick(agg, row) for g, row in stats.items()}
    return {g: max(u, _ZERO) for g, u in units.items()}


def _pick(agg: Aggregation, row: list[Any]) -> Decimal:
    n, total, mn, mx, latest = row
    if agg is Aggregation.COUNT:
        return Decimal(n)
    if agg is Aggregation.SUM:
        return from_micros(total)
    if agg is Aggregation.MIN:
        return _ZERO if mn is None else from_micros(mn)
    if agg is Aggregation.MAX:
        return _ZERO if mx is None else from_micros(mx)
    return _ZERO if latest is None or latest[1] is None else from_micros(latest[1])


def _percentage(
    s: Session,
    org_id: str,
    slices: list[Slice],
    metric: BillableMetric,
    terms: PriceTerms,
    start: datetime,
    end: datetime,
) -> tuple[dict[str, Decimal], Decimal]:
    """Units per group and the exact fee of a ``percentage`` price: the window's events sorted in SQL by
    the clamp they hit (min, max or the percentage), then priced by :func:`percentage_total`."""
    inside = _clip(slices, start, end)
    if not inside:
        return {}, _ZERO
    split = percentage_split(terms=terms, scale=VALUE_SCALE)
    value = UsageEvent.value
    low = value <= split.low if split.low is not None else false()
    high = and_(~low, value >= split.high) if split.high is not None else false()
    rows = s.execute(
        select(
            UsageEvent.group_key,
            func.count(),
            func.sum(case((low, 1), else_=0)),
            func.sum(case((high, 1), else_=0)),
            func.sum(case((or_(low, high), 0), else_=func.coalesce(value, 0))),
            func.sum(value),
        )
        .where(*_events_in(org_id, inside, metric.code))
        .group_by(UsageEvent.group_key)
    )
    units: dict[str, Decimal] = {}
    fee = _ZERO
    for g, n, n_low, n_high, middle, total in rows:
        units[g] = max(from_micros(int(total or 0)), _ZERO)
        fee += percentage_total(
            terms=terms,
            events=int(n),
            low_events=int(n_low or 0),
            high_events=int(n_high or 0),
            middle_sum=from_micros(int(middle or 0)),
        )
    return units, fee


# --- assignment of customer-level events to subscriptions (ADR 0033) ---------------------------------

_Spans = dict[str, list[tuple[datetime, datetime | None]]]


def _pricing_spans(ctx: Ctx, customer_id: str, code: str) -> tuple[_Spans, dict[str, tuple[datetime, str]]]:
    """For each subscription of the customer that prices ``code``: the spans ``[start, end)`` (None:
    open) of its items with such a price, cut at the subscription's end; and its (start, id) rank."""
    rows = ctx.session.execute(
        select(
            Subscription.id,
            Subscription.start_at,
            Subscription.ended_at,
            SubscriptionItem.start_at,
            SubscriptionItem.end_at,
        )
        .join(SubscriptionItem, SubscriptionItem.subscription_id == Subscription.id)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .where(
            Subscription.org_id == ctx.org_id,
            Subscription.customer_id == customer_id,
            Price.metric_code == code,
        )
    ).all()
    spans: _Spans = {}
    rank: dict[str, tuple[datetime, str]] = {}
    for sid, sub_start, ended, a, b in rows:
        if ended is not None:
            b = ended if b is None else min(b, ended)
        if b is not None and b <= a:
            continue
        spans.setdefault(sid, []).append((a, b))
        rank[sid] = (sub_start, sid)
    return spans, rank


def _owner_map(
    spans: _Spans, rank: dict[str, tuple[datetime, str]]
) -> list[tuple[datetime | None, str | None]]:
    """The owner of customer-level events as a step function: ``[(from, owner)]`` in time order, the
    first ``from`` being None (the beginning of time). Owner at t: the earliest-started subscription
    pricing the metric at t; when none does, the next to start pricing it; after the last, nobody."""
    points = sorted({p for ss in spans.values() for a, b in ss for p in (a, b) if p is not None})
    steps: list[tuple[datetime | None, str | None]] = []
    for probe in [None, *points]:
        active = [
            sid
            for sid, ss in spans.items()
            if probe is not None and any(a <= probe and (b is None or probe < b) for a, b in ss)
        ]
        if active:
            owner: str | None = min(active, key=lambda sid: rank[sid])
        else:
            later = [(a, rank[sid]) for sid, ss in spans.items() for a, _ in ss if probe is None or a > probe]
            owner = min(later)[1][1] if later else None
        if not steps or steps[-1][1] != owner:
            steps.append((probe, owner))
    return steps


def owned_windows(
    ctx: Ctx, *, customer_id: str, subscription_id: str, code: str
) -> list[tuple[datetime | None, datetime | None]]:
    """The spans ``[from, to)`` (None: unbounded) in which the customer's events of ``code`` that name no
    subscription count for ``subscription_id``."""
    steps = _owner_map(*_pricing_spans(ctx, customer_id, code))
    out: list[tuple[datetime | None, datetime | None]] = []
    for i, (at, owner) in enumerate(steps):
        if owner == subscription_id:
            out.append((at, steps[i + 1][0] if i + 1 < len(steps) else None))
    return out


def owner_at(ctx: Ctx, *, customer_id: str, code: str, at: datetime) -> str | None:
    """The subscription an event of ``code`` at ``at`` naming only the customer counts for, if any."""
    owner: str | None = None
    for start, sid in _owner_map(*_pricing_spans(ctx, customer_id, code)):
        if start is None or start <= at:
            owner = sid
    return owner


def slices_of(ctx: Ctx, sub: Subscription, code: str, end: datetime) -> list[Slice]:
    """What counts for ``sub`` of metric ``code`` before ``end``: the events that name it, and the
    customer's events that name no subscription in the spans ``sub`` owns."""
    out = [Slice(sub.customer_id, sub.id, True, None, end)]
    for a, b in owned_windows(ctx, customer_id=sub.customer_id, subscription_id=sub.id, code=code):
        hi = end if b is None else min(b, end)
        if a is None or a < hi:
            out.append(Slice(sub.customer_id, sub.customer_id, False, a, hi))
    return out


def _metrics(ctx: Ctx, codes: set[str]) -> dict[str, BillableMetric]:
    if not codes:
        return {}
    stmt = select(BillableMetric).where(BillableMetric.org_id == ctx.org_id, BillableMetric.code.in_(codes))
    return {m.code: m for m in ctx.session.scalars(stmt)}


def price_usage(
    ctx: Ctx, *, sub: Subscription, prices: list[Price], start: datetime, end: datetime
) -> dict[str, PriceUsage]:
    """Units and amount of each usage price over ``[start, end)`` for the subscription (the events
    assigned to it, see the module docstring). A price whose metric does not exist (yet) meters zero. A
    metric with a group-by prices each group on its own."""
    metrics = _metrics(ctx, {p.metric_code for p in prices if p.metric_code})
    cache: dict[str, dict[str, Decimal]] = {}
    slices: dict[str, list[Slice]] = {}
    out: dict[str, PriceUsage] = {}
    for price in prices:
        metric = metrics.get(price.metric_code or "")
        if metric is None:
            out[price.id] = PriceUsage(price.id, None, _ZERO, 0)
            continue
        if metric.code not in slices:
            slices[metric.code] = slices_of(ctx, sub, metric.code, end)
        mine = slices[metric.code]
        terms = price_terms(price)
        currency = Currency.of(price.currency)
        if terms.model is PricingModel.PERCENTAGE:
            groups, fee = _percentage(ctx.session, ctx.org_id, mine, metric, terms, start, end)
            out[price.id] = PriceUsage(
                price.id, metric, sum(groups.values(), _ZERO), round_amount(fee, currency), groups
            )
            continue
        if metric.code not in cache:
            cache[metric.code] = measure(
                ctx.session, org_id=ctx.org_id, slices=mine, metric=metric, start=start, end=end
            )
        groups = cache[metric.code]
        units = sum(groups.values(), _ZERO)
        if metric.group_by:
            cost = grouped_amount(terms=terms, quantities=list(groups.values()), currency=currency)
        else:
            cost = amount(terms=terms, quantity=units, currency=currency)
        out[price.id] = PriceUsage(price.id, metric, units, cost, groups)
    return out


def quantities(ctx: Ctx, sub: Subscription, period: Period, prices: list[Price]) -> dict[str, Decimal]:
    """Units of each usage price of ``sub`` over ``period``."""
    usage = price_usage(ctx, sub=sub, prices=prices, start=period.start, end=period.end)
    return {pid: u.units for pid, u in usage.items()}

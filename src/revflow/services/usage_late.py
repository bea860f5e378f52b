"""What ingestion does after storing billable events, beyond the rollups (ADR 0033, 0034):

- **late events**: an event whose subscription already billed the period holding it (the billing engine
  moved past that period, or the subscription ended and its last period was billed) is recorded in
  ``usage_late_events`` and answered ``accepted`` with ``warning: "period_invoiced"``. The
  subscription's next billing point re-examines that period and bills the difference on its invoice,
  as a usage line whose service period is the earlier one (:func:`revflow.services.billing.lines_at`).
- **thresholds** (:mod:`revflow.services.usage_thresholds`);
- **usage billed in advance**: usage prices with ``billing_timing: "in_advance"`` are invoiced at once,
  one invoice per ingestion request and subscription, for what the current period owes beyond what
  was already billed (:func:`revflow.services.billing.bill_usage_now`).

The common case (no late event, no threshold, no in-advance price) costs one small indexed query per
request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import Select, bindparam, select

from revflow.services import billing
from revflow.services.context import Ctx
from revflow.services.usage_live import customer_now
from revflow.services.usage_source import owner_at
from revflow.services.usage_thresholds import check_thresholds
from revflow.storage.bulk import among, among_param, per_dialect
from revflow.storage.models import Customer, InvoiceLineItem, Price, Subscription, SubscriptionItem
from revflow.storage.usage_models import UsageLateEvent, UsageThreshold

__all__ = ["PERIOD_INVOICED", "after_ingest", "billed_through"]

PERIOD_INVOICED = "period_invoiced"


class _Periods(Protocol):
    """What :func:`billed_through` reads of a subscription: the ORM object or a row of those columns."""

    @property
    def start_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def next_billing_at(self) -> datetime | None: ...
    @property
    def current_period_start(self) -> datetime | None: ...


#: The columns of a subscription that ingestion reads (a row of them, not the ORM object: no identity map,
#: no relationship state, for up to one subscription per customer of a 1,000-event batch).
_COLUMNS: Final = (
    Subscription.id,
    Subscription.customer_id,
    Subscription.start_at,
    Subscription.ended_at,
    Subscription.next_billing_at,
    Subscription.current_period_start,
)


def billed_through(sub: _Periods) -> datetime | None:
    """The instant before which every period of ``sub`` was billed in full (its usage included), or
    None when no period was."""
    if sub.ended_at is not None and sub.next_billing_at is None:
        return sub.ended_at
    start = sub.current_period_start
    if start is None or start <= sub.start_at:
        return None
    return start


@per_dialect
def _subscriptions(dialect: str) -> Select[*tuple[Any, ...]]:
    """The customers' subscriptions (:data:`_COLUMNS`), with whether each has a threshold or a usage price
    billed in advance."""
    has_threshold = (
        select(UsageThreshold.id).where(UsageThreshold.subscription_id == Subscription.id).exists()
    )
    bills_in_advance = (
        select(SubscriptionItem.id)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .where(
            SubscriptionItem.subscription_id == Subscription.id,
            Price.metric_code.is_not(None),
            Price.billing_timing == "in_advance",
        )
        .exists()
    )
    return select(*_COLUMNS, has_threshold.label("threshold"), bills_in_advance.label("advance")).where(
        Subscription.org_id == bindparam("org"), among_param(dialect, Subscription.customer_id, "customers")
    )


def after_ingest(ctx: Ctx, events: Sequence[Any]) -> dict[str, str]:
    """Record the late ones among the billable ``events`` just stored, check thresholds and bill usage
    in advance. Returns a warning code per late event id."""
    customers = {e.customer_id for e in events if e.customer_id is not None}
    if not customers:
        return {}
    # one query: the subscriptions, and whether any has a threshold or a usage price billed in advance
    # (the common case has neither, and then the two checks below cost nothing)
    rows = ctx.session.execute(
        _subscriptions(ctx.session), {"org": ctx.org_id, "customers": list(customers)}
    ).all()
    warnings = _record_late(ctx, events, rows)
    with_thresholds = {row.customer_id for row in rows if row.threshold}
    if with_thresholds:
        check_thresholds(ctx, with_thresholds)
    if any(row.advance for row in rows):
        _bill_in_advance(ctx, customers)
    return warnings


def _record_late(ctx: Ctx, events: Sequence[Any], subs: Sequence[Any]) -> dict[str, str]:
    through: dict[str, datetime] = {}
    latest: dict[str, datetime] = {}
    for s in subs:
        at = billed_through(s)
        if at is not None:
            through[s.id] = at
            latest[s.customer_id] = max(latest.get(s.customer_id, at), at)
    owners: dict[tuple[str, str, datetime], str | None] = {}
    late: list[tuple[Any, str]] = []
    for e in events:
        if e.customer_id not in latest or e.timestamp >= latest[e.customer_id]:
            continue  # the common case: newer than anything billed for the customer
        owner = e.subscription_id
        if owner is None:
            key = (e.customer_id, e.metric_code, e.timestamp)
            if key not in owners:
                owners[key] = owner_at(ctx, customer_id=e.customer_id, code=e.metric_code, at=e.timestamp)
            owner = owners[key]
        if owner is not None and owner in through and e.timestamp < through[owner]:
            late.append((e, owner))
    if not late:
        return {}
    now = ctx.now()
    for e, owner in late:
        invoice_id = ctx.session.scalar(
            select(InvoiceLineItem.invoice_id)
            .join(Price, Price.id == InvoiceLineItem.price_id)
            .where(
                InvoiceLineItem.org_id == ctx.org_id,
                InvoiceLineItem.subscription_id == owner,
                InvoiceLineItem.kind == "usage",
                Price.metric_code == e.metric_code,
                InvoiceLineItem.period_start <= e.timestamp,
                InvoiceLineItem.period_end > e.timestamp,
            )
            .order_by(InvoiceLineItem.invoice_id.desc())
            .limit(1)
        )
        ctx.session.add(
            UsageLateEvent(
                org_id=ctx.org_id,
                event_id=e.id,
                timestamp=e.timestamp,
                subscription_id=owner,
                metric_code=e.metric_code,
                invoice_id=invoice_id,
                settled_invoice_id=None,
                settled_at=None,
                created_at=now,
            )
        )
    ctx.session.flush()
    return {e.id: PERIOD_INVOICED for e, _ in late}


def _bill_in_advance(ctx: Ctx, customers: set[str]) -> None:
    rows = ctx.session.execute(
        select(SubscriptionItem.subscription_id, Price.id)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .join(Subscription, Subscription.id == SubscriptionItem.subscription_id)
        .where(
            Subscription.org_id == ctx.org_id,
            among(ctx.session, Subscription.customer_id, customers),
            Subscription.next_billing_at.is_not(None),
            Price.metric_code.is_not(None),
            Price.billing_timing == "in_advance",
        )
        .order_by(SubscriptionItem.subscription_id)
    ).all()
    wanted: dict[str, set[str]] = {}
    for sid, pid in rows:
        wanted.setdefault(sid, set()).add(pid)
    for sid, price_ids in wanted.items():
        sub = ctx.get(Subscription, sid, label="subscription")
        customer = ctx.get(Customer, sub.customer_id, label="customer")
        now = customer_now(ctx, customer)
        if now < sub.start_at:
            continue
        billing.bill_usage_now(ctx, sub, at=now, reason="usage_in_advance", price_ids=price_ids)

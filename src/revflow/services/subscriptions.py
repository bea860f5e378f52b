"""Subscriptions: create, change mid-cycle, cancel, pause, resume, reactivate, migrate plan versions.

A subscription's prices live on a timeline of items (segments). Changes close the current segments and
open new ones; the billing engine bills each period by recomputing what the timeline owes and billing
the difference. ``proration_behavior`` decides where the new segments start billing:

* ``create_prorations``: at the change; the credit and charge wait for the next invoice.
* ``always_invoice``: at the change, and the difference is invoiced at once.
* ``none``: at the end of the current period (no credit, no charge for the rest of this period).

Changes take effect now for upgrades and at the period end for downgrades unless ``effective`` says
otherwise. Usage charges and one-time fees are never prorated.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from revflow.domain.cycles import shift
from revflow.domain.errors import Conflict, InvalidInput, NotFound
from revflow.domain.ids import new_id
from revflow.domain.money import CurrencyMismatch
from revflow.domain.pricing import amount as price_amount
from revflow.domain.subscriptions import SubscriptionStatus, ensure_transition
from revflow.services import billing, coupons
from revflow.services.context import Ctx
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.price_terms import price_terms
from revflow.services.recorder import diff, record
from revflow.services.views_subscriptions import SubscriptionView
from revflow.storage.models import (
    Customer,
    Plan,
    PlanVersion,
    Price,
    Subscription,
    SubscriptionItem,
    TestClock,
)

__all__ = [
    "PRORATION_BEHAVIORS",
    "cancel_subscription",
    "change_subscription",
    "create_subscription",
    "list_subscriptions",
    "now_for",
    "pause_subscription",
    "reactivate_subscription",
    "resume_subscription",
]

PRORATION_BEHAVIORS = frozenset({"create_prorations", "always_invoice", "none"})
_S = SubscriptionStatus
ItemSpec = tuple[Price, Decimal]


def now_for(ctx: Ctx, test_clock_id: str | None) -> datetime:
    """The current time for objects on ``test_clock_id`` (its frozen time), else the real clock."""
    if test_clock_id is None:
        return ctx.now()
    return ctx.get(TestClock, test_clock_id, label="test clock").frozen_time


def _plan_items(
    ctx: Ctx, plan_id: str, currency: str | None, version: int | None = None
) -> tuple[Plan, PlanVersion, list[ItemSpec]]:
    plan = ctx.get(Plan, plan_id, label="plan")
    v = plan.current_version if version is None else version
    pv = ctx.session.scalar(
        select(PlanVersion).where(PlanVersion.plan_id == plan.id, PlanVersion.version == v)
    )
    if pv is None:
        raise NotFound(
            f"plan {plan.id} has no version {v}",
            details=[{"field": "plan_version", "code": "resource_missing"}],
        )
    prices = {
        p.id: p
        for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in pv.items])))
    }
    specs = [(prices[i.price_id], i.quantity) for i in pv.items]
    if currency is not None:
        specs = [(p, q) for p, q in specs if p.currency == currency]
        if not specs:
            raise CurrencyMismatch(
                f"plan {plan.code} has no prices in {currency}",
                details=[{"field": "plan_id", "code": "currency_mismatch"}],
            )
    return plan, pv, specs


def _item_specs(ctx: Ctx, items: list[dict[str, Any]]) -> list[ItemSpec]:
    out = []
    for i, spec in enumerate(items):
        price = ctx.get(Price, spec["price_id"], label="price")
        if not price.active:
            raise InvalidInput(
                f"price {price.id} is archived",
                code="price_inactive",
                details=[{"field": f"items[{i}].price_id", "code": "price_inactive"}],
            )
        qty = Decimal(spec.get("quantity", 1))
        if qty < 0:
            raise InvalidInput(
                "quantity must not be negative",
                code="invalid_quantity",
                details=[{"field": f"items[{i}].quantity", "code": "invalid_quantity"}],
            )
        out.append((price, qty))
    return out


def _with_quantity(specs: list[ItemSpec], quantity: Decimal) -> list[ItemSpec]:
    """Set the quantity of the one licensed price among ``specs`` (recurring, not metered, and not a flat
    fee, whose amount ignores quantity)."""
    if quantity < 0:
        raise InvalidInput(
            "quantity must not be negative",
            code="invalid_quantity",
            details=[{"field": "quantity", "code": "invalid_quantity"}],
        )
    licensed = [
        i
        for i, (p, _) in enumerate(specs)
        if p.type == "recurring" and not p.metric_code and p.model != "flat"
    ]
    if len(licensed) != 1:
        raise InvalidInput(
            "quantity applies to a plan with exactly one licensed price; send items instead",
            code="ambiguous_quantity",
            details=[{"field": "quantity", "code": "ambiguous_quantity"}],
        )
    return [(p, quantity if i == licensed[0] else q) for i, (p, q) in enumerate(specs)]


def _check_specs(specs: list[ItemSpec], currency: str) -> tuple[str, int]:
    for price, _ in specs:
        if price.currency != currency:
            raise CurrencyMismatch(
                f"price {price.id} is in {price.currency}; the subscription is in {currency}",
                details=[{"field": "items", "code": "currency_mismatch"}],
            )
    recurring = [p for p, _ in specs if p.type == "recurring"]
    if not recurring:
        raise InvalidInput("a subscription needs at least one recurring price", code="no_recurring_price")
    cadences = {(p.interval, p.interval_count) for p in recurring}
    if len(cadences) > 1:
        raise InvalidInput(
            "all recurring prices of a subscription must share one interval", code="interval_mismatch"
        )
    interval, count = cadences.pop()
    return str(interval), int(count)


def _new_item(
    ctx: Ctx,
    sub: Subscription,
    price: Price,
    qty: Decimal,
    start: datetime,
    bill_start: datetime,
    end: datetime | None = None,
) -> SubscriptionItem:
    return SubscriptionItem(
        id=new_id("si"),
        org_id=ctx.org_id,
        subscription_id=sub.id,
        price_id=price.id,
        quantity=qty,
        start_at=start,
        end_at=end,
        bill_start=bill_start,
        bill_end=end,
        created_at=ctx.now(),
    )


def _view(sub: Subscription, at: datetime) -> dict[str, Any]:
    return SubscriptionView.of(sub, at=at).payload()


def _snapshot(sub: Subscription) -> dict[str, Any]:
    return {
        "status": sub.status,
        "plan_version_id": sub.plan_version_id,
        "scheduled_plan_version_id": sub.scheduled_plan_version_id,
        "plan_change_at": sub.plan_change_at.isoformat() if sub.plan_change_at else None,
        "items": [
            f"{i.price_id}×{i.quantity}@{i.start_at.isoformat()}" for i in sub.items if i.end_at is None
        ],
        "cancel_at": sub.cancel_at.isoformat() if sub.cancel_at else None,
        "paused_at": sub.paused_at.isoformat() if sub.paused_at else None,
    }


def create_subscription(
    ctx: Ctx,
    *,
    customer_id: str,
    plan_id: str | None = None,
    items: list[dict[str, Any]] | None = None,
    currency: str | None = None,
    start_at: datetime | None = None,
    trial_days: int | None = None,
    trial_end: datetime | None = None,
    trial_amount: int = 0,
    billing_cycle_day: int | None = None,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    term_months: int | None = None,
    auto_renew: bool = True,
    quote_id: str | None = None,
    metadata: dict[str, str] | None = None,
    price_specs: list[ItemSpec] | None = None,
    coupon_id: str | None = None,
    promotion_code: str | None = None,
    quantity: Decimal | None = None,
) -> Subscription:
    """Create a subscription from a plan (its current version) or from items, and bill what is due.

    Returns the subscription. Raises NotFound (customer, plan, price), CurrencyMismatch, InvalidInput
    (``no_recurring_price``, ``interval_mismatch``, ``price_inactive``, ``invalid_trial``).
    """
    customer = ctx.get(Customer, customer_id, for_update=True, label="customer")
    if customer.archived_at is not None:
        raise Conflict(f"customer {customer.id} is archived", code="customer_archived")
    now = now_for(ctx, customer.test_clock_id)
    chosen = (currency or customer.currency or "").upper() or None
    plan = version = None
    if price_specs is not None:
        specs = price_specs
    elif plan_id is not None:
        plan, version, specs = _plan_items(ctx, plan_id, chosen)
    elif items:
        specs = _item_specs(ctx, items)
    else:
        raise InvalidInput("give a plan_id or items", code="parameter_missing")
    if quantity is not None:
        specs = _with_quantity(specs, quantity)
    chosen = chosen or specs[0][0].currency
    if customer.currency is not None and customer.currency != chosen:
        raise CurrencyMismatch(
            f"customer {customer.id} is billed in {customer.currency}, not {chosen}",
            details=[{"field": "currency", "code": "currency_mismatch"}],
        )
    interval, count = _check_specs(specs, chosen)
    if billing_cycle_day is not None and interval not in ("month", "quarter", "year"):
        raise InvalidInput(
            "billing_cycle_day applies to monthly, quarterly and yearly prices",
            code="invalid_billing_cycle_day",
            details=[{"field": "billing_cycle_day", "code": "invalid_billing_cycle_day"}],
        )
    start = start_at or now
    trial = trial_end or (start + timedelta(days=trial_days) if trial_days else None)
    if trial is not None and trial <= start:
        raise InvalidInput(
            "the trial must end after the start",
            code="invalid_trial",
            details=[{"field": "trial_end", "code": "invalid_trial"}],
        )
    sub = Subscription(
        id=new_id("sub"),
        org_id=ctx.org_id,
        customer_id=customer.id,
        plan_id=plan.id if plan else None,
        plan_version_id=version.id if version else None,
        currency=chosen,
        collection_method=collection_method,
        days_until_due=days_until_due,
        interval=interval,
        interval_count=count,
        billing_cycle_day=billing_cycle_day,
        timezone=customer.timezone,
        start_at=start,
        trial_end=trial,
        trial_amount=trial_amount,
        billing_cycle_anchor=start,
        next_billing_at=start,
        cancel_at_period_end=False,
        auto_renew=auto_renew,
        term_months=term_months,
        quote_id=quote_id,
        test_clock_id=customer.test_clock_id,
        metadata_=metadata or {},
        created_at=now,
        updated_at=now,
        status=(_S.INCOMPLETE if start > now else _S.TRIALING if trial and trial > now else _S.ACTIVE).value,
    )
    sched = billing.schedule_of(sub)
    sub.billing_cycle_anchor = sched.anchor
    sub.items = []
    if term_months:
        sub.term_end = shift(anchor=start, interval="month", count=term_months, n=1, tz=sub.timezone)
        if not auto_renew:
            sub.cancel_at = sub.term_end
    for price, qty in specs:
        bill_start = start if price.type == "one_time" else sched.billing_start
        sub.items.append(
            _new_item(
                ctx,
                sub,
                price,
                qty,
                start,
                bill_start,
                end=sub.cancel_at if price.type == "recurring" else None,
            )
        )
    if customer.currency is None:
        customer.currency = chosen
    ctx.session.add(sub)
    ctx.session.flush()
    record(
        ctx,
        action="subscription.create",
        object_type="subscription",
        object_id=sub.id,
        changes=diff({}, _snapshot(sub)),
        event_type="subscription.created",
        data=_view(sub, now),
    )
    if coupon_id is not None or promotion_code is not None:
        coupons.apply_discount(
            ctx,
            coupon_id=coupon_id,
            promotion_code=promotion_code,
            subscription_id=sub.id,
            start=sched.billing_start,
        )
    billing.bill_customer(ctx, customer.id, now=now)
    return sub


def _full_amount(specs: list[ItemSpec]) -> int:
    total = 0
    for price, qty in specs:
        if price.type == "recurring" and not price.metric_code:
            from revflow.domain.money import Currency

            total += price_amount(
                terms=price_terms(price), quantity=qty, currency=Currency.of(price.currency)
            )
    return total


def _current_specs(ctx: Ctx, sub: Subscription, at: datetime) -> list[ItemSpec]:
    live = [it for it in sub.items if it.start_at <= at and (it.end_at is None or it.end_at > at)]
    prices = {
        p.id: p for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in live])))
    }
    return [(prices[i.price_id], i.quantity) for i in live]


def _replace_recurring(
    ctx: Ctx, sub: Subscription, specs: list[ItemSpec], *, at: datetime, bill_at: datetime
) -> None:
    prices = {
        p.id: p
        for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in sub.items])))
    }
    for it in list(sub.items):
        if prices[it.price_id].type != "recurring":
            continue
        if it.start_at >= at:  # a change scheduled for later, replaced by this one
            sub.items.remove(it)
            continue
        if it.end_at is None or it.end_at > at:
            it.end_at = at
            if it.bill_end is None or it.bill_end > bill_at:
                it.bill_end = max(bill_at, it.bill_start)
    sched = billing.schedule_of(sub)
    for price, qty in specs:
        if price.type == "recurring":
            bill_start = max(bill_at, sched.billing_start)
            sub.items.append(_new_item(ctx, sub, price, qty, at, bill_start, end=sub.cancel_at))
        else:  # a one-time fee that comes with the change (an upgrade fee): billed once, with it
            sub.items.append(_new_item(ctx, sub, price, qty, at, at))


def change_subscription(
    ctx: Ctx,
    sub_id: str,
    *,
    plan_id: str | None = None,
    items: list[dict[str, Any]] | None = None,
    quantity: Decimal | None = None,
    proration_behavior: str = "create_prorations",
    effective: str | None = None,
    plan_version: int | None = None,
) -> Subscription:
    """Change the plan, the prices or the quantity of a subscription.

    ``effective`` is ``now`` or ``period_end``; by default upgrades (a higher full-period amount) take
    effect now and downgrades at the period end. Returns the subscription. Raises Conflict
    ``invalid_state`` for canceled, ended or paused subscriptions, CurrencyMismatch for prices in another
    currency, InvalidInput for a negative quantity or an unknown ``proration_behavior``.
    """
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    if sub.status in (_S.CANCELED, _S.ENDED, _S.PAUSED, _S.INCOMPLETE):
        raise Conflict(f"a {sub.status} subscription cannot be changed", code="invalid_state")
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise InvalidInput(
            f"proration_behavior must be one of {sorted(PRORATION_BEHAVIORS)}",
            code="invalid_proration_behavior",
        )
    now = now_for(ctx, sub.test_clock_id)
    before = _snapshot(sub)
    old = _current_specs(ctx, sub, now)
    plan = version = None
    if plan_id is not None:
        plan, version, specs = _plan_items(ctx, plan_id, sub.currency, plan_version)
        if quantity is not None:
            specs = _with_quantity(specs, quantity)
    elif items is not None:
        specs = _item_specs(ctx, items)
    elif quantity is not None:
        specs = _with_quantity(old, quantity)
    else:
        raise InvalidInput("give plan_id, items or quantity", code="parameter_missing")
    _check_specs(specs, sub.currency)
    sched = billing.schedule_of(sub)
    period = sched.period_at(max(now, sub.start_at))
    if effective is None:
        effective = "now" if _full_amount(specs) > _full_amount(old) else "period_end"
    if effective not in ("now", "period_end"):
        raise InvalidInput("effective must be now or period_end", code="invalid_effective")
    at = now if effective == "now" else period.end
    bill_at = period.end if (proration_behavior == "none" or effective == "period_end") else at
    _replace_recurring(ctx, sub, specs, at=at, bill_at=bill_at)
    # The plan after this change (a quantity change keeps the plan in effect); any change replaces a
    # change scheduled earlier, as _replace_recurring replaces its items.
    after: tuple[str | None, str | None] = (sub.plan_id, sub.plan_version_id)
    if plan is not None and version is not None:
        after = (plan.id, version.id)
    elif items is not None:
        after = (None, None)
    sub.scheduled_plan_id = sub.scheduled_plan_version_id = sub.plan_change_at = None
    if effective == "now":
        sub.plan_id, sub.plan_version_id = after
    elif after != (sub.plan_id, sub.plan_version_id):  # the plan switches with the prices, at period end
        sub.scheduled_plan_id, sub.scheduled_plan_version_id = after
        sub.plan_change_at = at
    sub.updated_at = now
    ctx.session.flush()
    record(
        ctx,
        action="subscription.change",
        object_type="subscription",
        object_id=sub.id,
        changes={
            **diff(before, _snapshot(sub)),
            "proration_behavior": {"before": None, "after": proration_behavior},
            "effective": {"before": None, "after": effective},
        },
        event_type="subscription.updated",
        data=_view(sub, now),
    )
    if proration_behavior == "always_invoice" and effective == "now":
        billing.bill_now(ctx, sub, at=now, reason="subscription_update")
    return sub


def cancel_subscription(
    ctx: Ctx, sub_id: str, *, at: str = "period_end", prorate: bool = False
) -> Subscription:
    """Cancel now (optionally crediting the unused time, billing any arrears at once) or at the period end.

    Raises Conflict ``invalid_state`` when the subscription is already canceled or ended.
    """
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    if sub.status in (_S.CANCELED, _S.ENDED):
        raise Conflict(f"subscription {sub.id} is already {sub.status}", code="invalid_state")
    now = now_for(ctx, sub.test_clock_id)
    before = _snapshot(sub)
    sched = billing.schedule_of(sub)
    period = sched.period_at(max(now, sub.start_at))
    if at == "period_end":
        end = period.end
        sub.cancel_at_period_end = True
    elif at == "now":
        ensure_transition(sub.status, _S.CANCELED)
        end = max(now, sub.start_at)
    else:
        raise InvalidInput("at must be now or period_end", code="invalid_cancel_at")
    prices = {
        p.id: p
        for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in sub.items])))
    }
    for it in list(sub.items):
        price = prices[it.price_id]
        if price.type != "recurring":
            continue
        if it.start_at >= end:
            sub.items.remove(it)
            continue
        if it.end_at is None or it.end_at > end:
            it.end_at = end
            keep_paid = (
                at == "now" and not prorate and price.billing_timing == "in_advance" and not price.metric_code
            )
            bill_end = period.end if keep_paid else end
            if it.bill_end is None or it.bill_end > bill_end:
                it.bill_end = max(bill_end, it.bill_start)
    sub.cancel_at = end
    sub.updated_at = now
    if at == "now":
        sub.status, sub.canceled_at, sub.ended_at = _S.CANCELED.value, now, end
    ctx.session.flush()
    record(
        ctx,
        action="subscription.cancel",
        object_type="subscription",
        object_id=sub.id,
        changes={**diff(before, _snapshot(sub)), "prorate": {"before": None, "after": prorate}},
        event_type="subscription.canceled" if at == "now" else "subscription.updated",
        data=_view(sub, now),
    )
    if at == "now":
        billing.bill_now(ctx, sub, at=end, reason="subscription_cancel")
        sub.next_billing_at = None
    return sub


def reactivate_subscription(ctx: Ctx, sub_id: str) -> Subscription:
    """Undo a cancellation scheduled for the period end, before that end.

    Raises Conflict ``invalid_state`` otherwise."""
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    now = now_for(ctx, sub.test_clock_id)
    if (
        not sub.cancel_at_period_end
        or sub.cancel_at is None
        or sub.cancel_at <= now
        or sub.status in (_S.CANCELED, _S.ENDED)
    ):
        raise Conflict(
            "only a subscription set to cancel at the period end can be reactivated, before that end",
            code="invalid_state",
        )
    before = _snapshot(sub)
    for it in sub.items:
        if it.end_at == sub.cancel_at:
            it.end_at = None
            it.bill_end = None
    sub.cancel_at, sub.cancel_at_period_end = None, False
    if sub.term_end is not None and not sub.auto_renew:
        sub.cancel_at = sub.term_end
    sub.updated_at = now
    ctx.session.flush()
    record(
        ctx,
        action="subscription.reactivate",
        object_type="subscription",
        object_id=sub.id,
        changes=diff(before, _snapshot(sub)),
        event_type="subscription.updated",
        data=_view(sub, now),
    )
    return sub


def pause_subscription(ctx: Ctx, sub_id: str) -> Subscription:
    """Pause now: the period already paid runs out, then nothing is billed until resumed."""
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    ensure_transition(sub.status, _S.PAUSED)
    now = now_for(ctx, sub.test_clock_id)
    before = _snapshot(sub)
    period = billing.schedule_of(sub).period_at(max(now, sub.start_at))
    for it in sub.items:
        if it.end_at is None or it.end_at > now:
            it.end_at = now
            it.bill_end = (
                max(period.end, it.bill_start)
                if it.bill_end is None or it.bill_end > period.end
                else it.bill_end
            )
    sub.status, sub.paused_at, sub.updated_at = _S.PAUSED.value, now, now
    ctx.session.flush()
    record(
        ctx,
        action="subscription.pause",
        object_type="subscription",
        object_id=sub.id,
        changes=diff(before, _snapshot(sub)),
        event_type="subscription.paused",
        data=_view(sub, now),
    )
    return sub


def resume_subscription(ctx: Ctx, sub_id: str) -> Subscription:
    """Resume a paused subscription now; the rest of the current period is billed at once, prorated."""
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    ensure_transition(sub.status, _S.ACTIVE)
    if sub.status != _S.PAUSED:
        raise Conflict("only a paused subscription can be resumed", code="invalid_state")
    now = now_for(ctx, sub.test_clock_id)
    before = _snapshot(sub)
    paused_at = sub.paused_at
    last = [it for it in sub.items if it.end_at == paused_at]
    prices = {
        p.id: p for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in last])))
    }
    for it in last:
        if prices[it.price_id].type == "recurring":
            sub.items.append(
                _new_item(ctx, sub, prices[it.price_id], it.quantity, now, max(now, it.bill_end or now))
            )
    sub.status, sub.paused_at, sub.updated_at = _S.ACTIVE.value, None, now
    sub.next_billing_at = now
    ctx.session.flush()
    record(
        ctx,
        action="subscription.resume",
        object_type="subscription",
        object_id=sub.id,
        changes=diff(before, _snapshot(sub)),
        event_type="subscription.resumed",
        data=_view(sub, now),
    )
    billing.bill_customer(ctx, sub.customer_id, now=now)
    return sub


def list_subscriptions(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    plan_id: str | None = None,
) -> Page[Subscription]:
    """One page of subscriptions, newest first."""
    stmt = filtered(
        select(Subscription).where(Subscription.org_id == ctx.org_id),
        (Subscription.customer_id, customer_id),
        (Subscription.status, status),
        (Subscription.plan_id, plan_id),
    )
    return paginate(
        ctx, stmt, Subscription, limit=limit, starting_after=starting_after, ending_before=ending_before
    )

"""The billing engine: finds what is due, recomputes what each period owes, bills the difference.

Work is per customer: every subscription of the customer due at the same instant lands on one invoice
per currency (consolidation). Each billing point is handled in order, so a subscription backdated by a
year, or a test clock advanced by twelve months, gets one invoice per cycle. The engine is idempotent:
what was billed is read back from invoice lines (per subscription, period, price and quantity) and only
differences are billed, so a rerun after a crash bills nothing twice and misses nothing. Several worker
processes share work on PostgreSQL by locking customers with ``FOR UPDATE SKIP LOCKED``.

Invoices made by the engine are drafts that finalize themselves ``invoice_grace_hours`` later (the
first invoice of a subscription finalizes at once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow import failpoints
from revflow.domain.billing import Billed, Charge, LineDraft, Segment, diff
from revflow.domain.clock import FrozenClock
from revflow.domain.discounts import DiscountableLine, Duration, allocate, resolve_once_period
from revflow.domain.ids import new_id
from revflow.domain.invoices import InvoiceStatus, compute_totals
from revflow.domain.money import Currency, round_to_minor
from revflow.domain.period import Period
from revflow.domain.subscriptions import Schedule, SubscriptionStatus
from revflow.services import coupons
from revflow.services.context import SYSTEM, Actor, Ctx
from revflow.services.invoices import finalize_invoice
from revflow.services.price_terms import price_terms
from revflow.services.recorder import record
from revflow.services.views import InvoiceView
from revflow.storage.models import (
    Customer,
    Invoice,
    InvoiceLineItem,
    Organization,
    Price,
    Product,
    Subscription,
)

__all__ = [
    "RunStats",
    "bill_customer",
    "bill_now",
    "charge_of",
    "finalize_due_drafts",
    "preview_lines",
    "run_due",
    "schedule_of",
]

log = structlog.get_logger("revflow.billing")

_EPS = timedelta(microseconds=1)
_OPEN = (SubscriptionStatus.CANCELED.value, SubscriptionStatus.ENDED.value)

#: Called with (ctx, invoice) after the engine creates an invoice (contract-to-invoice matching).
_invoice_hooks: list[Callable[[Ctx, Invoice], None]] = []


def register_invoice_hook(hook: Callable[[Ctx, Invoice], None]) -> None:
    _invoice_hooks.append(hook)


@dataclass
class RunStats:
    customers: int = 0
    invoices: int = 0
    lines: int = 0
    finalized: int = 0
    errors: int = 0
    failed: list[str] = field(default_factory=list)


def charge_of(price: Price) -> Charge:
    """The price as the domain's billing math sees it."""
    return Charge(
        price_id=price.id,
        type=price.type,
        timing="in_arrears" if price.metric_code else price.billing_timing,
        terms=price_terms(price),
        usage=price.metric_code is not None,
    )


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


def _segments(sub: Subscription, prices: dict[str, Price]) -> list[Segment]:
    return [
        Segment(charge_of(prices[it.price_id]), it.quantity, it.bill_start, it.bill_end)
        for it in sub.items
        if it.bill_end is None or it.bill_end > it.bill_start
    ]


def _billed(ctx: Ctx, sub_id: str, period_start: datetime) -> list[Billed]:
    rows = ctx.session.scalars(
        select(InvoiceLineItem).where(
            InvoiceLineItem.org_id == ctx.org_id,
            InvoiceLineItem.subscription_id == sub_id,
            InvoiceLineItem.billing_period_start == period_start,
        )
    )
    return [Billed(r.price_id, r.quantity, r.kind, r.amount, r.period_start, r.period_end) for r in rows]


def _prices(ctx: Ctx, subs: Iterable[Subscription]) -> dict[str, Price]:
    ids = {it.price_id for s in subs for it in s.items}
    if not ids:
        return {}
    return {p.id: p for p in ctx.session.scalars(select(Price).where(Price.id.in_(ids)))}


def _usage(ctx: Ctx, sub: Subscription, period: Period, prices: dict[str, Price]) -> dict[str, Decimal]:
    """Metered quantities of the subscription's usage prices over ``period`` (none until metering)."""
    from revflow.services import usage_source

    return usage_source.quantities(ctx, sub, period, [p for p in prices.values() if p.metric_code])


def _trial_line(sub: Subscription, sched: Schedule, billed: list[Billed]) -> LineDraft | None:
    if not sub.trial_amount or sub.trial_end is None or any(b.kind == "trial" for b in billed):
        return None
    trial = Period(sub.start_at, sub.trial_end)
    return LineDraft("trial", "", Decimal(1), sub.trial_amount, trial, trial, False)


def lines_at(ctx: Ctx, sub: Subscription, at: datetime, prices: dict[str, Price]) -> list[LineDraft]:
    """What the subscription owes at billing point ``at`` beyond what it was billed: the period that
    ends at ``at`` (arrears, usage, pending prorations) and the one that starts there (in advance). When
    ``at`` falls inside a period (a resume, a change billed at once) that period is examined once."""
    sched = schedule_of(sub)
    segments = _segments(sub, prices)
    currency = Currency.of(sub.currency)
    periods: list[Period] = []
    if at > sub.start_at:
        periods.append(sched.period_at(at - _EPS))
    ending = (sub.ended_at is not None and sub.ended_at <= at) or (
        sub.cancel_at is not None and sub.cancel_at <= at
    )
    if not ending:
        cur = sched.period_at(at)
        if not periods or periods[0].start != cur.start:
            periods.append(cur)
    out: list[LineDraft] = []
    for period in periods:
        closed = period.end <= at
        billed = _billed(ctx, sub.id, period.start)
        if sched.in_trial(period.start) and not closed:
            trial = _trial_line(sub, sched, billed)
            if trial is not None:
                out.append(trial)
        usage = _usage(ctx, sub, period, prices) if closed else None
        out += diff(
            period=period,
            segments=segments,
            billed=billed,
            currency=currency,
            usage=usage,
            include_advance=True,
            include_arrears=closed,
            basis=sched.basis(period),
        )
    return out


def preview_lines(ctx: Ctx, sub: Subscription, *, at: datetime) -> list[LineDraft]:
    """Lines the subscription would be billed at ``at`` (for the upcoming-invoice preview); writes nothing."""
    return lines_at(ctx, sub, at, _prices(ctx, [sub]))


def _describe(draft: LineDraft, price: Price | None, product: Product | None, tz: str) -> str:
    name = product.name if product is not None else "Subscription"
    if price is not None and price.nickname:
        name = f"{name} ({price.nickname})"
    qty = f" × {format(draft.quantity.normalize(), 'f')}" if draft.quantity != 1 else ""
    when = draft.period.start.date().isoformat()
    if draft.kind == "trial":
        return "Trial period"
    if draft.kind == "usage":
        metric = price.metric_code if price is not None else "usage"
        return f"{name}: {format(draft.quantity.normalize(), 'f')} {metric}"
    if draft.kind == "one_time":
        return f"{name}{qty} (one-time)"
    if draft.proration and draft.amount < 0:
        return f"Unused time on {name}{qty} from {when}"
    if draft.proration:
        return f"Remaining time on {name}{qty} from {when}"
    return f"{name}{qty}"


def _line_rows(
    ctx: Ctx,
    sub: Subscription,
    drafts: list[LineDraft],
    prices: dict[str, Price],
    products: dict[str, Product],
) -> list[InvoiceLineItem]:
    rows = []
    for d in drafts:
        price = prices.get(d.price_id)
        product = products.get(price.product_id) if price is not None else None
        unit = Decimal(d.amount) / d.quantity if d.quantity else Decimal(0)
        rows.append(
            InvoiceLineItem(
                id=new_id("il"),
                org_id=ctx.org_id,
                description=_describe(d, price, product, sub.timezone)[:500],
                quantity=d.quantity,
                unit_amount_decimal=unit.quantize(Decimal("0.000000000001")).normalize(),
                amount=d.amount,
                currency=sub.currency,
                period_start=d.period.start,
                period_end=d.period.end,
                metadata_={},
                kind=d.kind,
                subscription_id=sub.id,
                price_id=d.price_id or None,
                billing_period_start=d.billing_period.start,
                discount_amount=0,
                discounts=[],
            )
        )
    return rows


def _advance(ctx: Ctx, sub: Subscription, at: datetime) -> None:
    """Move the subscription past billing point ``at``: status, current period, next billing point."""
    sched = schedule_of(sub)
    before = sub.status
    if sub.cancel_at is not None and sub.cancel_at <= at:
        final = (
            SubscriptionStatus.ENDED
            if (sub.term_end is not None and not sub.auto_renew and sub.cancel_at == sub.term_end)
            else SubscriptionStatus.CANCELED
        )
        if sub.status not in _OPEN:
            sub.status = final.value
            sub.canceled_at = sub.canceled_at or sub.cancel_at
            sub.ended_at = sub.cancel_at
        sub.next_billing_at = None
    elif sub.status == SubscriptionStatus.PAUSED and all(it.bill_end is not None for it in sub.items):
        sub.next_billing_at = None
    else:
        if sub.status == SubscriptionStatus.INCOMPLETE:
            sub.status = (
                SubscriptionStatus.TRIALING if sched.in_trial(at) else SubscriptionStatus.ACTIVE
            ).value
        elif sub.status == SubscriptionStatus.TRIALING and not sched.in_trial(at):
            sub.status = SubscriptionStatus.ACTIVE.value
        period = sched.period_at(at)
        sub.current_period_start, sub.current_period_end = period.start, period.end
        sub.next_billing_at = period.end
        if sub.term_end is not None and sub.auto_renew and at >= sub.term_end and sub.term_months:
            sub.term_end = _add_months(sub.term_end, sub.term_months)
    sub.updated_at = at
    if sub.status != before:
        from revflow.services.views_subscriptions import SubscriptionView

        record(
            ctx,
            action="subscription.status",
            object_type="subscription",
            object_id=sub.id,
            changes={"status": {"before": before, "after": sub.status}},
            event_type="subscription.updated",
            data=SubscriptionView.of(sub).payload(),
        )


def _add_months(at: datetime, months: int) -> datetime:
    from revflow.domain.cycles import shift

    return shift(anchor=at, interval="month", count=months, n=1, tz="UTC")


def _make_invoice(
    ctx: Ctx,
    customer: Customer,
    org: Organization,
    currency: str,
    rows: list[InvoiceLineItem],
    subs: list[Subscription],
    at: datetime,
    reason: str,
    finalize_now: bool,
) -> Invoice:
    collection = subs[0].collection_method
    days = subs[0].days_until_due
    inv = Invoice(
        id=new_id("inv"),
        org_id=ctx.org_id,
        customer_id=customer.id,
        status=InvoiceStatus.DRAFT.value,
        currency=currency,
        collection_method=collection,
        billing_reason=reason,
        due_date=(at + timedelta(days=days if days is not None else org.default_net_days)).date(),
        metadata_={},
        created_at=at,
        updated_at=at,
        discount=0,
        tax=0,
        pre_payment_credit_notes_amount=0,
        post_payment_credit_notes_amount=0,
        subscription_id=subs[0].id if len({s.id for s in subs}) == 1 else None,
        auto_finalize_at=at if finalize_now else at + timedelta(hours=org.invoice_grace_hours),
        test_clock_id=customer.test_clock_id,
    )
    for pos, row in enumerate(rows):
        row.invoice_id = inv.id
        row.position = pos
    inv.lines = rows
    inv.discount = sum(r.discount_amount for r in rows)
    totals = compute_totals(line_amounts=[r.amount for r in rows], discount=inv.discount, tax=0)
    inv.subtotal, inv.total = totals.subtotal, totals.total
    inv.applied_balance, inv.amount_paid = 0, 0
    inv.amount_due = inv.amount_remaining = max(0, totals.total)
    ctx.session.add(inv)
    ctx.session.flush()
    record(
        ctx,
        action="invoice.create",
        object_type="invoice",
        object_id=inv.id,
        changes={
            "total": {"before": None, "after": inv.total},
            "billing_reason": {"before": None, "after": reason},
        },
        event_type="invoice.created",
        data=InvoiceView.of(inv).payload(),
    )
    for hook in _invoice_hooks:
        hook(ctx, inv)
    return inv


def _discount(
    ctx: Ctx,
    customer: Customer,
    sub: Subscription,
    rows: list[InvoiceLineItem],
    prices: dict[str, Price],
    *,
    persist: bool = True,
) -> None:
    """Take the customer's and the subscription's discounts off the new lines (never below zero).

    A ``once`` discount is pinned to the first billing period it meets (``persist=False`` for previews).
    """
    terms = coupons.active_discounts(ctx, customer_id=customer.id, subscription_id=sub.id)
    if not terms or not rows:
        return
    lines = [
        DiscountableLine(
            key=i,
            amount=r.amount,
            billing_period_start=r.billing_period_start or ctx.now(),
            currency=r.currency,
            product_id=prices[r.price_id].product_id if r.price_id in prices else None,
            plan_id=sub.plan_id,
        )
        for i, r in enumerate(rows)
    ]
    pinned = []
    for t in terms:
        if t.duration is Duration.ONCE and t.once_period_start is None:
            start = resolve_once_period(discount=t, lines=lines)
            if start is not None:
                if persist:
                    coupons.set_applied_period(ctx, t.id, period_start=start)
                t = replace(t, once_period_start=start)
        pinned.append(t)
    allocations = allocate(lines=lines, discounts=pinned, currency=Currency.of(sub.currency))
    for row, parts in zip(rows, allocations, strict=True):
        if parts:
            row.discounts = [{"discount_id": d, "coupon_id": c, "amount": a} for d, c, a in parts]
            row.discount_amount = sum(a for _, _, a in parts)


def _products(ctx: Ctx, prices: dict[str, Price]) -> dict[str, Product]:
    ids = {p.product_id for p in prices.values()}
    if not ids:
        return {}
    return {p.id: p for p in ctx.session.scalars(select(Product).where(Product.id.in_(ids)))}


def _at(ctx: Ctx, at: datetime) -> Ctx:
    return Ctx(
        session=ctx.session,
        org_id=ctx.org_id,
        actor=ctx.actor,
        clock=FrozenClock(at),
        request_id=ctx.request_id,
    )


def bill_customer(ctx: Ctx, customer_id: str, *, now: datetime, reason: str | None = None) -> list[Invoice]:
    """Bill every billing point of the customer's subscriptions up to ``now``, in order, and finalize
    the drafts whose grace period is over. Returns the invoices created. Safe to run twice."""
    customer = ctx.get(Customer, customer_id, for_update=True, label="customer")
    org = ctx.get(Organization, ctx.org_id, label="organization")
    subs = list(
        ctx.session.scalars(
            select(Subscription).where(
                Subscription.org_id == ctx.org_id,
                Subscription.customer_id == customer_id,
                Subscription.next_billing_at.is_not(None),
            )
        )
    )
    prices = _prices(ctx, subs)
    products = _products(ctx, prices)
    created: list[Invoice] = []
    while True:
        due = [s for s in subs if s.next_billing_at is not None and s.next_billing_at <= now]
        if not due:
            break
        at = min(s.next_billing_at for s in due if s.next_billing_at is not None)
        group = [s for s in due if s.next_billing_at == at]
        actx = _at(ctx, at)
        by_currency: dict[str, tuple[list[InvoiceLineItem], list[Subscription], bool]] = {}
        for sub in group:
            first = sub.status == SubscriptionStatus.INCOMPLETE or (sub.current_period_start is None)
            drafts = lines_at(actx, sub, at, prices)
            rows = _line_rows(actx, sub, drafts, prices, products)
            _discount(actx, customer, sub, rows, prices)
            _advance(actx, sub, at)
            if rows:
                bucket = by_currency.setdefault(sub.currency, ([], [], False))
                bucket[0].extend(rows)
                bucket[1].append(sub)
                by_currency[sub.currency] = (bucket[0], bucket[1], bucket[2] or first)
        for currency, (rows, owners, first) in by_currency.items():
            why = reason or ("subscription_create" if first else "subscription_cycle")
            created.append(
                _make_invoice(
                    actx,
                    customer,
                    org,
                    currency,
                    rows,
                    owners,
                    at,
                    why,
                    first or reason == "subscription_update",
                )
            )
    finalize_due_drafts(ctx, now=now, customer_id=customer_id)
    return created


def bill_now(ctx: Ctx, sub: Subscription, *, at: datetime, reason: str) -> Invoice | None:
    """Bill the current period's differences of one subscription right away (``always_invoice``)."""
    customer = ctx.get(Customer, sub.customer_id, for_update=True, label="customer")
    org = ctx.get(Organization, ctx.org_id, label="organization")
    prices = _prices(ctx, [sub])
    products = _products(ctx, prices)
    sched = schedule_of(sub)
    period = sched.period_at(at)
    actx = _at(ctx, at)
    ended = sub.ended_at is not None and sub.ended_at <= at
    drafts = diff(
        period=period,
        segments=_segments(sub, prices),
        billed=_billed(ctx, sub.id, period.start),
        currency=Currency.of(sub.currency),
        include_advance=True,
        include_arrears=ended,
        basis=sched.basis(period),
    )
    rows = _line_rows(actx, sub, drafts, prices, products)
    if not rows:
        return None
    _discount(actx, customer, sub, rows, prices)
    inv = _make_invoice(actx, customer, org, sub.currency, rows, [sub], at, reason, True)
    finalize_due_drafts(actx, now=at, customer_id=customer.id)
    return inv


def finalize_due_drafts(ctx: Ctx, *, now: datetime, customer_id: str | None = None) -> int:
    """Finalize the organization's engine drafts whose grace period ended by ``now``; returns how many."""
    stmt = (
        select(Invoice.id)
        .where(
            Invoice.org_id == ctx.org_id,
            Invoice.status == InvoiceStatus.DRAFT.value,
            Invoice.auto_finalize_at.is_not(None),
            Invoice.auto_finalize_at <= now,
        )
        .order_by(Invoice.auto_finalize_at, Invoice.id)
    )
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    ids = list(ctx.session.scalars(stmt))
    for inv_id in ids:
        inv = ctx.session.get(Invoice, inv_id)
        at = max(inv.auto_finalize_at, inv.created_at) if inv is not None and inv.auto_finalize_at else now
        finalize_invoice(_at(ctx, at), inv_id)
    return len(ids)


def _due_customers(
    session: Session, *, now: datetime, clock_id: str | None, limit: int, skip: set[str]
) -> list[tuple[str, str]]:
    due = select(Subscription.customer_id).where(Subscription.next_billing_at <= now)
    due = due.where(
        Subscription.test_clock_id.is_(None) if clock_id is None else Subscription.test_clock_id == clock_id
    )
    drafts = select(Invoice.customer_id).where(Invoice.status == "draft", Invoice.auto_finalize_at <= now)
    drafts = drafts.where(
        Invoice.test_clock_id.is_(None) if clock_id is None else Invoice.test_clock_id == clock_id
    )
    stmt = select(Customer.id, Customer.org_id).where(Customer.id.in_(due.union(drafts)))
    if skip:
        stmt = stmt.where(Customer.id.not_in(skip))
    stmt = stmt.order_by(Customer.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Customer)
    return [(cid, org) for cid, org in session.execute(stmt)]


def run_due(
    sessions: Callable[[], Session],
    *,
    now: datetime,
    clock_id: str | None = None,
    batch_size: int = 200,
    actor: Actor = SYSTEM,
    progress: Callable[[int], None] | None = None,
) -> RunStats:
    """Bill every customer with something due by ``now`` (real-time customers, or those of test clock
    ``clock_id``), ``batch_size`` customers per transaction. A customer that fails is rolled back alone,
    logged, recorded as a ``billing_failed`` alert and skipped for the rest of the run."""
    stats = RunStats()
    failed: set[str] = set()
    while True:
        with sessions() as session:
            batch = _due_customers(session, now=now, clock_id=clock_id, limit=batch_size, skip=failed)
            if not batch:
                break
            for customer_id, org_id in batch:
                ctx = Ctx(session=session, org_id=org_id, actor=actor, clock=FrozenClock(now))
                try:
                    with session.begin_nested():
                        invoices = bill_customer(ctx, customer_id, now=now)
                except Exception as exc:  # one customer's bad data must not stop the run
                    log.exception("billing_failed", customer_id=customer_id)
                    failed.add(customer_id)
                    stats.errors += 1
                    stats.failed.append(customer_id)
                    _alert_failure(session, org_id, customer_id, exc, now)
                    continue
                stats.customers += 1
                stats.invoices += len(invoices)
                stats.lines += sum(len(i.lines) for i in invoices)
            failpoints.hit("billing.before_commit")
            session.commit()
        if progress is not None:
            progress(len(batch))
    return stats


def _alert_failure(session: Session, org_id: str, customer_id: str, exc: Exception, now: datetime) -> None:
    from revflow.services.alerts import raise_alert

    with session.begin_nested():
        raise_alert(
            session,
            org_id=org_id,
            type="billing_failed",
            object_type="customer",
            object_id=customer_id,
            message=f"Billing failed for customer {customer_id}: {exc}",
            details={"error": type(exc).__name__},
            dedupe_key=f"billing_failed:{customer_id}",
            now=now,
        )


def grouped(lines: Iterable[InvoiceLineItem]) -> dict[str, list[InvoiceLineItem]]:
    out: dict[str, list[InvoiceLineItem]] = defaultdict(list)
    for li in lines:
        out[li.subscription_id or ""].append(li)
    return out


_ = round_to_minor

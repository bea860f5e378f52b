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

import gc
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import func, select, union
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from revflow import failpoints
from revflow.domain.billing import Billed, Charge, LineDraft, Segment, diff
from revflow.domain.clock import FrozenClock
from revflow.domain.discounts import DiscountableLine, DiscountTerms, Duration, allocate, resolve_once_period
from revflow.domain.ids import new_id
from revflow.domain.invoices import InvoiceStatus, compute_totals
from revflow.domain.money import Currency
from revflow.domain.period import Period
from revflow.domain.subscriptions import Schedule, SubscriptionStatus
from revflow.services import coupons, quote_matching, usage_source
from revflow.services.context import SYSTEM, Actor, Ctx
from revflow.services.invoices import apply_finalization, check_finalizable, local_date
from revflow.services.numbering import reserve_numbers
from revflow.services.price_terms import price_terms
from revflow.services.recorder import buffered, record
from revflow.services.schedules import schedule_of
from revflow.services.views import InvoiceLineView, InvoiceView
from revflow.storage.bulk import among, built, insert_new
from revflow.storage.models import (
    Customer,
    CustomerBalanceTransaction,
    Invoice,
    InvoiceLineItem,
    Organization,
    Price,
    Product,
    Subscription,
)
from revflow.storage.usage_models import UsageLateEvent

__all__ = [
    "RunStats",
    "bill_customer",
    "bill_now",
    "bill_usage_now",
    "charge_of",
    "preview_lines",
    "run_due",
    "schedule_of",
]

log = structlog.get_logger("revflow.billing")

_EPS = timedelta(microseconds=1)
_OPEN = (SubscriptionStatus.CANCELED.value, SubscriptionStatus.ENDED.value)


def _check_quote(ctx: Ctx, inv: Invoice, subs: dict[str, Subscription]) -> None:
    """Contract-to-invoice matching for invoices of quoted subscriptions."""
    if not any(
        sub.quote_id for sid in {li.subscription_id for li in inv.lines} if (sub := subs.get(sid or ""))
    ):
        return
    quote_matching.check_invoice_against_quote(ctx, inv)


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


def _segments(sub: Subscription, batch: Batch) -> list[Segment]:
    return [
        Segment(batch.charge(it.price_id), it.quantity, it.bill_start, it.bill_end)
        for it in sub.items
        if it.bill_end is None or it.bill_end > it.bill_start
    ]


class Batch:
    """What billing some customers of one organization needs, loaded in a handful of queries.

    Subscriptions, their items, prices, products, the lines already billed, credit balances, discounts
    and the drafts due for finalization are read once; new lines join the in-memory index of billed
    lines, so several billing points of one customer (a backdated start, a test clock jump) see each
    other without a query. Nothing is flushed until :meth:`finish`.
    """

    def __init__(
        self, ctx: Ctx, customer_ids: list[str], *, now: datetime, lock: bool = False, attach: bool = True
    ):
        s = ctx.session
        self.ctx, self.now, self.attach = ctx, now, attach
        self.org = ctx.get(Organization, ctx.org_id, label="organization")
        query = (
            select(Customer)
            .where(Customer.org_id == ctx.org_id, among(s, Customer.id, customer_ids))
            .options(lazyload(Customer.external_ids))
        )
        if lock:
            query = query.with_for_update()
        self.customers = {c.id: c for c in s.scalars(query)}
        subs = list(
            s.scalars(
                select(Subscription)
                .where(
                    Subscription.org_id == ctx.org_id,
                    among(s, Subscription.customer_id, customer_ids),
                    Subscription.next_billing_at.is_not(None),
                )
                .order_by(Subscription.id)
            )
        )
        self.subs: dict[str, list[Subscription]] = defaultdict(list)
        for sub in subs:
            self.subs[sub.customer_id].append(sub)
        self.prices = _prices(ctx, subs)
        self.products = _products(ctx, self.prices)
        self.billed: dict[tuple[str, datetime], list[Billed]] = defaultdict(list)
        if subs:
            since = min(_first_examined(sub) for sub in subs)
            for sid, bps, price_id, qty, kind, amount, start, end in s.execute(
                select(
                    InvoiceLineItem.subscription_id,
                    InvoiceLineItem.billing_period_start,
                    InvoiceLineItem.price_id,
                    InvoiceLineItem.quantity,
                    InvoiceLineItem.kind,
                    InvoiceLineItem.amount,
                    InvoiceLineItem.period_start,
                    InvoiceLineItem.period_end,
                ).where(
                    InvoiceLineItem.org_id == ctx.org_id,
                    among(s, InvoiceLineItem.subscription_id, [x.id for x in subs]),
                    InvoiceLineItem.billing_period_start >= since,
                )
            ):
                if sid is not None and bps is not None:
                    self.billed[(sid, bps)].append(Billed(price_id, qty, kind, amount, start, end))
        self.balances: dict[str, int] = defaultdict(int)
        for cid, total in s.execute(
            select(CustomerBalanceTransaction.customer_id, func.sum(CustomerBalanceTransaction.amount))
            .where(
                CustomerBalanceTransaction.org_id == ctx.org_id,
                among(s, CustomerBalanceTransaction.customer_id, customer_ids),
            )
            .group_by(CustomerBalanceTransaction.customer_id)
        ):
            self.balances[cid] = int(total or 0)
        self.discount_owners = coupons.discount_terms_for(ctx, customer_ids=customer_ids)
        self.terms: dict[str, list[DiscountTerms]] = {}
        drafts = select(Invoice).where(
            Invoice.org_id == ctx.org_id,
            among(s, Invoice.customer_id, customer_ids),
            Invoice.status == InvoiceStatus.DRAFT.value,
            Invoice.auto_finalize_at.is_not(None),
            Invoice.auto_finalize_at <= now,
        )
        self.drafts = list(s.scalars(drafts.with_for_update() if lock else drafts))
        self.created: list[Invoice] = []
        #: What each usage line measured, by (subscription, period start, price), for its description.
        self.usage_details: dict[tuple[str, datetime, str], usage_source.PriceUsage] = {}
        self._charges: dict[str, Charge] = {}
        #: Views of the new invoices' lines, built once for all their events.
        self.line_views: dict[str, list[InvoiceLineView]] = {}
        #: Late usage events waiting to be billed, by subscription (ADR 0034), and those examined.
        self.late: dict[str, list[UsageLateEvent]] = defaultdict(list)
        self.late_examined: dict[str, list[tuple[UsageLateEvent, bool]]] = defaultdict(list)
        if subs:
            for late in s.scalars(
                select(UsageLateEvent)
                .where(
                    UsageLateEvent.org_id == ctx.org_id,
                    UsageLateEvent.subscription_id.in_([x.id for x in subs]),
                    UsageLateEvent.settled_at.is_(None),
                )
                .order_by(UsageLateEvent.event_id)
            ):
                self.late[late.subscription_id].append(late)
        #: Customers that really had work (a claim may race a worker that just billed the customer).
        self.due = {
            cid
            for cid, group in self.subs.items()
            if any(x.next_billing_at is not None and x.next_billing_at <= now for x in group)
        } | {d.customer_id for d in self.drafts}

    def charge(self, price_id: str) -> Charge:
        """The price as billing math sees it (built once per batch: every subscription shares it)."""
        charge = self._charges.get(price_id)
        if charge is None:
            charge = self._charges[price_id] = charge_of(self.prices[price_id])
        return charge

    def billed_for(self, sub_id: str, period_start: datetime) -> list[Billed]:
        return self.billed.get((sub_id, period_start), [])

    def remember(self, rows: list[InvoiceLineItem]) -> None:
        for r in rows:
            if r.subscription_id is not None and r.billing_period_start is not None:
                self.billed[(r.subscription_id, r.billing_period_start)].append(
                    Billed(r.price_id, r.quantity, r.kind, r.amount, r.period_start, r.period_end)
                )

    def finish(self) -> int:
        """Finalize, in order, the drafts whose grace period is over (old ones and new ones), with
        numbers reserved in one step, then write everything. Returns how many were finalized."""
        due = [i for i in self.created if i.auto_finalize_at is not None and i.auto_finalize_at <= self.now]
        due += [d for d in self.drafts if d not in due]
        due.sort(key=lambda i: (i.auto_finalize_at or i.created_at, i.id))
        session = self.ctx.session
        if due:
            numbers = self._reserve_numbers(due)
            with session.no_autoflush:  # balance transactions wait for their invoices' rows
                for inv in due:
                    customer = self.customers[inv.customer_id]
                    at = max(inv.auto_finalize_at or inv.created_at, inv.created_at)
                    check_finalizable(inv)
                    self.balances[customer.id] += apply_finalization(
                        _at(self.ctx, at),
                        inv,
                        customer=customer,
                        org=self.org,
                        number=numbers[inv.id],
                        credit=self.balances[customer.id],
                        flush=False,
                        lines=self.line_views.get(inv.id),
                    )
        # New invoices and lines: multi-row INSERTs, not an ORM flush (ADR 0011).
        insert_new(session, [o for inv in self.created for o in (inv, *inv.lines)], attach=self.attach)
        session.flush()
        subs = {sub.id: sub for group in self.subs.values() for sub in group}
        for inv in self.created:
            _check_quote(self.ctx, inv, subs)
        return len(due)

    def _reserve_numbers(self, due: list[Invoice]) -> dict[str, str]:
        """Reserve, in one step per sequence, the numbers of the invoices ``due`` (in order): the
        organization's for real customers, each test clock's for its customers (ADR 0040)."""
        by_clock: dict[str | None, list[Invoice]] = {}
        for inv in due:
            by_clock.setdefault(self.customers[inv.customer_id].test_clock_id, []).append(inv)
        numbers: dict[str, str] = {}
        for clock_id in sorted(by_clock, key=lambda c: c or ""):  # one lock order: no deadlock
            invoices = by_clock[clock_id]
            reserved = reserve_numbers(
                self.ctx,
                kind="invoice",
                prefix=self.org.invoice_prefix,
                count=len(invoices),
                test_clock_id=clock_id,
            )
            numbers.update(zip((inv.id for inv in invoices), reserved, strict=True))
        return numbers


def _first_examined(sub: Subscription) -> datetime:
    """The start of the earliest period the next billing point of ``sub`` looks at."""
    at = sub.next_billing_at
    if at is None or at <= sub.start_at:
        return sub.start_at
    return schedule_of(sub).period_at(at - _EPS).start


def _prices(ctx: Ctx, subs: Iterable[Subscription]) -> dict[str, Price]:
    ids = {it.price_id for s in subs for it in s.items}
    if not ids:
        return {}
    return {p.id: p for p in ctx.session.scalars(select(Price).where(Price.id.in_(ids)))}


def _usage(
    ctx: Ctx, sub: Subscription, period: Period, prices: dict[str, Price]
) -> dict[str, usage_source.PriceUsage]:
    """Metered units and amounts of the subscription's usage prices over ``period``."""
    metered = [p for p in prices.values() if p.metric_code]
    if not metered:
        return {}
    return usage_source.price_usage(ctx, sub=sub, prices=metered, start=period.start, end=period.end)


def _trial_line(sub: Subscription, sched: Schedule, billed: list[Billed]) -> LineDraft | None:
    if not sub.trial_amount or sub.trial_end is None or any(b.kind == "trial" for b in billed):
        return None
    trial = Period(sub.start_at, sub.trial_end)
    return LineDraft("trial", "", Decimal(1), sub.trial_amount, trial, trial, False)


def lines_at(batch: Batch, sub: Subscription, at: datetime) -> list[LineDraft]:
    """What the subscription owes at billing point ``at`` beyond what it was billed: the period that
    ends at ``at`` (arrears, usage, pending prorations) and the one that starts there (in advance). When
    ``at`` falls inside a period (a resume, a change billed at once) that period is examined once."""
    sched = schedule_of(sub)
    own = {it.price_id: batch.prices[it.price_id] for it in sub.items}
    segments = _segments(sub, batch)
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
        billed = batch.billed_for(sub.id, period.start)
        if sched.in_trial(period.start) and not closed:
            trial = _trial_line(sub, sched, billed)
            if trial is not None:
                out.append(trial)
        usage = _usage(batch.ctx, sub, period, own) if closed else None
        for price_id, measured in (usage or {}).items():
            batch.usage_details[(sub.id, period.start, price_id)] = measured
        out += diff(
            period=period,
            segments=segments,
            billed=billed,
            currency=currency,
            usage=None if usage is None else {pid: u.units for pid, u in usage.items()},
            usage_owed=None if usage is None else {pid: u.amount for pid, u in usage.items()},
            include_advance=True,
            include_arrears=closed,
            basis=sched.basis(period),
        )
    out += _late_lines(batch, sub, at, {p.start for p in periods}, own, segments)
    return out


def _late_lines(
    batch: Batch,
    sub: Subscription,
    at: datetime,
    examined: set[datetime],
    own: dict[str, Price],
    segments: list[Segment],
) -> list[LineDraft]:
    """Usage lines for the earlier, already billed periods that late events changed (ADR 0034): each
    such period is re-measured and diffed against its billed usage lines; the difference is a usage
    line of that service period on this invoice."""
    pending = batch.late.get(sub.id)
    if not pending:
        return []
    sched = schedule_of(sub)
    periods: dict[datetime, Period] = {}
    of_period: dict[datetime, list[UsageLateEvent]] = defaultdict(list)
    for late in pending:
        if late.timestamp < at:
            period = sched.period_at(late.timestamp)
            if sub.ended_at is not None and period.end > sub.ended_at:
                period = Period(period.start, sub.ended_at)
            if period.end <= at and period.start not in examined:
                periods[period.start] = period
                of_period[period.start].append(late)
            else:
                batch.late_examined[sub.id].append((late, False))
    out: list[LineDraft] = []
    for start in sorted(periods):
        period = periods[start]
        usage = _usage(batch.ctx, sub, period, own)
        drafts = _late_period_lines(batch, sub, period, usage, segments) if usage else []
        batch.late_examined[sub.id] += [(late, bool(drafts)) for late in of_period[start]]
        out += drafts
    return out


def _late_period_lines(
    batch: Batch,
    sub: Subscription,
    period: Period,
    usage: dict[str, usage_source.PriceUsage],
    segments: list[Segment],
) -> list[LineDraft]:
    """The usage lines that bring an earlier, billed ``period`` to what ``usage`` says it owes."""
    sched = schedule_of(sub)
    for price_id, measured in usage.items():
        batch.usage_details[(sub.id, period.start, price_id)] = measured
    billed = [
        Billed(price_id, qty, kind, amount, a, b)
        for price_id, qty, kind, amount, a, b in batch.ctx.session.execute(
            select(
                InvoiceLineItem.price_id,
                InvoiceLineItem.quantity,
                InvoiceLineItem.kind,
                InvoiceLineItem.amount,
                InvoiceLineItem.period_start,
                InvoiceLineItem.period_end,
            ).where(
                InvoiceLineItem.org_id == batch.ctx.org_id,
                InvoiceLineItem.subscription_id == sub.id,
                InvoiceLineItem.billing_period_start == period.start,
                InvoiceLineItem.kind == "usage",
            )
        )
    ]
    drafts = diff(
        period=period,
        segments=segments,
        billed=billed,  # in the database: the period was billed by an earlier transaction
        currency=Currency.of(sub.currency),
        usage={pid: u.units for pid, u in usage.items()},
        usage_owed={pid: u.amount for pid, u in usage.items()},
        include_advance=False,
        include_arrears=False,
        basis=sched.basis(period),
    )
    return [d for d in drafts if d.kind == "usage"]


def preview_lines(ctx: Ctx, sub: Subscription, *, at: datetime) -> list[LineDraft]:
    """Lines the subscription would be billed at ``at`` (for the upcoming-invoice preview); writes nothing."""
    return lines_at(Batch(ctx, [sub.customer_id], now=at), sub, at)


def _describe(
    draft: LineDraft,
    price: Price | None,
    product: Product | None,
    tz: str,
    usage: usage_source.PriceUsage | None = None,
) -> str:
    name = product.name if product is not None else "Subscription"
    if price is not None and price.nickname:
        name = f"{name} ({price.nickname})"
    qty = f" × {format(draft.quantity.normalize(), 'f')}" if draft.quantity != 1 else ""
    when = local_date(draft.period.start, tz).isoformat()
    if draft.kind == "trial":
        return "Trial period"
    if draft.kind == "usage":
        metric = price.metric_code if price is not None else "usage"
        units = format(draft.quantity.normalize(), "f")
        how = f" ({usage.metric.aggregation})" if usage is not None and usage.metric is not None else ""
        if usage is not None and usage.metric is not None and usage.metric.property:
            how = f" ({usage.metric.aggregation} of {usage.metric.property})"
        start, end = (local_date(at, tz).isoformat() for at in (draft.period.start, draft.period.end))
        return f"{name}: {units} {metric}{how}, {start} to {end}"
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
    usage: dict[tuple[str, datetime, str], usage_source.PriceUsage] | None = None,
) -> list[InvoiceLineItem]:
    rows = []
    for d in drafts:
        price = prices.get(d.price_id)
        product = products.get(price.product_id) if price is not None else None
        measured = (
            (usage or {}).get((sub.id, d.billing_period.start, d.price_id)) if d.kind == "usage" else None
        )
        unit = Decimal(d.amount) / d.quantity if d.quantity else Decimal(0)
        rows.append(
            built(
                InvoiceLineItem,
                id=new_id("il"),
                org_id=ctx.org_id,
                description=_describe(d, price, product, sub.timezone, measured)[:500],
                quantity=d.quantity,
                unit_amount_decimal=unit.quantize(Decimal("0.000000000001")).normalize(),
                amount=d.amount,
                currency=sub.currency,
                period_start=d.period.start,
                period_end=d.period.end,
                metadata_=measured.details() if measured is not None else {},
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
    if sub.plan_change_at is not None and sub.plan_change_at <= at:  # a scheduled plan change is due
        sub.plan_id, sub.plan_version_id = sub.scheduled_plan_id, sub.scheduled_plan_version_id
        sub.scheduled_plan_id = sub.scheduled_plan_version_id = sub.plan_change_at = None
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
            sub.term_end = _add_months(sub.term_end, sub.term_months, sub.timezone)
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


def _add_months(at: datetime, months: int, tz: str) -> datetime:
    from revflow.domain.cycles import shift

    return shift(anchor=at, interval="month", count=months, n=1, tz=tz)


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
    line_views: dict[str, list[InvoiceLineView]],
) -> Invoice:
    collection = subs[0].collection_method
    days = subs[0].days_until_due
    discount = sum(r.discount_amount for r in rows)
    totals = compute_totals(line_amounts=[r.amount for r in rows], discount=discount, tax=0)
    # A new invoice is written by Batch.finish (insert_new), not by the unit of work: it is built, and
    # its lines set, without change tracking, which would cost more than the rest of the invoice.
    inv = built(
        Invoice,
        id=new_id("inv"),
        org_id=ctx.org_id,
        customer_id=customer.id,
        status=InvoiceStatus.DRAFT.value,
        currency=currency,
        collection_method=collection,
        billing_reason=reason,
        due_date=local_date(at, customer.timezone)
        + timedelta(days=days if days is not None else org.default_net_days),
        metadata_={},
        created_at=at,
        updated_at=at,
        subtotal=totals.subtotal,
        discount=discount,
        tax=0,
        total=totals.total,
        applied_balance=0,
        amount_due=max(0, totals.total),
        amount_paid=0,
        amount_remaining=max(0, totals.total),
        pre_payment_credit_notes_amount=0,
        post_payment_credit_notes_amount=0,
        subscription_id=subs[0].id if len({s.id for s in subs}) == 1 else None,
        auto_finalize_at=at if finalize_now else at + timedelta(hours=org.invoice_grace_hours),
        test_clock_id=customer.test_clock_id,
    )
    for pos, row in enumerate(rows):
        row.invoice_id = inv.id
        row.position = pos
    set_committed_value(inv, "lines", rows)
    view = InvoiceView.of(inv)
    line_views[inv.id] = view.lines  # reused by the finalization's events
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
        data=view.payload(),
    )
    return inv


def _discount(
    ctx: Ctx,
    terms: list[DiscountTerms],
    rows: list[InvoiceLineItem],
    prices: dict[str, Price],
    plans: dict[str, str | None],
    *,
    persist: bool = True,
) -> None:
    """Take the discounts in ``terms`` off ``rows`` (what earlier discounts left; never below zero).

    ``plans`` maps subscription ids to plan ids for plan-restricted coupons. A ``once`` discount is
    pinned to the first billing period it meets (``persist=False`` for previews); ``terms`` is updated in
    place so later billing points of the same run see the pin.
    """
    if not terms or not rows:
        return
    lines = [
        DiscountableLine(
            key=i,
            amount=r.amount - r.discount_amount,
            billing_period_start=r.billing_period_start or ctx.now(),
            currency=r.currency,
            product_id=prices[r.price_id].product_id if r.price_id in prices else None,
            plan_id=plans.get(r.subscription_id or ""),
        )
        for i, r in enumerate(rows)
    ]
    for i, t in enumerate(terms):
        if t.duration is Duration.ONCE and t.once_period_start is None:
            start = resolve_once_period(discount=t, lines=lines)
            if start is not None:
                if persist:
                    coupons.set_applied_period(ctx, t.id, period_start=start)
                terms[i] = replace(t, once_period_start=start)
    allocations = allocate(lines=lines, discounts=terms, currency=Currency.of(rows[0].currency))
    for row, parts in zip(rows, allocations, strict=True):
        if parts:
            added = [{"discount_id": d, "coupon_id": c, "amount": a} for d, c, a in parts]
            row.discounts = [*row.discounts, *added]
            row.discount_amount += sum(a for _, _, a in parts)


def _own_terms(batch: Batch, sub: Subscription) -> list[DiscountTerms]:
    """The discounts applied to ``sub`` itself (stacked before the customer's)."""
    if sub.id not in batch.terms:
        rows = batch.discount_owners.get(sub.customer_id, [])
        batch.terms[sub.id] = [t for owner, t in rows if owner == sub.id]
    return batch.terms[sub.id]


def _customer_terms(batch: Batch, customer_id: str) -> list[DiscountTerms]:
    """The customer's own discounts: applied once per invoice, across all its lines."""
    key = f"customer:{customer_id}"
    if key not in batch.terms:
        batch.terms[key] = [t for owner, t in batch.discount_owners.get(customer_id, []) if owner is None]
    return batch.terms[key]


def discount_rows(
    batch: Batch,
    customer_id: str,
    subs: list[Subscription],
    rows: list[InvoiceLineItem],
    *,
    persist: bool = True,
) -> None:
    """Apply every discount to the rows of one invoice: each subscription's own, then the customer's."""
    plans = {sub.id: sub.plan_id for sub in subs}
    for sub in subs:
        own = [r for r in rows if r.subscription_id == sub.id]
        _discount(batch.ctx, _own_terms(batch, sub), own, batch.prices, plans, persist=persist)
    _discount(batch.ctx, _customer_terms(batch, customer_id), rows, batch.prices, plans, persist=persist)


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


def _bill(batch: Batch, customer_id: str, *, reason: str | None = None) -> list[Invoice]:
    """Bill, in order, every billing point of one customer of ``batch`` up to ``batch.now``."""
    customer = batch.customers[customer_id]
    subs = batch.subs.get(customer_id, [])
    created: list[Invoice] = []
    while True:
        due = [s for s in subs if s.next_billing_at is not None and s.next_billing_at <= batch.now]
        if not due:
            break
        at = min(s.next_billing_at for s in due if s.next_billing_at is not None)
        group = [s for s in due if s.next_billing_at == at]
        actx = _at(batch.ctx, at)
        by_currency: dict[str, tuple[list[InvoiceLineItem], list[Subscription], bool]] = {}
        for sub in group:
            first = sub.status == SubscriptionStatus.INCOMPLETE or sub.current_period_start is None
            drafts = lines_at(batch, sub, at)
            rows = _line_rows(actx, sub, drafts, batch.prices, batch.products, batch.usage_details)
            batch.remember(rows)
            _advance(actx, sub, at)
            if rows:
                lines, owners, was_first = by_currency.get(sub.currency, ([], [], False))
                by_currency[sub.currency] = ([*lines, *rows], [*owners, sub], was_first or first)
        for currency, (rows, owners, first) in by_currency.items():
            discount_rows(batch, customer_id, owners, rows)
            why = reason or ("subscription_create" if first else "subscription_cycle")
            created.append(
                _make_invoice(
                    actx, customer, batch.org, currency, rows, owners, at, why, first, batch.line_views
                )
            )
            _settle_late(batch, owners, created[-1], at)
        _settle_late(batch, group, None, at)
    batch.created += created
    return created


def _settle_late(batch: Batch, subs: list[Subscription], invoice: Invoice | None, at: datetime) -> None:
    """Mark the late events examined for ``subs`` as settled (on ``invoice`` when one was made)."""
    for sub in subs:
        for late, billed in batch.late_examined.pop(sub.id, []):
            late.settled_at = at
            late.settled_invoice_id = invoice.id if invoice is not None and billed else None
            if late in batch.late[sub.id]:
                batch.late[sub.id].remove(late)


def bill_customer(ctx: Ctx, customer_id: str, *, now: datetime, reason: str | None = None) -> list[Invoice]:
    """Bill every billing point of the customer's subscriptions up to ``now``, in order, and finalize
    the drafts whose grace period is over. Returns the invoices created. Safe to run twice."""
    batch = Batch(ctx, [customer_id], now=now, lock=True)
    if customer_id not in batch.customers:
        ctx.get(Customer, customer_id, label="customer")  # raises NotFound
    created = _bill(batch, customer_id, reason=reason)
    batch.finish()
    return created


def _start_now(ctx: Ctx, sub: Subscription, at: datetime) -> tuple[Batch, Schedule, Period]:
    """The batch (customer locked), schedule and current period for billing ``sub`` at once at ``at``."""
    batch = Batch(ctx, [sub.customer_id], now=at, lock=True)
    batch.prices.update(_prices(ctx, [sub]))
    batch.products.update(_products(ctx, batch.prices))
    sched = schedule_of(sub)
    return batch, sched, sched.period_at(at)


def _period_drafts(
    batch: Batch,
    sub: Subscription,
    sched: Schedule,
    period: Period,
    usage: dict[str, usage_source.PriceUsage] | None,
    *,
    advance: bool,
    arrears: bool,
) -> list[LineDraft]:
    """What ``period`` of ``sub`` owes beyond what was billed for it, with ``usage`` measured (None: the
    usage is not looked at)."""
    for price_id, measured in (usage or {}).items():
        batch.usage_details[(sub.id, period.start, price_id)] = measured
    return diff(
        period=period,
        segments=_segments(sub, batch),
        billed=batch.billed_for(sub.id, period.start),
        currency=Currency.of(sub.currency),
        usage=None if usage is None else {pid: u.units for pid, u in usage.items()},
        usage_owed=None if usage is None else {pid: u.amount for pid, u in usage.items()},
        include_advance=advance,
        include_arrears=arrears,
        basis=sched.basis(period),
    )


def _invoice_now(
    ctx: Ctx, batch: Batch, sub: Subscription, drafts: list[LineDraft], *, at: datetime, reason: str
) -> Invoice | None:
    """One invoice of ``drafts``, discounted and finalized at once; None when there is nothing to bill."""
    actx = _at(ctx, at)
    rows = _line_rows(actx, sub, drafts, batch.prices, batch.products, batch.usage_details)
    if not rows:
        return None
    discount_rows(batch, sub.customer_id, [sub], rows)
    customer = batch.customers[sub.customer_id]
    inv = _make_invoice(
        actx, customer, batch.org, sub.currency, rows, [sub], at, reason, True, batch.line_views
    )
    batch.created.append(inv)
    batch.finish()
    return inv


def bill_now(ctx: Ctx, sub: Subscription, *, at: datetime, reason: str) -> Invoice | None:
    """Bill the current period's differences of one subscription right away (``always_invoice``,
    cancellation), finalized at once."""
    batch, sched, period = _start_now(ctx, sub, at)
    ended = sub.ended_at is not None and sub.ended_at <= at
    usage = None
    if ended:  # the last, partial period's usage is billed now: nothing bills this period later
        own = {it.price_id: batch.prices[it.price_id] for it in sub.items}
        usage = _usage(ctx, sub, Period(period.start, at), own) if at > period.start else {}
    drafts = _period_drafts(batch, sub, sched, period, usage, advance=True, arrears=ended)
    return _invoice_now(ctx, batch, sub, drafts, at=at, reason=reason)


def bill_usage_now(
    ctx: Ctx,
    sub: Subscription,
    *,
    at: datetime,
    reason: str = "usage_threshold",
    price_ids: set[str] | None = None,
) -> Invoice | None:
    """Progressive billing: invoice the usage of ``sub``'s current period received by ``at``, less what was
    already billed for that period, finalized at once. Returns None when nothing more is owed. The
    period-end invoice bills only the rest: billed usage lines are what the engine diffs against."""
    batch, sched, period = _start_now(ctx, sub, at)
    own = {it.price_id: batch.prices[it.price_id] for it in sub.items}
    metered = [p for p in own.values() if p.metric_code and (price_ids is None or p.id in price_ids)]
    if not metered:
        return None
    # every event received for the period so far (a gauge is integrated to the period end; the
    # period-end invoice corrects it if the level changes later)
    usage = usage_source.price_usage(ctx, sub=sub, prices=metered, start=period.start, end=period.end)
    drafts = _period_drafts(batch, sub, sched, period, usage, advance=False, arrears=False)
    usage_drafts = [d for d in drafts if d.kind == "usage" and d.amount > 0]
    return _invoice_now(ctx, batch, sub, usage_drafts, at=at, reason=reason)


def _due_customers(
    session: Session, *, now: datetime, clock_id: str | None, limit: int, skip: set[str]
) -> list[tuple[str, str]]:
    """Claim up to ``limit`` customers with a billing point or a finalization due by ``now``.

    Candidates come from the ``next_billing_at`` and ``auto_finalize_at`` indexes in due order (a range
    scan that stops early, whatever the table size), in a subquery of the claiming statement (one round
    trip, no id list shipped back and forth); on PostgreSQL they are locked with SKIP LOCKED, so
    concurrent workers take different customers. When every candidate is taken, a wider window is tried
    once before giving up (the other workers are on it).
    """
    on_clock = (
        Subscription.test_clock_id.is_(None) if clock_id is None else Subscription.test_clock_id == clock_id
    )
    draft_clock = Invoice.test_clock_id.is_(None) if clock_id is None else Invoice.test_clock_id == clock_id
    postgres = session.get_bind().dialect.name == "postgresql"
    for window in (limit * 4, limit * 32):
        due_subs = (
            select(Subscription.customer_id)
            .where(Subscription.next_billing_at <= now, on_clock)
            .order_by(Subscription.next_billing_at)
            .limit(window)
            .subquery()
        )
        due_drafts = (
            select(Invoice.customer_id)
            .where(Invoice.status == InvoiceStatus.DRAFT.value, Invoice.auto_finalize_at <= now, draft_clock)
            .order_by(Invoice.auto_finalize_at)
            .limit(window)
            .subquery()
        )
        candidates = union(select(due_subs.c.customer_id), select(due_drafts.c.customer_id))
        stmt = select(Customer.id, Customer.org_id).where(Customer.id.in_(candidates))
        if skip:
            stmt = stmt.where(Customer.id.not_in(skip))
        stmt = stmt.order_by(Customer.id).limit(limit)
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True, of=Customer)
        claimed = [(cid, org) for cid, org in session.execute(stmt)]
        if claimed or not postgres:
            return claimed
    return []


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
    ``clock_id``), ``batch_size`` customers per transaction, claimed with SKIP LOCKED on PostgreSQL.

    A batch is billed with a handful of queries and written at once. If it fails, it is rolled back and
    billed again customer by customer; a customer that still fails is logged, recorded as a
    ``billing_failed`` alert and skipped for the rest of the run.
    """
    with _fewer_collections():
        return _run(
            sessions, now=now, clock_id=clock_id, batch_size=batch_size, actor=actor, progress=progress
        )


#: A billing batch allocates hundreds of thousands of short-lived objects (ORM rows, payloads); with
#: Python's default thresholds (700, 10, 10) the cyclic garbage collector then takes about a quarter of
#: the run's CPU time rescanning them. During a run, collections are made rarer (ADR 0011).
_GC_THRESHOLDS = (20_000, 20, 20)
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's thresholds while at least one billing run of the process is
    active (runs may overlap in threads: the last one out restores the previous thresholds)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*_GC_THRESHOLDS)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


def _run(
    sessions: Callable[[], Session],
    *,
    now: datetime,
    clock_id: str | None,
    batch_size: int,
    actor: Actor,
    progress: Callable[[int], None] | None,
) -> RunStats:
    stats = RunStats()
    failed: set[str] = set()
    while True:
        with sessions() as session:
            claimed = _due_customers(session, now=now, clock_id=clock_id, limit=batch_size, skip=failed)
            if not claimed:
                break
            by_org: dict[str, list[str]] = defaultdict(list)
            for customer_id, org_id in claimed:
                by_org[org_id].append(customer_id)
            try:
                made, due = _run_batch(session, by_org, now=now, actor=actor)
            except Exception:
                log.warning("billing_batch_failed_retrying_one_by_one", customers=len(claimed), exc_info=True)
                session.rollback()
                made = _run_one_by_one(session, by_org, now=now, actor=actor, stats=stats, failed=failed)
                due = len({inv.customer_id for inv in made})
            stats.customers += due
            stats.invoices += len(made)
            stats.lines += sum(len(i.lines) for i in made)
            failpoints.hit("billing.before_commit")
            session.commit()
        if progress is not None:
            progress(len(claimed))
    return stats


def _run_batch(
    session: Session, by_org: dict[str, list[str]], *, now: datetime, actor: Actor
) -> tuple[list[Invoice], int]:
    made: list[Invoice] = []
    due = 0
    for org_id, ids in by_org.items():
        ctx = Ctx(session=session, org_id=org_id, actor=actor, clock=FrozenClock(now))
        with buffered(session):
            batch = Batch(ctx, ids, now=now, attach=False)
            for customer_id in ids:
                made += _bill(batch, customer_id)
            batch.finish()
        due += len(batch.due)
    return made, due


def _run_one_by_one(
    session: Session,
    by_org: dict[str, list[str]],
    *,
    now: datetime,
    actor: Actor,
    stats: RunStats,
    failed: set[str],
) -> list[Invoice]:
    made: list[Invoice] = []
    for org_id, ids in by_org.items():
        for customer_id in ids:
            ctx = Ctx(session=session, org_id=org_id, actor=actor, clock=FrozenClock(now))
            try:
                with session.begin_nested():
                    made += bill_customer(ctx, customer_id, now=now)
            except Exception as exc:  # one customer's bad data must not stop the run
                log.exception("billing_failed", customer_id=customer_id)
                failed.add(customer_id)
                stats.errors += 1
                stats.failed.append(customer_id)
                _alert_failure(session, org_id, customer_id, exc, now)
    return made


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

"""CRM sync jobs: push billing state to connected CRMs, apply their deal changes to subscriptions.

Every unit of work is a ``sync_jobs`` row, so nothing is lost and everything is visible:

- **Outbound.** The outbox fan-out (:func:`enqueue_from_events`, called in the fan-out's transaction) turns
  ``customer.*``, ``subscription.*`` and ``invoice.*`` events into ``push_customer`` / ``push_subscription``
  jobs for each enabled integration of the organization (one pending job per object: later events coalesce
  into it, the push reads the current state anyway).
- **Inbound.** A verified CRM webhook (:func:`receive_changes`) or a ``poll`` job (the integration's
  recurring job, its cursor stored on the row) creates one ``inbound_change`` job per changed deal, deduped
  on the vendor's event id. The job reads the deal's current state and applies it in one transaction:
  closed-won with a plan creates the subscription (and the customer from the company, if unmapped); a plan
  that differs from the subscription's changes the plan; closed-lost cancels at the period end and won
  again before that end removes the cancel; a deleted deal only raises ``crm_object_deleted`` and marks
  its mapping (ADR 0037). Anything that does not map (unknown plan, wrong currency, no company, a billed
  deal in an open stage) fails the job with a clear error and a ``sync_failed`` alert, and changes
  nothing.
- **Running.** :func:`run_due` claims due jobs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, with a lease),
  calls the vendor with no transaction open, and records the outcome. ``RateLimited`` waits ``retry_after``;
  other retryable errors back off exponentially up to ``MAX_ATTEMPTS`` (then ``dead`` + alert); a
  non-retryable error fails at once. After every job the vendor's reported budget is checked: under 10 %
  left raises a ``rate_limit_warning`` alert.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from revflow import metrics
from revflow.domain.clock import Clock
from revflow.domain.delivery import RetryPolicy
from revflow.domain.errors import RevflowError
from revflow.domain.ids import new_id
from revflow.domain.money import Currency, round_to_minor
from revflow.services import crm_reconciliation, customers, emails, entity_mappings, subscriptions
from revflow.services.alerts import raise_alert
from revflow.services.context import Actor, Ctx
from revflow.services.integrations import open_credentials
from revflow.services.ports import (
    ConnectorError,
    CrmCompany,
    CrmConnector,
    CrmDeal,
    RateLimited,
    SecretBox,
    SecretUnreadable,
)
from revflow.storage.connector_models import Integration, SyncJob
from revflow.storage.hub_models import EntityMapping
from revflow.storage.models import Customer, Event, Invoice, Plan, Price, Subscription

__all__ = [
    "MAX_ATTEMPTS",
    "ConnectorFactory",
    "SyncDataError",
    "SyncStats",
    "billing_fields",
    "enqueue_from_events",
    "enqueue_job",
    "receive_changes",
    "run_due",
]

log = structlog.get_logger("revflow.crm_sync")

#: Builds the adapter of an integration from its record and opened credentials (bootstrap provides it).
ConnectorFactory = Callable[[Integration, dict[str, str]], CrmConnector]

MAX_ATTEMPTS = 8
RETRY = RetryPolicy(base=timedelta(seconds=30), factor=3, cap=timedelta(hours=1))
LEASE = timedelta(seconds=300)
#: Under this share of the vendor's budget left, a ``rate_limit_warning`` alert is raised.
RATE_LIMIT_WARNING_SHARE = Decimal("0.10")

#: Revflow object type ↔ the vendor's object type.
EXTERNAL_TYPES = {
    "hubspot": {"customer": "company", "subscription": "deal"},
    "salesforce": {"customer": "account", "subscription": "opportunity"},
}
UNFINISHED = ("pending", "running")
#: One per integration, re-armed after each run.
RECURRING = ("poll", "reconcile")


class SyncDataError(RevflowError):
    """CRM data that does not map onto Revflow (unknown plan, wrong currency, no company): not retryable."""

    code = "sync_data_error"


@dataclass
class SyncStats:
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    statuses: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- enqueue
def enqueue_job(
    session: Session,
    integration: Integration,
    *,
    kind: str,
    object_type: str | None,
    object_id: str | None,
    now: datetime,
    dedupe_key: str | None = None,
    payload: dict[str, Any] | None = None,
) -> SyncJob | None:
    """Add a job unless an equal one is waiting (same kind and object, still ``pending``) or the
    ``dedupe_key`` was seen; returns the new job or None."""
    if dedupe_key is not None:
        seen = session.scalar(
            select(SyncJob.id).where(
                SyncJob.integration_id == integration.id, SyncJob.dedupe_key == dedupe_key
            )
        )
        if seen is not None:
            return None
    elif object_id is not None:
        waiting = session.scalar(
            select(SyncJob.id).where(
                SyncJob.integration_id == integration.id,
                SyncJob.kind == kind,
                SyncJob.object_id == object_id,
                SyncJob.status == "pending",
                SyncJob.attempts == 0,
            )
        )
        if waiting is not None:
            return None
    job = SyncJob(
        id=new_id("sjob"),
        org_id=integration.org_id,
        integration_id=integration.id,
        kind=kind,
        direction="inbound" if kind in ("inbound_change", "poll", "reconcile") else "outbound",
        object_type=object_type,
        object_id=object_id,
        status="pending",
        attempts=0,
        next_run_at=now,
        dedupe_key=dedupe_key,
        payload=payload or {},
        result={},
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def _pushes(session: Session, ev: Event) -> list[tuple[str, str, str]]:
    """(kind, object_type, object_id) of the pushes an event calls for."""
    if ev.type.startswith("customer.") and ev.type != "customer.archived":
        return [("push_customer", "customer", ev.object_id)]
    if ev.type.startswith("subscription."):
        return [("push_subscription", "subscription", ev.object_id)]
    if ev.type.startswith("invoice.") and ev.object_type == "invoice":
        sub_id = ev.data.get("subscription") or ev.data.get("subscription_id")
        if not sub_id:
            sub_id = session.scalar(select(Invoice.subscription_id).where(Invoice.id == ev.object_id))
        return [("push_subscription", "subscription", str(sub_id))] if sub_id else []
    return []


def enqueue_from_events(session: Session, events: Iterable[Event], *, now: datetime) -> int:
    """Create the push jobs the events call for, for every enabled integration with ``push`` on; runs in
    the outbox fan-out's transaction, so an event is turned into its jobs exactly when it is dequeued.
    Returns the number of jobs created."""
    events = list(events)
    if not events:
        return 0
    org_ids = {ev.org_id for ev in events}
    by_org: dict[str, list[Integration]] = {}
    for integ in session.scalars(
        select(Integration).where(Integration.org_id.in_(org_ids), Integration.enabled.is_(True))
    ):
        if integ.settings.get("push", True):
            by_org.setdefault(integ.org_id, []).append(integ)
    if not by_org:
        return 0
    created = 0
    for ev in events:
        for integ in by_org.get(ev.org_id, []):
            for kind, object_type, object_id in _pushes(session, ev):
                if enqueue_job(
                    session, integ, kind=kind, object_type=object_type, object_id=object_id, now=now
                ):
                    created += 1
    return created


def receive_changes(
    session: Session, integration: Integration, changes: Iterable[Any], *, now: datetime
) -> int:
    """Store a verified webhook's deal changes (deletions too) as ``inbound_change`` jobs, once per event
    id; returns how many are new. Company changes are acknowledged and skipped (Revflow owns the billing
    fields)."""
    created = 0
    for change in changes:
        if change.object_type != "deal":
            continue
        payload = {"event_id": change.event_id, "property": change.property_name}
        if change.change == "deleted":
            payload["change"] = "deleted"
        job = enqueue_job(
            session,
            integration,
            kind="inbound_change",
            object_type="deal",
            object_id=change.external_id,
            now=now,
            dedupe_key=f"event:{change.event_id}",
            payload=payload,
        )
        created += job is not None
    return created


# ------------------------------------------------------------------------------------------- claim/run
def claim(session: Session, *, now: datetime, limit: int, lease: timedelta = LEASE) -> list[str]:
    """Lease up to ``limit`` due jobs (pending, or running with an expired lease); returns their ids.
    The caller commits."""
    stmt = (
        select(SyncJob)
        .join(Integration, Integration.id == SyncJob.integration_id)
        .where(
            Integration.enabled.is_(True),
            or_(
                (SyncJob.status == "pending") & (SyncJob.next_run_at <= now),
                (SyncJob.status == "running") & (SyncJob.locked_until <= now),
            ),
        )
        .order_by(SyncJob.next_run_at, SyncJob.created_at, SyncJob.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=SyncJob)
    jobs = list(session.scalars(stmt))
    for job in jobs:
        job.status, job.locked_until, job.updated_at = "running", now + lease, now
        job.attempts += 1
    session.flush()
    return [j.id for j in jobs]


def run_due(
    sessions: sessionmaker[Session],
    *,
    factory: ConnectorFactory,
    box: SecretBox,
    clock: Clock,
    batch_size: int = 50,
    max_rounds: int = 20,
    rng: random.Random | None = None,
) -> SyncStats:
    """Claim and run due jobs, round after round, until none is due (jobs that a job creates, such as the
    inbound changes of a poll, run in the same call). Safe in several workers at once."""
    rng = rng or random.Random()
    stats = SyncStats()
    for _ in range(max_rounds):
        with sessions() as s:
            ids = claim(s, now=clock.now(), limit=batch_size)
            s.commit()
        if not ids:
            break
        stats.claimed += len(ids)
        for job_id in ids:
            status = _run_one(sessions, job_id, factory=factory, box=box, clock=clock, rng=rng)
            stats.statuses[job_id] = status
            if status == "succeeded":
                stats.succeeded += 1
            elif status == "pending":
                stats.retried += 1
            elif status == "failed":
                stats.failed += 1
            elif status == "dead":
                stats.dead += 1
    return stats


@dataclass
class _Job:
    id: str
    org_id: str
    kind: str
    object_type: str | None
    object_id: str | None
    cursor: str | None
    attempts: int
    payload: dict[str, Any]


def _run_one(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    factory: ConnectorFactory,
    box: SecretBox,
    clock: Clock,
    rng: random.Random,
) -> str:
    with sessions() as s:
        row = s.get(SyncJob, job_id)
        if row is None:
            return "gone"
        integ = s.get(Integration, row.integration_id)
        if integ is None:  # deleted since the claim (its jobs go with it)
            return "gone"
        job = _Job(
            row.id,
            row.org_id,
            row.kind,
            row.object_type,
            row.object_id,
            row.cursor,
            row.attempts,
            row.payload,
        )
        s.expunge(integ)
    connector: CrmConnector | None = None
    try:
        connector = factory(integ, open_credentials(box, integ))
        handler = _HANDLERS[job.kind]
        handler(sessions, integ, connector, job, clock)
        status = "succeeded"
    except RateLimited as exc:
        status = _retry(sessions, job, integ, exc, clock, delay=timedelta(seconds=max(exc.retry_after, 1)))
    except ConnectorError as exc:
        if exc.retryable:
            delay = RETRY.delay(job.attempts, spread=rng.random())
            status = _retry(sessions, job, integ, exc, clock, delay=delay)
        else:
            status = _fail(sessions, job, integ, f"{exc.code or 'error'}: {exc}", exc.code, clock)
    except RevflowError as exc:
        status = _fail(sessions, job, integ, exc.message, exc.code, clock)
    except SecretUnreadable as exc:
        status = _fail(
            sessions, job, integ, f"credentials unreadable: {exc}", "credentials_unreadable", clock
        )
    except ValueError as exc:  # the vendor's data cannot be read (e.g. a non-numeric amount)
        status = _fail(sessions, job, integ, str(exc), "unreadable_data", clock)
    except Exception as exc:  # a bug or the database: recorded and retried, never swallowed
        log.exception("sync_job_error", job=job.id)
        delay = RETRY.delay(job.attempts, spread=rng.random())
        status = _retry(sessions, job, integ, exc, clock, delay=delay)
    if connector is not None:
        _check_budget(sessions, integ, connector, clock)
    return status


def _finish(session: Session, job_id: str, now: datetime, result: dict[str, Any]) -> None:
    row = session.get(SyncJob, job_id, with_for_update=True)
    assert row is not None
    row.status, row.locked_until, row.updated_at, row.finished_at = "succeeded", None, now, now
    row.last_error = row.error_code = None
    row.result = result
    metrics.SYNC_JOBS.labels(row.kind, "succeeded").inc()


def _recurring_result(row: SyncJob, now: datetime, result: dict[str, Any]) -> dict[str, Any]:
    """A recurring job's result: this run's figures plus its run and failure counts and last success."""
    return {
        **result,
        "succeeded_at": now.isoformat(),
        "runs": int(row.result.get("runs", 0)) + 1,
        "failures": int(row.result.get("failures", 0)),
    }


def _retry(
    sessions: sessionmaker[Session],
    job: _Job,
    integ: Integration,
    exc: Exception,
    clock: Clock,
    *,
    delay: timedelta,
) -> str:
    now = clock.now()
    code = getattr(exc, "code", None) or type(exc).__name__
    if job.attempts >= MAX_ATTEMPTS:
        return _fail(
            sessions, job, integ, f"gave up after {job.attempts} attempts: {exc}", code, clock, dead=True
        )
    with sessions() as s:
        row = s.get(SyncJob, job.id, with_for_update=True)
        assert row is not None
        row.status, row.locked_until, row.updated_at = "pending", None, now
        row.next_run_at = now + delay
        row.last_error, row.error_code = str(exc)[:2000], str(code)[:60]
        metrics.SYNC_JOBS.labels(row.kind, "retried").inc()
        s.commit()
    log.info("sync_job_retry", job=job.id, error=str(exc), delay=delay.total_seconds())
    return "pending"


def _fail(
    sessions: sessionmaker[Session],
    job: _Job,
    integ: Integration,
    message: str,
    code: str | None,
    clock: Clock,
    *,
    dead: bool = False,
) -> str:
    now = clock.now()
    status = "dead" if dead else "failed"
    with sessions() as s:
        row = s.get(SyncJob, job.id, with_for_update=True)
        assert row is not None
        row.status, row.locked_until, row.updated_at, row.finished_at = status, None, now, now
        row.last_error, row.error_code = message[:2000], (code or "error")[:60]
        if row.kind in RECURRING:  # recurring jobs fail loudly but run again later
            row.result = {
                **row.result,
                "runs": int(row.result.get("runs", 0)) + 1,
                "failures": int(row.result.get("failures", 0)) + 1,
            }
            row.status, row.next_run_at = (
                "pending",
                now + timedelta(seconds=int(integ.settings.get("poll_interval_seconds", 300))),
            )
            row.finished_at, row.attempts = None, 0
        raise_alert(
            s,
            org_id=integ.org_id,
            type="sync_failed",
            severity="error",
            message=f"{integ.system} sync job {job.kind} {job.object_id or ''} {status}: {message}".replace(
                "  ", " "
            ),
            dedupe_key=f"sync_failed:{job.id}",
            now=now,
            object_type="sync_job",
            object_id=job.id,
            details={
                "integration": integ.id,
                "system": integ.system,
                "kind": job.kind,
                "object_type": job.object_type,
                "object_id": job.object_id,
                "error": message,
                "code": code,
            },
        )
        metrics.SYNC_JOBS.labels(job.kind, status).inc()
        s.commit()
    log.warning("sync_job_failed", job=job.id, status=status, error=message)
    return status


def _check_budget(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, clock: Clock
) -> None:
    budget = connector.rate_limit()
    if budget.limit is None or budget.remaining is None or budget.limit <= 0:
        return
    if Decimal(budget.remaining) >= RATE_LIMIT_WARNING_SHARE * budget.limit:
        return
    with sessions() as s:
        raise_alert(
            s,
            org_id=integ.org_id,
            type="rate_limit_warning",
            message=(
                f"{integ.system}: {budget.remaining} of {budget.limit} requests left in the current window; "
                "sync jobs will wait for the vendor's Retry-After when it is used up."
            ),
            dedupe_key=f"rate_limit_warning:{integ.id}",
            now=clock.now(),
            object_type="integration",
            object_id=integ.id,
            details={
                "system": integ.system,
                "limit": budget.limit,
                "remaining": budget.remaining,
                "window_seconds": budget.window_seconds,
            },
        )
        s.commit()
    metrics.RATE_LIMIT_WARNINGS.labels(integ.system).inc()


# -------------------------------------------------------------------------------------------- billing
def _mrr(session: Session, sub: Subscription, at: datetime) -> int:
    """Monthly recurring revenue of the subscription's licensed recurring items at ``at``, minor units."""
    if sub.status in ("canceled", "incomplete_expired") or sub.ended_at is not None:
        return 0
    total = Decimal(0)
    items = [i for i in sub.items if i.start_at <= at and (i.end_at is None or i.end_at > at)]
    prices = {
        p.id: p for p in session.scalars(select(Price).where(Price.id.in_([i.price_id for i in items])))
    }
    per_month = {
        "month": Decimal(1),
        "year": Decimal(1) / 12,
        "week": Decimal(52) / 12,
        "day": Decimal(365) / 12,
    }
    for item in items:
        price = prices[item.price_id]
        if price.type != "recurring" or price.metric_code is not None or price.interval is None:
            continue
        amount = price.flat_amount + price.unit_amount * item.quantity
        total += amount * per_month.get(price.interval, Decimal(1)) / (price.interval_count or 1)
    currency = Currency.of(sub.currency)  # prices are in minor units, possibly fractional
    return round_to_minor(total.scaleb(-currency.exponent), currency)


def _major(minor: int, currency: str) -> str:
    exp = Currency.of(currency).exponent
    return f"{Decimal(minor).scaleb(-exp):.{exp}f}"


def billing_fields(session: Session, sub: Subscription, at: datetime) -> dict[str, str]:
    """The ``BILLING_FIELDS`` of a subscription, as pushed to its deal (and its customer's company)."""
    plan = session.get(Plan, sub.plan_id) if sub.plan_id else None
    invoices = list(
        session.scalars(
            select(Invoice)
            .where(Invoice.subscription_id == sub.id, Invoice.status.in_(("open", "paid", "uncollectible")))
            .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        )
    )
    overdue = sum(
        i.amount_remaining
        for i in invoices
        if i.status == "open" and i.due_date is not None and i.due_date < at.date()
    )
    latest = invoices[0] if invoices else None
    payment_status = "none" if latest is None else ("paid" if latest.status == "paid" else latest.status)
    renewal = sub.current_period_end if sub.status not in ("canceled",) else None
    last = session.scalar(
        select(Invoice)
        .where(Invoice.subscription_id == sub.id, Invoice.finalized_at.is_not(None))
        .order_by(Invoice.finalized_at.desc(), Invoice.id.desc())
        .limit(1)
    )
    return {
        "revflow_id": sub.id,
        "plan": plan.code if plan else "",
        "mrr": _major(_mrr(session, sub, at), sub.currency),
        "currency": sub.currency,
        "status": sub.status,
        "next_renewal": renewal.date().isoformat() if renewal else "",
        "payment_status": payment_status,
        "overdue_balance": _major(overdue, sub.currency),
        "last_invoice_number": (last.number or "") if last else "",
        "last_invoice_total": _major(last.total, last.currency) if last else "",
        "last_invoice_status": last.status if last else "",
    }


def _sub_now(session: Session, sub: Subscription, clock: Clock) -> datetime:
    if sub.test_clock_id:
        from revflow.storage.models import TestClock

        tc = session.get(TestClock, sub.test_clock_id)
        if tc is not None:
            return tc.frozen_time
    return clock.now()


def _mapping(
    session: Session, integ: Integration, *, object_type: str, object_id: str
) -> EntityMapping | None:
    return session.scalar(
        select(EntityMapping).where(
            EntityMapping.org_id == integ.org_id,
            EntityMapping.object_type == object_type,
            EntityMapping.object_id == object_id,
            EntityMapping.system == integ.system,
            EntityMapping.external_type == EXTERNAL_TYPES[integ.system][object_type],
        )
    )


def _mapped_object(session: Session, integ: Integration, *, object_type: str, external_id: str) -> str | None:
    return session.scalar(
        select(EntityMapping.object_id).where(
            EntityMapping.org_id == integ.org_id,
            EntityMapping.object_type == object_type,
            EntityMapping.system == integ.system,
            EntityMapping.external_type == EXTERNAL_TYPES[integ.system][object_type],
            EntityMapping.external_id == external_id,
        )
    )


def _ctx(session: Session, integ: Integration, clock: Clock) -> Ctx:
    return Ctx(session=session, org_id=integ.org_id, actor=Actor("system", f"sync:{integ.id}"), clock=clock)


def _company_of(session: Session, integ: Integration, customer: Customer, clock: Clock) -> CrmCompany:
    subs = list(
        session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id, Subscription.status != "canceled")
            .order_by(Subscription.created_at.desc())
        )
    )
    props = {"revflow_id": customer.id}
    if subs:
        sub = subs[0]
        fields = billing_fields(session, sub, _sub_now(session, sub, clock))
        props.update({k: v for k, v in fields.items() if k != "revflow_id" and v != ""})
        if len(subs) > 1:  # several subscriptions: the company shows the sum of their MRR
            total = sum(
                _mrr(session, s, _sub_now(session, s, clock)) for s in subs if s.currency == sub.currency
            )
            props["mrr"] = _major(total, sub.currency)
    mapping = _mapping(session, integ, object_type="customer", object_id=customer.id)
    domain = (customer.email or "").partition("@")[2] or None
    return CrmCompany(
        external_id=mapping.external_id if mapping else None,
        name=customer.name,
        domain=domain,
        properties=props,
    )


# ------------------------------------------------------------------------------------------- handlers
def _push_customer(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    assert job.object_id is not None
    with sessions() as s:
        customer = s.get(Customer, job.object_id)
        if customer is None or customer.org_id != integ.org_id:
            raise SyncDataError(f"customer {job.object_id} does not exist", code="object_missing")
        company = _company_of(s, integ, customer, clock)
    external_id = connector.upsert_company(company)
    with sessions() as s:
        ctx = _ctx(s, integ, clock)
        entity_mappings.link(
            ctx, object_type="customer", object_id=job.object_id, system=integ.system, external_id=external_id
        )
        result = {"external_id": external_id}
        _finish(s, job.id, clock.now(), result)
        s.commit()
    return result


def _push_subscription(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    assert job.object_id is not None
    with sessions() as s:
        sub = s.get(Subscription, job.object_id)
        if sub is None or sub.org_id != integ.org_id:
            raise SyncDataError(f"subscription {job.object_id} does not exist", code="object_missing")
        customer = s.get(Customer, sub.customer_id)
        assert customer is not None
        company = _company_of(s, integ, customer, clock)
        fields = billing_fields(s, sub, _sub_now(s, sub, clock))
        deal_map = _mapping(s, integ, object_type="subscription", object_id=sub.id)
        # A deal deleted in the CRM is not recreated behind the CRM user's back (ADR 0037); its company
        # is still kept current. Deleting the mapping (API) lets the next push create a new deal.
        deleted = deal_map is not None and bool(deal_map.metadata_.get("deleted_in_crm_at"))
        plan = s.get(Plan, sub.plan_id) if sub.plan_id else None
        mrr_minor = _mrr(s, sub, _sub_now(s, sub, clock))
        won_stage, lost_stage = _stages(integ)
        # A subscription set to cancel at the period end is a lost deal already: pushing "won" would
        # undo the rep's closed-lost (its echo would remove the scheduled cancel).
        ending = sub.status == "canceled" or sub.cancel_at_period_end
        deal = CrmDeal(
            external_id=deal_map.external_id if deal_map else None,
            name=f"{customer.name} – {plan.name if plan else 'subscription'}",
            company_external_id=None,
            stage=lost_stage if ending else won_stage,
            won=not ending,
            closed=True,
            plan_code=plan.code if plan else None,
            amount=Decimal(_major(mrr_minor * 12, sub.currency)),
            currency=sub.currency,
            properties={k: v for k, v in fields.items() if k != "plan" and v != ""},
        )
        customer_id = customer.id
    # The company first (idempotent), so the deal is associated with it.
    company_id = connector.upsert_company(company)
    if deleted:
        assert deal.external_id is not None
        with sessions() as s:
            entity_mappings.link(
                _ctx(s, integ, clock),
                object_type="customer",
                object_id=customer_id,
                system=integ.system,
                external_id=company_id,
            )
            skipped = {"skipped": "deleted_in_crm", "external_id": deal.external_id}
            _finish(s, job.id, clock.now(), {**skipped, "company_external_id": company_id})
            s.commit()
        return skipped
    deal_id = connector.upsert_deal(
        CrmDeal(
            **{**{f: getattr(deal, f) for f in deal.__dataclass_fields__}, "company_external_id": company_id}
        )
    )
    with sessions() as s:
        ctx = _ctx(s, integ, clock)
        entity_mappings.link(
            ctx, object_type="customer", object_id=customer_id, system=integ.system, external_id=company_id
        )
        entity_mappings.link(
            ctx,
            object_type="subscription",
            object_id=job.object_id,
            system=integ.system,
            external_id=deal_id,
            external_type=EXTERNAL_TYPES[integ.system]["subscription"],
        )
        result = {"external_id": deal_id, "company_external_id": company_id, "plan": deal.plan_code}
        _finish(s, job.id, clock.now(), result)
        s.commit()
    return result


def _poll(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    page = connector.changes_since(job.cursor, limit=100)
    now = clock.now()
    with sessions() as s:
        created = 0
        for deal in page.deals:
            if deal.external_id is None:
                continue
            stamp = deal.updated_at.isoformat() if deal.updated_at else ""
            created += (
                enqueue_job(
                    s,
                    integ,
                    kind="inbound_change",
                    object_type="deal",
                    object_id=deal.external_id,
                    now=now,
                    dedupe_key=f"poll:{deal.external_id}:{stamp}",
                    payload={"source": "poll"},
                )
                is not None
            )
        row = s.get(SyncJob, job.id, with_for_update=True)
        assert row is not None
        if page.cursor is not None:
            row.cursor = page.cursor
        interval = timedelta(seconds=int(integ.settings.get("poll_interval_seconds", 300)))
        row.status, row.locked_until, row.updated_at, row.finished_at = "pending", None, now, now
        row.next_run_at = now if page.has_more else now + interval
        row.attempts, row.last_error, row.error_code = 0, None, None
        row.result = _recurring_result(
            row, now, {"deals": len(page.deals), "companies": len(page.companies), "queued": created}
        )
        metrics.SYNC_JOBS.labels("poll", "succeeded").inc()
        s.commit()
    return {"queued": created}


def _inbound_change(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    assert job.object_id is not None
    if job.payload.get("change") == "deleted":
        return _deal_deleted(sessions, integ, connector, job, clock)
    deal = connector.get_deal(job.object_id)
    company: CrmCompany | None = None
    with sessions() as s:
        mapped = _mapped_object(s, integ, object_type="subscription", external_id=job.object_id)
        needs_company = (
            mapped is None
            and deal.won
            and deal.plan_code
            and deal.company_external_id
            and _mapped_object(s, integ, object_type="customer", external_id=deal.company_external_id) is None
        )
    if needs_company:
        assert deal.company_external_id is not None
        company = connector.get_company(deal.company_external_id)
    with sessions() as s:
        ctx = _ctx(s, integ, clock)
        result = apply_deal(ctx, integ, deal, company=company)
        _finish(s, job.id, clock.now(), result)
        s.commit()
    return result


def _deal_deleted(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    """A deal deleted in the CRM: billing goes on. The deal is read again (a restored deal is no news);
    when it is gone, the subscription's mapping is marked ``deleted_in_crm_at`` (pushes skip it,
    reconciliation leaves it to the alert) and a ``crm_object_deleted`` alert asks a human to decide."""
    assert job.object_id is not None
    gone = crm_reconciliation.fetch(connector, "subscription", job.object_id) is None
    with sessions() as s:
        ctx = _ctx(s, integ, clock)
        mapping = s.scalar(
            select(EntityMapping).where(
                EntityMapping.org_id == integ.org_id,
                EntityMapping.system == integ.system,
                EntityMapping.external_type == EXTERNAL_TYPES[integ.system]["subscription"],
                EntityMapping.external_id == job.object_id,
            )
        )
        if mapping is None or not gone:
            result = {"action": "none", "reason": "deal not mapped" if mapping is None else "deal exists"}
        else:
            now = ctx.now()
            entity_mappings.update_mapping(
                ctx,
                mapping.id,
                changes={
                    "metadata": {
                        **mapping.metadata_,
                        "deleted_in_crm_at": now.isoformat(),
                        "deleted_event": job.payload.get("event_id"),
                    }
                },
            )
            raise_alert(
                s,
                org_id=integ.org_id,
                type="crm_object_deleted",
                severity="error",
                message=(
                    f"{integ.system} {EXTERNAL_TYPES[integ.system]['subscription']} {job.object_id} of "
                    f"subscription {mapping.object_id} was deleted in the CRM; the subscription still "
                    "bills. Cancel it in Revflow if that was meant, or delete the mapping to push a new deal."
                ),
                dedupe_key=f"crm_object_deleted:{integ.id}:{job.object_id}",
                now=now,
                object_type="subscription",
                object_id=mapping.object_id,
                details={
                    "system": integ.system,
                    "integration": integ.id,
                    "external_id": job.object_id,
                    "mapping": mapping.id,
                },
            )
            result = {"action": "deletion_recorded", "subscription": mapping.object_id}
        _finish(s, job.id, clock.now(), result)
        s.commit()
    return result


def _reconcile(
    sessions: sessionmaker[Session], integ: Integration, connector: CrmConnector, job: _Job, clock: Clock
) -> dict[str, Any]:
    with sessions() as s:
        busy = set(
            s.scalars(
                select(SyncJob.object_id).where(
                    SyncJob.integration_id == integ.id,
                    SyncJob.kind.in_(("push_customer", "push_subscription")),
                    SyncJob.status.in_(UNFINISHED),
                )
            )
        )
        expected: dict[tuple[str, str, str], dict[str, str]] = {}
        for object_type, object_id, external_id in crm_reconciliation.mappings(s, integ):
            if object_id in busy:  # about to be pushed: compared on the next run
                continue
            if object_type == "customer":
                customer = s.get(Customer, object_id)
                if customer is not None:
                    company = _company_of(s, integ, customer, clock)
                    expected[(object_type, object_id, external_id)] = {
                        **company.properties,
                        "name": company.name,
                    }
            else:
                sub = s.get(Subscription, object_id)
                if sub is not None:
                    expected[(object_type, object_id, external_id)] = billing_fields(
                        s, sub, _sub_now(s, sub, clock)
                    )
    mismatches: list[crm_reconciliation.Mismatch] = []
    for (object_type, object_id, external_id), fields in expected.items():
        mismatches += crm_reconciliation.compare(
            object_type=object_type,
            object_id=object_id,
            external_id=external_id,
            expected=fields,
            actual=crm_reconciliation.fetch(connector, object_type, external_id),
            fields=crm_reconciliation.COMPANY_FIELDS
            if object_type == "customer"
            else crm_reconciliation.DEAL_FIELDS,
        )
    now = clock.now()
    with sessions() as s:
        found = crm_reconciliation.record_mismatches(
            s, integ, mismatches, checked=[k[1] for k in expected], now=now
        )
        row = s.get(SyncJob, job.id, with_for_update=True)
        assert row is not None
        hours = int(integ.settings.get("reconcile_interval_hours", 24))
        row.status, row.locked_until, row.updated_at, row.finished_at = "pending", None, now, now
        row.next_run_at = now + timedelta(hours=hours)
        row.attempts, row.last_error, row.error_code = 0, None, None
        row.result = _recurring_result(row, now, {"checked": len(expected), "mismatches": found})
        metrics.SYNC_JOBS.labels("reconcile", "succeeded").inc()
        s.commit()
    return {"checked": len(expected), "mismatches": found}


_HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "reconcile": _reconcile,
    "push_customer": _push_customer,
    "push_subscription": _push_subscription,
    "poll": _poll,
    "inbound_change": _inbound_change,
}


# ---------------------------------------------------------------------------------------------- inbound
def _plan_by_code(ctx: Ctx, code: str) -> Plan:
    plan = ctx.session.scalar(
        select(Plan).where(Plan.org_id == ctx.org_id, func.lower(Plan.code) == code.strip().lower())
    )
    if plan is None or not plan.active:
        raise SyncDataError(
            f"unknown plan {code!r}: no active Revflow plan has this code", code="unknown_plan"
        )
    return plan


def _check_currency(deal: CrmDeal, currency: str) -> None:
    if deal.currency and deal.currency.upper() != currency.upper():
        raise SyncDataError(
            f"deal {deal.external_id} is in {deal.currency.upper()}, "
            f"the subscription bills in {currency.upper()}",
            code="currency_mismatch",
        )


def apply_deal(ctx: Ctx, integ: Integration, deal: CrmDeal, *, company: CrmCompany | None) -> dict[str, Any]:
    """Apply a deal's current state to Revflow in the caller's transaction; returns what was done
    (``{"action": "none" | "plan_changed" | "subscription_created", ...}``). Raises SyncDataError (or the
    services' errors) when the deal does not map; the caller rolls back, so nothing changes."""
    assert deal.external_id is not None
    sub_id = _mapped_object(ctx.session, integ, object_type="subscription", external_id=deal.external_id)
    if sub_id is None and deal.properties.get("revflow_id", "").startswith("sub_"):
        candidate = ctx.session.get(Subscription, deal.properties["revflow_id"])
        if candidate is not None and candidate.org_id == ctx.org_id:
            sub_id = candidate.id
            entity_mappings.link(
                ctx,
                object_type="subscription",
                object_id=sub_id,
                system=integ.system,
                external_id=deal.external_id,
                external_type=EXTERNAL_TYPES[integ.system]["subscription"],
            )
    if sub_id is not None:
        return _apply_mapped_deal(ctx, integ, deal, sub_id)
    if not deal.won or not deal.plan_code:
        return {"action": "none", "reason": "deal not won with a plan"}
    plan = _plan_by_code(ctx, deal.plan_code)
    customer_id = None
    if deal.company_external_id:
        customer_id = _mapped_object(
            ctx.session, integ, object_type="customer", external_id=deal.company_external_id
        )
    if customer_id is None:
        if company is None or company.external_id is None:
            raise SyncDataError(
                f"deal {deal.external_id} has no company to bill: associate one in the CRM", code="no_company"
            )
        customer = customers.create_customer(
            ctx,
            name=company.name,
            currency=deal.currency.upper() if deal.currency else None,
            external_ids={integ.system: company.external_id},
        )
        customer_id = customer.id
    customer_row = ctx.get(Customer, customer_id, label="customer")
    currency = (deal.currency or customer_row.currency or "").upper() or None
    sub = subscriptions.create_subscription(
        ctx,
        customer_id=customer_id,
        plan_id=plan.id,
        currency=currency,
        metadata={"crm_deal": deal.external_id},
    )
    entity_mappings.link(
        ctx,
        object_type="subscription",
        object_id=sub.id,
        system=integ.system,
        external_id=deal.external_id,
        external_type=EXTERNAL_TYPES[integ.system]["subscription"],
        on_conflict="raise",
    )
    return {
        "action": "subscription_created",
        "subscription": sub.id,
        "customer": customer_id,
        "plan": plan.code,
    }


def _stages(integ: Integration) -> tuple[str, str]:
    """The integration's won and lost stages (settings ``won_stage`` / ``lost_stage``, else the vendor's
    default pipeline's)."""
    hubspot = integ.system == "hubspot"
    won = integ.settings.get("won_stage") or ("closedwon" if hubspot else "Closed Won")
    lost = integ.settings.get("lost_stage") or ("closedlost" if hubspot else "Closed Lost")
    return str(won), str(lost)


def _outcome(integ: Integration, deal: CrmDeal, sub_id: str) -> str:
    """``won`` or ``lost`` for the deal of a billed subscription; any other stage is refused."""
    won_stage, lost_stage = _stages(integ)
    if deal.won or deal.stage == won_stage:
        return "won"
    if deal.closed or deal.stage == lost_stage:
        return "lost"
    raise SyncDataError(
        f"deal {deal.external_id} of subscription {sub_id} is in stage {deal.stage!r}, neither won nor "
        "lost: Revflow changes a billed subscription only from a won or lost stage",
        code="unknown_stage",
    )


def _apply_mapped_deal(ctx: Ctx, integ: Integration, deal: CrmDeal, sub_id: str) -> dict[str, Any]:
    """The deal of an existing subscription: closed-lost cancels at the period end; won again before that
    end removes the scheduled cancel; a won deal's plan property changes the plan. Everything is
    checked before anything changes (the caller's transaction rolls back on an error anyway)."""
    sub = ctx.get(Subscription, sub_id, for_update=True, label="subscription")
    outcome = _outcome(integ, deal, sub.id)
    ended = sub.status in ("canceled", "incomplete_expired") or sub.ended_at is not None
    if outcome == "lost":
        if ended or sub.cancel_at_period_end:
            return {"action": "none", "reason": "already canceled or set to cancel", "subscription": sub.id}
        subscriptions.cancel_subscription(ctx, sub.id, at="period_end")
        assert sub.cancel_at is not None
        return {"action": "cancel_scheduled", "subscription": sub.id, "cancel_at": sub.cancel_at.isoformat()}
    if ended:
        if deal.plan_code is None or _plan_unchanged(ctx, sub, deal.plan_code):
            return {"action": "none", "reason": "subscription ended", "subscription": sub.id}
        raise SyncDataError(
            f"deal {deal.external_id} is won again but subscription {sub.id} has ended: a new deal "
            "starts a new subscription",
            code="subscription_ended",
        )
    if not sub.cancel_at_period_end:
        return _apply_plan_change(ctx, integ, deal, sub)
    if deal.plan_code and not _plan_unchanged(ctx, sub, deal.plan_code):  # check before reactivating
        _plan_by_code(ctx, deal.plan_code)
        _check_currency(deal, sub.currency)
    subscriptions.reactivate_subscription(ctx, sub.id)
    result = _apply_plan_change(ctx, integ, deal, sub)
    return {**result, "action": "cancel_removed", "plan_action": result["action"]}


def _plan_unchanged(ctx: Ctx, sub: Subscription, code: str) -> bool:
    current = ctx.session.get(Plan, sub.plan_id) if sub.plan_id else None
    return current is not None and current.code.lower() == code.strip().lower()


def _apply_plan_change(ctx: Ctx, integ: Integration, deal: CrmDeal, sub: Subscription) -> dict[str, Any]:
    current = ctx.session.get(Plan, sub.plan_id) if sub.plan_id else None
    if not deal.plan_code or (current is not None and current.code.lower() == deal.plan_code.strip().lower()):
        return {"action": "none", "reason": "plan unchanged", "subscription": sub.id}
    plan = _plan_by_code(ctx, deal.plan_code)
    _check_currency(deal, sub.currency)
    at = _sub_now(ctx.session, sub, ctx.clock)
    before = _mrr(ctx.session, sub, at)
    subscriptions.change_subscription(
        ctx,
        sub.id,
        plan_id=plan.id,
        proration_behavior=str(integ.settings.get("proration_behavior") or "always_invoice"),
    )
    ctx.session.flush()
    ctx.session.refresh(sub)
    after = _mrr(ctx.session, sub, at)
    result = {
        "action": "plan_changed",
        "subscription": sub.id,
        "from_plan": current.code if current else None,
        "to_plan": plan.code,
        "mrr_before": before,
        "mrr_after": after,
    }
    if after > before:
        _notify_customer_success(ctx, integ, sub, result)
    return result


def _notify_customer_success(ctx: Ctx, integ: Integration, sub: Subscription, change: dict[str, Any]) -> None:
    """Tell customer success about an upgrade: an email to the integration's ``customer_success_email``."""
    to = integ.settings.get("customer_success_email")
    if not to:
        return
    customer = ctx.get(Customer, sub.customer_id, label="customer")
    emails.queue_email(
        ctx,
        template="customer_success_upgrade",
        to=str(to),
        context={
            "customer": {"name": customer.name, "id": customer.id},
            "subscription": sub.id,
            "from_plan": change["from_plan"],
            "to_plan": change["to_plan"],
            "mrr_before": f"{_major(change['mrr_before'], sub.currency)} {sub.currency}",
            "mrr_after": f"{_major(change['mrr_after'], sub.currency)} {sub.currency}",
            "system": integ.system,
        },
        dedupe_key=f"cs_upgrade:{sub.id}:{change['to_plan']}:{ctx.now().isoformat()}",
        object_type="subscription",
        object_id=sub.id,
    )

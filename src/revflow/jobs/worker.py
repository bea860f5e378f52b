"""The background worker: runs each job once per cycle, inside ``revflow serve`` or alone.

Jobs take no objects, only the container, and are safe to run twice: the billing run bills what fell
due (and finalizes drafts whose grace period ended); the outbox job delivers domain events to webhook
endpoints; the payment jobs send charges and retries, settle sandbox debits, run dunning deadlines, send
emails and reconcile with the gateway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog
from sqlalchemy import select

from revflow import metrics
from revflow.adapters.payments.sandbox import SandboxGateway
from revflow.bootstrap import Container
from revflow.domain.delivery import RetryPolicy
from revflow.services import (
    billing,
    crm_sync,
    dunning,
    emails,
    gateway_events,
    idempotency,
    job_runs,
    outbox,
    payments,
    reconciliation,
)
from revflow.storage.models import TestClock

__all__ = ["Worker"]

log = structlog.get_logger("revflow.worker")

Job = Callable[[Container], int]


def purge_idempotency_keys(container: Container) -> int:
    """Delete Idempotency-Keys past their retention; returns how many."""
    with container.sessions() as session:
        n = idempotency.purge_expired(
            session, now=container.clock.now(), ttl_hours=container.settings.idempotency_ttl_hours
        )
        session.commit()
    return n


def run_billing(container: Container) -> int:
    """Bill every real-time customer with a billing point or a draft's grace period due; returns the
    number of invoices created. Safe in several workers at once (customers are claimed with SKIP LOCKED)."""
    stats = billing.run_due(
        container.sessions, now=container.clock.now(), batch_size=container.settings.billing_batch_size
    )
    metrics.BILLING_RUNS.inc()
    metrics.BILLING_RUN_ERRORS.inc(stats.errors)
    if stats.customers or stats.errors:
        log.info("billing_run", customers=stats.customers, invoices=stats.invoices, errors=stats.errors)
    return stats.invoices


def collect_payments(container: Container) -> int:
    """Send due charges (first attempts and dunning retries) and resolve stale or unknown ones through
    ``find_charge`` (the janitor); returns how many were handled. Safe in several workers at once."""
    stats = payments.run_collection(
        container.sessions,
        container.gateway,
        now=container.clock.now(),
        lease_seconds=container.settings.payment_lease_seconds,
    )
    if stats.claimed:
        log.info("payments_collected", claimed=stats.claimed, outcomes=stats.outcomes)
    for status in ("failed", "unknown", "requires_action"):
        if stats.outcomes.get(status):
            metrics.PAYMENT_ERRORS.labels(status).inc(stats.outcomes[status])
    return stats.claimed


def sandbox_events(container: Container) -> int:
    """Sandbox gateway only: settle the ACH debits due (real time, or each test clock's time) and feed the
    resulting events through the same path as webhooks; returns how many events were applied."""
    gateway = container.gateway
    if not isinstance(gateway, SandboxGateway):
        return 0
    now = container.clock.now()
    gateway.settle_due(now=now)
    with container.sessions() as session:
        clocks = [(r[0], r[1]) for r in session.execute(select(TestClock.id, TestClock.frozen_time))]
    for clock_id, frozen in clocks:
        gateway.settle_due(now=frozen, test_clock_id=clock_id)
    applied = 0
    for event in gateway.pending_events():
        with container.sessions() as session:
            gateway_events.receive(session, gateway=gateway.name, event=event, now=now)
        gateway.ack_event(event.id)
        applied += 1
    return applied


def dunning_deadlines(container: Container) -> int:
    """Final actions of bank-debit cases past their deadline; closes cases settled another way."""
    return dunning.run_deadlines(container.sessions, now=container.clock.now())


def deliver_emails(container: Container) -> int:
    """Deliver queued emails through the configured adapter (SMTP, or stored for the API)."""
    return emails.deliver_emails(
        container.sessions,
        container.email,
        now=container.clock.now(),
        sender_address=container.settings.email_from,
    )


#: How long a reconciliation run holds its claim (ADR 0038): a worker that dies mid-run, or a run that
#: failed, frees it then, and the next worker cycle runs it again.
RECONCILIATION_HOLD = timedelta(hours=1)


def reconcile_payments(container: Container, *, force: bool = False) -> int:
    """Compare the last 30 days of payments with the gateway, at most every
    ``reconciliation_interval_hours`` (``force``: now, unless another worker is running it); returns the
    number of discrepancies found. The last successful run is kept per gateway in the database
    (``job_runs``), so a restart does not run it early and two workers do not run it at once."""
    now = container.clock.now()
    sessions, gateway = container.sessions, container.gateway
    job, scope = "reconcile_payments", gateway.name
    every = timedelta(hours=container.settings.reconciliation_interval_hours)
    if not job_runs.claim(
        sessions, job=job, scope=scope, now=now, every=every, hold=RECONCILIATION_HOLD, force=force
    ):
        return 0
    try:
        report = reconciliation.reconcile(sessions, gateway, since=now - timedelta(days=30), now=now)
    except Exception as exc:
        job_runs.failed(sessions, job=job, scope=scope, at=container.clock.now(), error=repr(exc))
        raise
    job_runs.succeeded(sessions, job=job, scope=scope, started_at=now, at=container.clock.now())
    return len(report.discrepancies)


def delivery_config(container: Container) -> outbox.DeliveryConfig:
    """The outbox delivery settings of ``container``."""
    settings = container.settings
    return outbox.DeliveryConfig(
        policy=RetryPolicy(window=timedelta(hours=settings.webhook_retry_window_hours)),
        batch_size=settings.outbox_batch_size,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        disable_after=timedelta(days=settings.webhook_disable_after_days),
    )


def deliver_events(container: Container) -> int:
    """Fan new events out to their subscribers and deliver what is due (webhooks); returns the number of
    attempts. Safe in several workers at once (deliveries are claimed with SKIP LOCKED and a lease)."""
    stats = outbox.deliver_due(
        container.sessions,
        sender=container.webhook_sender,
        box=container.secret_box,
        clock=container.clock,
        config=delivery_config(container),
    )
    if stats.attempted:
        log.info(
            "outbox_run",
            attempted=stats.attempted,
            succeeded=stats.succeeded,
            failed=stats.failed,
            dead_lettered=stats.dead_lettered,
            disabled=stats.disabled,
        )
    return stats.attempted


def sync_crm(container: Container) -> int:
    """Run the due CRM sync jobs (polls, inbound changes, pushes); returns how many ran. Safe in several
    workers at once (jobs are claimed with SKIP LOCKED and a lease)."""
    stats = crm_sync.run_due(
        container.sessions,
        factory=container.crm_connector,
        box=container.secret_box,
        clock=container.clock,
    )
    if stats.claimed:
        log.info(
            "crm_sync_run",
            claimed=stats.claimed,
            succeeded=stats.succeeded,
            retried=stats.retried,
            failed=stats.failed,
            dead=stats.dead,
        )
    return stats.claimed


# Order matters: inbound CRM changes first (a plan change bills and finalizes an invoice), then the charge,
# emails, the events' webhooks (their fan-out creates the CRM pushes), then those pushes: one cycle carries
# a CRM plan change through to the CRM showing the new plan.
JOBS: tuple[tuple[str, Job], ...] = (
    ("crm_inbound", sync_crm),
    ("billing", run_billing),
    ("collect_payments", collect_payments),
    ("sandbox_events", sandbox_events),
    ("dunning_deadlines", dunning_deadlines),
    ("deliver_emails", deliver_emails),
    ("reconcile_payments", reconcile_payments),
    ("outbox", deliver_events),
    ("crm_push", sync_crm),
    ("purge_idempotency_keys", purge_idempotency_keys),
)


class Worker:
    def __init__(self, container: Container):
        self.container = container
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """Run every job once; returns how much each did. A failing job is logged and retried next cycle."""
        done: dict[str, int] = {}
        for name, job in JOBS:
            try:
                done[name] = job(self.container)
            except Exception:
                log.exception("job_failed", job=name)
                done[name] = -1
        return done

    def run_forever(self) -> None:
        log.info("worker_started", interval=self.container.settings.worker_interval)
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.container.settings.worker_interval)
        log.info("worker_stopped")

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="revflow-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

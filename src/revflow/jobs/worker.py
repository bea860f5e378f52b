"""The background worker: runs each job once per cycle, inside ``revflow serve`` or alone.

Jobs take no objects, only the container, and are safe to run twice: the billing run bills what fell
due (and finalizes drafts whose grace period ended); the outbox job delivers domain events to webhook
endpoints; later issues add payment retries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog

from revflow import metrics
from revflow.bootstrap import Container
from revflow.domain.delivery import RetryPolicy
from revflow.services import billing, idempotency, outbox

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


JOBS: tuple[tuple[str, Job], ...] = (
    ("billing", run_billing),
    ("outbox", deliver_events),
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

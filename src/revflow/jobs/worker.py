"""The background worker: runs each job once per cycle, inside ``revflow serve`` or alone.

Jobs take no objects, only the container, and are safe to run twice: the billing run bills what fell
due (and finalizes drafts whose grace period ended); later issues add payment retries and outbox delivery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from revflow.bootstrap import Container
from revflow.services import billing, idempotency

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
    if stats.customers or stats.errors:
        log.info("billing_run", customers=stats.customers, invoices=stats.invoices, errors=stats.errors)
    return stats.invoices


JOBS: tuple[tuple[str, Job], ...] = (
    ("billing", run_billing),
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

"""Periodic jobs keep their state in the database: a restart does not rerun them early, two workers do
not run them in the same window, a failed run is retried once its claim lapses (ADR 0038)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from revflow.bootstrap import Container, build
from revflow.config import Settings
from revflow.domain.clock import FrozenClock
from revflow.jobs.worker import RECONCILIATION_HOLD, reconcile_payments
from revflow.services import job_runs
from revflow.storage.job_models import JobRun
from revflow.storage.models import Alert, Payment
from tests.conftest import Tenant
from tests.integration.payment_helpers import T0, clock, customer, frozen_container, open_invoice, work

DAY = timedelta(hours=24)  # the default reconciliation interval


@pytest.fixture
def container(db_url: str) -> Iterator[Container]:
    yield from frozen_container(db_url)


@pytest.fixture
def second_worker(db_url: str, container: Container) -> Iterator[Container]:
    """Another worker process on the same database: its own container, clock and memory."""
    c = build(
        Settings(database_url=db_url, payment_lease_seconds=0), clock=FrozenClock(T0), auto_migrate=False
    )
    yield c
    c.close()


def _mismatched_payment(t: Tenant, container: Container) -> None:
    """A card payment collected by one worker cycle at T0 (whose reconciliation found it in order), then
    changed on Revflow's side so that the next reconciliation finds an amount mismatch."""
    inv = open_invoice(t, customer(t))
    work(container)
    (payment,) = t.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
    with container.sessions() as s:
        s.get_one(Payment, payment["id"]).amount = 4999
        s.commit()


def _discrepancy_alerts(container: Container) -> int:
    with container.sessions() as s:
        return int(
            s.scalar(select(func.count()).select_from(Alert).where(Alert.type == "payment_discrepancy")) or 0
        )


def _state(container: Container) -> JobRun:
    with container.sessions() as s:
        return s.scalars(select(JobRun)).one()


class TestReconciliationSchedule:
    def test_a_restarted_worker_waits_for_the_interval_since_the_last_run(
        self, tenant: Tenant, container: Container, second_worker: Container
    ) -> None:
        _mismatched_payment(tenant, container)
        restarted = second_worker
        assert isinstance(restarted.clock, FrozenClock)

        restarted.clock.advance(DAY - timedelta(minutes=1))
        within = reconcile_payments(restarted)
        alerts_within = _discrepancy_alerts(restarted)
        restarted.clock.advance(timedelta(minutes=1))
        due = reconcile_payments(restarted)

        assert (within, alerts_within) == (0, 0)
        assert (due, _discrepancy_alerts(restarted)) == (1, 1)
        state = _state(restarted)
        assert (state.job, state.scope) == ("reconcile_payments", "sandbox")
        assert (state.last_succeeded_at, state.claimed_until, state.failures) == (T0 + DAY, None, 0)

    def test_a_second_worker_does_not_run_it_while_the_first_holds_the_run(
        self, tenant: Tenant, container: Container, second_worker: Container
    ) -> None:
        _mismatched_payment(tenant, container)
        assert isinstance(second_worker.clock, FrozenClock)
        now = clock(container).advance(DAY).now()
        second_worker.clock.advance(DAY)
        first = job_runs.claim(
            container.sessions,
            job="reconcile_payments",
            scope="sandbox",
            now=now,
            every=DAY,
            hold=RECONCILIATION_HOLD,
        )

        second = reconcile_payments(second_worker)
        forced = reconcile_payments(second_worker, force=True)
        second_worker.clock.advance(RECONCILIATION_HOLD)
        after_the_hold = reconcile_payments(second_worker)

        assert first is True
        assert (second, forced) == (0, 0)
        assert after_the_hold == 1
        assert _state(second_worker).last_succeeded_at == now + RECONCILIATION_HOLD

    def test_force_runs_it_again_within_the_interval_when_nobody_holds_it(
        self, tenant: Tenant, container: Container
    ) -> None:
        _mismatched_payment(tenant, container)

        skipped = reconcile_payments(container)
        forced = reconcile_payments(container, force=True)

        assert (skipped, forced) == (0, 1)
        assert _state(container).last_succeeded_at == T0


def _claim(container: Container, *, now: datetime, hold: timedelta) -> bool:
    """Claim a daily job ``nightly`` of scope ``org_1`` at ``now``."""
    return job_runs.claim(container.sessions, job="nightly", scope="org_1", now=now, every=DAY, hold=hold)


class TestJobRuns:
    def test_a_failed_run_keeps_its_claim_until_the_hold_lapses(self, container: Container) -> None:
        hold = timedelta(minutes=30)

        taken = _claim(container, now=T0, hold=hold)
        job_runs.failed(
            container.sessions, job="nightly", scope="org_1", at=T0 + timedelta(minutes=2), error="Timeout()"
        )
        during = _claim(container, now=T0 + timedelta(minutes=29), hold=hold)
        after = _claim(container, now=T0 + hold, hold=hold)

        assert (taken, during, after) == (True, False, True)
        state = _state(container)
        assert (state.failures, state.last_error, state.last_succeeded_at) == (1, "Timeout()", None)
        assert (state.started_at, state.claimed_until) == (T0 + hold, T0 + 2 * hold)

    def test_a_successful_run_is_due_again_one_interval_after_it_started(self, container: Container) -> None:
        hold = timedelta(minutes=30)
        _claim(container, now=T0, hold=hold)
        job_runs.succeeded(
            container.sessions, job="nightly", scope="org_1", started_at=T0, at=T0 + timedelta(minutes=5)
        )

        early = _claim(container, now=T0 + DAY - timedelta(seconds=1), hold=hold)
        due = _claim(container, now=T0 + DAY, hold=hold)

        assert (early, due) == (False, True)
        state = _state(container)
        assert (state.last_succeeded_at, state.started_at, state.failures) == (T0, T0 + DAY, 0)

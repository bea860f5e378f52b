"""Periodic jobs whose state lives in the database (ADR 0038): due once per interval, run by one worker.

:func:`claim` decides, in one conditional UPDATE, whether this worker runs the job now: it is due (never
succeeded, or its last success started ``every`` ago or more) and nobody holds it (``claimed_until`` has
passed). The claim is committed before the job runs, so a second worker, or a restarted one, finds it
taken or not yet due. :func:`succeeded` records the run and frees the claim; :func:`failed` records the
error and keeps the claim until it lapses, so a failing job is retried once per claim, not every cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from revflow.storage.job_models import JobRun

__all__ = ["claim", "failed", "succeeded"]


def claim(
    sessions: Callable[[], Session],
    *,
    job: str,
    scope: str,
    now: datetime,
    every: timedelta,
    hold: timedelta,
    force: bool = False,
) -> bool:
    """Take the run of ``job`` for ``scope`` at ``now`` for ``hold`` when it is due and free; ``force``
    skips the interval, not another worker's claim. Commits; returns True when the caller should run it."""
    with sessions() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(JobRun).values(job=job, scope=scope, failures=0, updated_at=now).on_conflict_do_nothing()
        )
        conditions = [
            JobRun.job == job,
            JobRun.scope == scope,
            or_(JobRun.claimed_until.is_(None), JobRun.claimed_until <= now),
        ]
        if not force:
            conditions.append(
                or_(JobRun.last_succeeded_at.is_(None), JobRun.last_succeeded_at <= now - every)
            )
        taken = session.execute(
            update(JobRun)
            .where(*conditions)
            .values(started_at=now, claimed_until=now + hold, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return bool(taken.rowcount)  # type: ignore[attr-defined]


def succeeded(
    sessions: Callable[[], Session], *, job: str, scope: str, started_at: datetime, at: datetime
) -> None:
    """Record the run of ``job`` for ``scope`` that started at ``started_at`` and ended at ``at`` as its
    last success and free the claim: the next run is due ``every`` after ``started_at``."""
    _finish(
        sessions,
        job,
        scope,
        last_succeeded_at=started_at,
        claimed_until=None,
        failures=0,
        last_error=None,
        updated_at=at,
    )


def failed(sessions: Callable[[], Session], *, job: str, scope: str, at: datetime, error: str) -> None:
    """Record that the run of ``job`` for ``scope`` failed at ``at`` with ``error``; the claim stays until
    it lapses, then the next worker cycle tries again."""
    _finish(sessions, job, scope, failures=JobRun.failures + 1, last_error=error[:2000], updated_at=at)


def _finish(sessions: Callable[[], Session], job: str, scope: str, **values: object) -> None:
    with sessions() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.scope == scope)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()

"""Job state: the last successful run of a periodic job and who holds its current run (ADR 0038).

Imported by revflow.storage.models so that it registers on Base.metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from revflow.storage.models import Base

__all__ = ["JobRun"]


class JobRun(Base):
    """One periodic job for one scope: ``job`` ``reconcile_payments``, ``scope`` the gateway it compares
    (``sandbox``, ``stripe``).

    A job that looks at a whole gateway account (every organization's payments at once) is kept per
    gateway, not per organization. A worker claims a run by moving ``claimed_until`` into the future in
    one conditional UPDATE, so two workers never run it in the same window; ``last_succeeded_at`` (the
    start of the last run that finished) decides when it is due again, across restarts.
    """

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_succeeded_at: Mapped[datetime | None]
    #: The start of the run in progress (or of the last one that failed).
    started_at: Mapped[datetime | None]
    #: A run is held until then: a worker that dies mid-run frees it when this passes.
    claimed_until: Mapped[datetime | None]
    #: Failed runs since the last success, and the last one's error.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

"""job state: the last successful run of periodic jobs, and their claims (ADR 0038)

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-29 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import revflow.storage.types

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, revflow.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        _utc("last_succeeded_at"),
        _utc("started_at"),
        _utc("claimed_until"),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("job", "scope", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    op.drop_table("job_runs")

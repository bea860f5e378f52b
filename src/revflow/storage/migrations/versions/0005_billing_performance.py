"""billing-run performance (issue 3); plan changes scheduled for a period end

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import revflow.storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_plan_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("scheduled_plan_version_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("plan_change_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subscriptions_scheduled_plan_id_plans"), "plans", ["scheduled_plan_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subscriptions_scheduled_plan_version_id_plan_versions"),
            "plan_versions",
            ["scheduled_plan_version_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_subscriptions_scheduled_plan_version_id_plan_versions"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_subscriptions_scheduled_plan_id_plans"), type_="foreignkey")
        batch_op.drop_column("plan_change_at")
        batch_op.drop_column("scheduled_plan_version_id")
        batch_op.drop_column("scheduled_plan_id")

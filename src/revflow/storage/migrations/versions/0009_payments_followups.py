"""payments follow-ups: the dispute flag of an invoice (ADR 0035)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispute_status", sa.String(length=30), nullable=True))
    # Invoices whose payments were disputed before this revision: the dispute's current status.
    op.execute(
        "UPDATE invoices SET dispute_status = (SELECT d.status FROM disputes d"
        " WHERE d.invoice_id = invoices.id ORDER BY d.created_at DESC, d.id DESC LIMIT 1)"
        " WHERE EXISTS (SELECT 1 FROM disputes d WHERE d.invoice_id = invoices.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("dispute_status")

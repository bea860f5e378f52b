"""test clock numbering: clocks get a number per organization, documents on a clock a sequence per clock
(ADR 0040)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "test_clock_number_sequences",
        sa.Column("test_clock_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_test_clock_number_sequences_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["test_clock_id"],
            ["test_clocks.id"],
            name=op.f("fk_test_clock_number_sequences_test_clock_id_test_clocks"),
        ),
        sa.PrimaryKeyConstraint("test_clock_id", "kind", name=op.f("pk_test_clock_number_sequences")),
    )
    with op.batch_alter_table("test_clock_number_sequences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_clock_number_sequences_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("test_clocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
    _number_existing_clocks()
    with op.batch_alter_table("test_clocks", schema=None) as batch_op:
        batch_op.alter_column("number", existing_type=sa.Integer(), nullable=False)


def _number_existing_clocks() -> None:
    """Number the clocks of each organization 1, 2, 3… in the order they were created, and start the
    organization's ``test_clock`` sequence after the last one."""
    bind = op.get_bind()
    clocks = bind.execute(sa.text("SELECT id, org_id FROM test_clocks ORDER BY org_id, created_at, id")).all()
    last: dict[str, int] = {}
    for clock_id, org_id in clocks:
        last[org_id] = last.get(org_id, 0) + 1
        bind.execute(
            sa.text("UPDATE test_clocks SET number = :number WHERE id = :id"),
            {"number": last[org_id], "id": clock_id},
        )
    for org_id, value in last.items():
        bind.execute(
            sa.text(
                "INSERT INTO number_sequences (org_id, kind, last_value) VALUES (:org, 'test_clock', :value)"
            ),
            {"org": org_id, "value": value},
        )


def downgrade() -> None:
    op.execute("DELETE FROM number_sequences WHERE kind = 'test_clock'")
    with op.batch_alter_table("test_clocks", schema=None) as batch_op:
        batch_op.drop_column("number")
    with op.batch_alter_table("test_clock_number_sequences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_clock_number_sequences_org_id"))
    op.drop_table("test_clock_number_sequences")

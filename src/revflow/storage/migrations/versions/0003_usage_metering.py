"""usage metering (issue 4)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:30:00

On PostgreSQL ``usage_events`` is range-partitioned by ``timestamp``: one partition per month from
2024-01 to 2027-12 plus a default partition, all in the ``usage_partitions`` schema (so schema
comparisons see only the parent). ``revflow usage partitions`` creates later months ahead of time.
Deduplication lives in the unpartitioned ``usage_event_keys`` table (ADR 0013).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import revflow.storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TS = revflow.storage.types.UTCDateTime(timezone=True)
FIRST_MONTH, LAST_MONTH = (2024, 1), (2027, 12)


def _months() -> list[tuple[int, int]]:
    out, (y, m) = [], FIRST_MONTH
    while (y, m) <= LAST_MONTH:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_min_amount", revflow.storage.types.DecimalString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("event_max_amount", revflow.storage.types.DecimalString(length=64), nullable=True)
        )
    op.create_table(
        "billable_metrics",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("aggregation", sa.String(length=20), nullable=False),
        sa.Column("property", sa.String(length=100), nullable=True),
        sa.Column("filters", _JSON, nullable=False),
        sa.Column("group_by", sa.String(length=100), nullable=True),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_billable_metrics_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billable_metrics")),
        sa.UniqueConstraint("org_id", "code", name=op.f("uq_billable_metrics_org_id_code")),
    )
    with op.batch_alter_table("billable_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billable_metrics_org_id"), ["org_id"], unique=False)

    op.create_table(
        "usage_event_keys",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "transaction_id", name=op.f("pk_usage_event_keys")),
    )

    partitioning: dict[str, Any] = {"postgresql_partition_by": "RANGE (timestamp)"} if postgres else {}
    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("external_customer_id", sa.String(length=200), nullable=True),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("unique_value", sa.String(length=200), nullable=True),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("properties", _JSON, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", "timestamp", name=op.f("pk_usage_events")),
        **partitioning,
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_events_lookup", ["org_id", "customer_id", "metric_code", "timestamp"], unique=False
        )
        batch_op.create_index(
            "ix_usage_events_exceptions",
            ["org_id", "status", "id"],
            unique=False,
            postgresql_where=sa.text("status <> 'billable'"),
            sqlite_where=sa.text("status <> 'billable'"),
        )
    if postgres:
        op.execute("CREATE SCHEMA IF NOT EXISTS usage_partitions")
        for y, m in _months():
            ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
            op.execute(
                f"CREATE TABLE usage_partitions.usage_events_{y}_{m:02d} PARTITION OF usage_events "
                f"FOR VALUES FROM ('{y}-{m:02d}-01 00:00+00') TO ('{ny}-{nm:02d}-01 00:00+00')"
            )
        op.execute("CREATE TABLE usage_partitions.usage_events_default PARTITION OF usage_events DEFAULT")

    op.create_table(
        "usage_rollups",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("bucket", _TS, nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.BigInteger(), nullable=True),
        sa.Column("latest_at", _TS, nullable=True),
        sa.Column("latest_value", sa.BigInteger(), nullable=True),
        sa.Column("latest_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id",
            "customer_id",
            "metric_code",
            "group_key",
            "bucket",
            "shard",
            name=op.f("pk_usage_rollups"),
        ),
    )
    if postgres:
        # Every ingested batch updates rollup rows in place: room on each page keeps those updates HOT
        # (no new index entry per update) and frequent vacuums give the room back (ADR 0031).
        op.execute(
            "ALTER TABLE usage_rollups SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, "
            "autovacuum_vacuum_insert_scale_factor = 0.05)"
        )
    op.create_table(
        "usage_unique_values",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("bucket", _TS, nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "customer_id",
            "metric_code",
            "group_key",
            "bucket",
            "value",
            name=op.f("pk_usage_unique_values"),
        ),
    )
    op.create_table(
        "usage_thresholds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", revflow.storage.types.DecimalString(length=64), nullable=False),
        sa.Column("invoice", sa.Boolean(), nullable=False),
        sa.Column("last_period_start", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_usage_thresholds_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_usage_thresholds_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_thresholds")),
    )
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_thresholds_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_usage_thresholds_subscription_id"), ["subscription_id"], unique=False
        )
    op.create_table(
        "usage_imports",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rows_done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("accepted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_usage_imports_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("org_id", "digest", name=op.f("pk_usage_imports")),
    )


def downgrade() -> None:
    op.drop_table("usage_imports")
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_thresholds_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_usage_thresholds_org_id"))
    op.drop_table("usage_thresholds")
    op.drop_table("usage_unique_values")
    op.drop_table("usage_rollups")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_exceptions")
        batch_op.drop_index("ix_usage_events_lookup")
    op.drop_table("usage_events")  # drops its partitions too
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SCHEMA IF EXISTS usage_partitions CASCADE")
    op.drop_table("usage_event_keys")
    with op.batch_alter_table("billable_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billable_metrics_org_id"))
    op.drop_table("billable_metrics")
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_column("event_max_amount")
        batch_op.drop_column("event_min_amount")

"""usage assignment and late usage (issue 4 follow-up): late events billed on the next invoice; rollups
of events that name a subscription re-keyed by the subscription (ADR 0033, 0034)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 21:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import revflow.storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = revflow.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "usage_late_events",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("settled_invoice_id", sa.String(length=40), nullable=True),
        sa.Column("settled_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "event_id", name=op.f("pk_usage_late_events")),
    )
    op.create_index(
        "ix_usage_late_events_pending",
        "usage_late_events",
        ["org_id", "subscription_id", "settled_at"],
        unique=False,
    )
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recurring", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(
            sa.Column("last_multiple", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    _rekey_rollups()


def _rekey_rollups() -> None:
    """Rollups used to be keyed by customer for every event; events that name a subscription are now
    rolled up under the subscription id. Move their contribution: drop the affected hours' rollups of
    the customer and rebuild them (customer key and subscription keys) from the events."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        hour = "date_trunc('hour', e.timestamp, 'UTC')"
    else:
        hour = "strftime('%Y-%m-%d %H:00:00.000000', e.timestamp)"
    affected = f"""
        SELECT DISTINCT e.org_id, e.customer_id, e.metric_code, {hour} AS bucket
        FROM usage_events e
        WHERE e.status = 'billable' AND e.subscription_id IS NOT NULL AND e.customer_id IS NOT NULL
    """
    rows = bind.execute(sa.text(affected)).all()
    if not rows:
        return
    bind.execute(sa.text(f"CREATE TEMPORARY TABLE rekey_hours AS {affected}"))
    for table in ("usage_rollups", "usage_unique_values"):
        bind.execute(
            sa.text(
                f"""
                DELETE FROM {table} WHERE EXISTS (
                    SELECT 1 FROM rekey_hours h
                    WHERE {table}.org_id = h.org_id AND {table}.metric_code = h.metric_code
                      AND {table}.bucket = h.bucket
                      AND ({table}.customer_id = h.customer_id OR {table}.customer_id IN (
                          SELECT s.id FROM subscriptions s WHERE s.customer_id = h.customer_id))
                )
                """
            )
        )
    events = f"""
        SELECT e.*, coalesce(e.subscription_id, e.customer_id) AS owner, {hour} AS hb
        FROM usage_events e JOIN rekey_hours h
          ON e.org_id = h.org_id AND e.customer_id = h.customer_id AND e.metric_code = h.metric_code
         AND {hour} = h.bucket
        WHERE e.status = 'billable'
    """
    bind.execute(
        sa.text(
            f"""
            INSERT INTO usage_rollups (org_id, customer_id, metric_code, group_key, bucket, shard, events,
                total, min_value, max_value, latest_at, latest_value, latest_id)
            SELECT a.org_id, a.owner, a.metric_code, a.group_key, a.hb, 0, a.n, a.total, a.lo, a.hi,
                l.timestamp, l.value, l.id
            FROM (
                SELECT org_id, owner, metric_code, group_key, hb, count(*) AS n,
                    coalesce(sum(value), 0) AS total, min(value) AS lo, max(value) AS hi
                FROM ({events}) x GROUP BY org_id, owner, metric_code, group_key, hb
            ) a JOIN (
                SELECT org_id, owner, metric_code, group_key, hb, timestamp, value, id,
                    row_number() OVER (PARTITION BY org_id, owner, metric_code, group_key, hb
                                       ORDER BY timestamp DESC, id DESC) AS rank
                FROM ({events}) y
            ) l ON l.org_id = a.org_id AND l.owner = a.owner AND l.metric_code = a.metric_code
               AND l.group_key = a.group_key AND l.hb = a.hb AND l.rank = 1
            """
        )
    )
    bind.execute(
        sa.text(
            f"""
            INSERT INTO usage_unique_values (org_id, customer_id, metric_code, group_key, bucket, value)
            SELECT DISTINCT org_id, owner, metric_code, group_key, hb, unique_value
            FROM ({events}) z WHERE unique_value IS NOT NULL
            """
        )
    )
    bind.execute(sa.text("DROP TABLE rekey_hours"))


def downgrade() -> None:
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.drop_column("last_multiple")
        batch_op.drop_column("recurring")
    op.drop_index("ix_usage_late_events_pending", table_name="usage_late_events")
    op.drop_table("usage_late_events")

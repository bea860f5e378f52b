"""the integration hub (issue 6): outbox queue, webhook endpoints, attempt log, delivery ordering,
entity mappings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import revflow.storage.types
from revflow.domain.ids import new_id
from revflow.domain.mapping import customer_external_type

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, revflow.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled_events", _JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("disabled_reason", sa.String(length=20), nullable=True),
        _utc("disabled_at"),
        sa.Column("secret", sa.String(length=500), nullable=False),
        sa.Column("previous_secret", sa.String(length=500), nullable=True),
        _utc("previous_secret_expires_at"),
        _utc("failing_since"),
        sa.Column("metadata", _JSON, nullable=False),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_webhook_endpoints_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_org_id"), ["org_id"], unique=False)

    op.create_table(
        "outbox_queue",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_outbox_queue_event_id_events")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox_queue")),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        _utc("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_attempts_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_webhook_attempts_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempts_endpoint", ["endpoint_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_attempts_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_attempts_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "subscriber_type", sa.String(length=30), nullable=False, server_default="webhook_endpoint"
            )
        )
        batch_op.add_column(sa.Column("object_id", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("event_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(_utc("locked_until"))
        batch_op.add_column(_utc("first_attempt_at"))
        batch_op.add_column(_utc("delivered_at"))
        batch_op.add_column(_utc("dead_lettered_at"))
        batch_op.add_column(sa.Column("last_response_status", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_event_deliveries_order", ["subscriber", "object_id", "event_seq"], unique=False
        )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        for column in ("subscriber_type", "object_id", "event_seq"):
            batch_op.alter_column(column, server_default=None)

    _enqueue_trigger()

    op.create_table(
        "entity_mappings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=40), nullable=False),
        sa.Column("external_type", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_entity_mappings_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_mappings")),
        sa.UniqueConstraint(
            "org_id",
            "object_type",
            "object_id",
            "system",
            "external_type",
            name=op.f("uq_entity_mappings_org_id_object_type_object_id_system_external_type"),
        ),
        sa.UniqueConstraint(
            "org_id",
            "system",
            "external_type",
            "external_id",
            name=op.f("uq_entity_mappings_org_id_system_external_type_external_id"),
        ),
    )
    with op.batch_alter_table("entity_mappings", schema=None) as batch_op:
        batch_op.create_index("ix_entity_mappings_object", ["object_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entity_mappings_org_id"), ["org_id"], unique=False)
    _copy_customer_external_ids()


def _copy_customer_external_ids() -> None:
    """Every existing customer external id becomes a customer mapping (both tables have the same
    uniqueness, so the copy cannot conflict)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT org_id, customer_id, system, external_id FROM customer_external_ids ORDER BY id")
    ).all()
    if not rows:
        return
    now = datetime.now(UTC)
    table = sa.table(
        "entity_mappings",
        *(sa.column(c) for c in ("id", "org_id", "object_type", "object_id", "system", "external_type")),
        sa.column("external_id"),
        sa.column("metadata", _JSON),
        sa.column("created_at", revflow.storage.types.UTCDateTime(timezone=True)),
        sa.column("updated_at", revflow.storage.types.UTCDateTime(timezone=True)),
    )
    op.bulk_insert(
        table,
        [
            {
                "id": new_id("map"),
                "org_id": org_id,
                "object_type": "customer",
                "object_id": customer_id,
                "system": system,
                "external_type": customer_external_type(system),
                "external_id": external_id,
                "metadata": {},
                "created_at": now,
                "updated_at": now,
            }
            for org_id, customer_id, system, external_id in rows
        ],
    )


def _enqueue_trigger() -> None:
    """Every event row enters the outbox queue in the transaction that writes it, whoever writes it."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION revflow_outbox_enqueue() RETURNS trigger AS $$ BEGIN "
            "INSERT INTO outbox_queue (event_id) VALUES (NEW.id); RETURN NEW; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER events_outbox_enqueue AFTER INSERT ON events "
            "FOR EACH ROW EXECUTE FUNCTION revflow_outbox_enqueue()"
        )
    else:
        op.execute(
            "CREATE TRIGGER events_outbox_enqueue AFTER INSERT ON events "
            "BEGIN INSERT INTO outbox_queue (event_id) VALUES (NEW.id); END"
        )


def downgrade() -> None:
    with op.batch_alter_table("entity_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entity_mappings_org_id"))
        batch_op.drop_index("ix_entity_mappings_object")
    op.drop_table("entity_mappings")

    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_outbox_enqueue ON events")
        op.execute("DROP FUNCTION IF EXISTS revflow_outbox_enqueue()")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_outbox_enqueue")

    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_event_deliveries_order")
        for column in (
            "last_response_status",
            "dead_lettered_at",
            "delivered_at",
            "first_attempt_at",
            "locked_until",
            "event_seq",
            "object_id",
            "subscriber_type",
        ):
            batch_op.drop_column(column)

    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_org_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_event_id"))
        batch_op.drop_index("ix_webhook_attempts_endpoint")
    op.drop_table("webhook_attempts")
    op.drop_table("outbox_queue")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_org_id"))
    op.drop_table("webhook_endpoints")

"""payments and dunning (issue 5): gateway attempts on payments, payment methods, refunds, disputes,
dunning policies and cases, the email outbox, inbound gateway events and the sandbox gateway's books.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import revflow.storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_charges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("customer_ref", sa.String(length=40), nullable=False),
        sa.Column("payment_method", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("payment_method_type", sa.String(length=30), nullable=False),
        sa.Column("failure_code", sa.String(length=60), nullable=True),
        sa.Column("decline_code", sa.String(length=60), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("hard_decline", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("settles_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("test_clock_id", sa.String(length=40), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_charges")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sandbox_charges_idempotency_key")),
    )
    with op.batch_alter_table("sandbox_charges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sandbox_charges_created"), ["created"], unique=False)
        batch_op.create_index(batch_op.f("ix_sandbox_charges_customer_ref"), ["customer_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_sandbox_charges_settles_at"), ["settles_at"], unique=False)

    op.create_table(
        "sandbox_customers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("revflow_customer_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_customers")),
        sa.UniqueConstraint("revflow_customer_id", name=op.f("uq_sandbox_customers_revflow_customer_id")),
    )
    op.create_table(
        "sandbox_events",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_events")),
    )
    with op.batch_alter_table("sandbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_sandbox_events_pending", ["delivered", "created"], unique=False)

    op.create_table(
        "sandbox_payment_methods",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("behaviour", sa.String(length=60), nullable=False),
        sa.Column("customer_ref", sa.String(length=40), nullable=True),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("brand", sa.String(length=30), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("exp_month", sa.Integer(), nullable=True),
        sa.Column("exp_year", sa.Integer(), nullable=True),
        sa.Column("bank_name", sa.String(length=100), nullable=True),
        sa.Column("created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_payment_methods")),
    )
    with op.batch_alter_table("sandbox_payment_methods", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sandbox_payment_methods_customer_ref"), ["customer_ref"], unique=False
        )

    op.create_table(
        "dunning_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "retry_days",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("final_action", sa.String(length=30), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("send_emails", sa.Boolean(), nullable=False),
        sa.Column(
            "templates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_dunning_policies_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_policies")),
    )
    with op.batch_alter_table("dunning_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dunning_policies_org_id"), ["org_id"], unique=False)

    op.create_table(
        "emails",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("to", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("template", sa.String(length=60), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=True),
        sa.Column("object_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_emails_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sa.UniqueConstraint("org_id", "dedupe_key", name=op.f("uq_emails_org_id_dedupe_key")),
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_emails_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_emails_status", ["status"], unique=False)

    op.create_table(
        "gateway_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=True),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("raw_type", sa.String(length=80), nullable=False),
        sa.Column("object_ref", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("gateway_created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_gateway_events_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_events")),
        sa.UniqueConstraint("gateway", "event_id", name=op.f("uq_gateway_events_gateway_event_id")),
    )
    with op.batch_alter_table("gateway_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_events_org_id"), ["org_id"], unique=False)

    op.create_table(
        "sandbox_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["sandbox_charges.id"], name=op.f("fk_sandbox_refunds_charge_id_sandbox_charges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_refunds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sandbox_refunds_idempotency_key")),
    )
    with op.batch_alter_table("sandbox_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sandbox_refunds_charge_id"), ["charge_id"], unique=False)

    op.create_table(
        "dunning_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("policy_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_dunning_assignments_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_dunning_assignments_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_dunning_assignments_plan_id_plans")),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["dunning_policies.id"],
            name=op.f("fk_dunning_assignments_policy_id_dunning_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_assignments")),
        sa.UniqueConstraint("org_id", "customer_id", name=op.f("uq_dunning_assignments_org_id_customer_id")),
        sa.UniqueConstraint("org_id", "plan_id", name=op.f("uq_dunning_assignments_org_id_plan_id")),
    )
    with op.batch_alter_table("dunning_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dunning_assignments_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dunning_assignments_policy_id"), ["policy_id"], unique=False)

    op.create_table(
        "payment_methods",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("token", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("brand", sa.String(length=30), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("exp_month", sa.Integer(), nullable=True),
        sa.Column("exp_year", sa.Integer(), nullable=True),
        sa.Column("bank_name", sa.String(length=100), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detached_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_payment_methods_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_payment_methods_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint(
            "org_id", "gateway", "token", name=op.f("uq_payment_methods_org_id_gateway_token")
        ),
    )
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_methods_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_methods_org_id"), ["org_id"], unique=False)

    op.create_table(
        "dunning_cases",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("policy_id", sa.String(length=40), nullable=True),
        sa.Column(
            "policy",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("started_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_action_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_action", sa.String(length=30), nullable=True),
        sa.Column("last_failure_code", sa.String(length=60), nullable=True),
        sa.Column("final_action", sa.String(length=30), nullable=True),
        sa.Column("ended_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("test_clock_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_dunning_cases_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_dunning_cases_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_dunning_cases_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_cases")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_dunning_cases_invoice_id")),
    )
    with op.batch_alter_table("dunning_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dunning_cases_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_dunning_cases_due", ["status", "next_action_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dunning_cases_org_id"), ["org_id"], unique=False)

    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("gateway_ref", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_disputes_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_disputes_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_disputes_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("org_id", "gateway_ref", name=op.f("uq_disputes_org_id_gateway_ref")),
    )
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disputes_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_disputes_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_disputes_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("gateway_ref", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("credit_note_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_id"], ["credit_notes.id"], name=op.f("fk_refunds_credit_note_id_credit_notes")
        ),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_refunds_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_refunds_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_gateway_ref"), ["gateway_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_payment_id"), ["payment_id"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("gateway_ref", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("attempt_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payment_method_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("failure_code", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("decline_code", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("failure_message", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("hard_decline", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("scheduled_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_expires_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("test_clock_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("amount_refunded", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("disputed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column("status_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "paid_at", existing_type=revflow.storage.types.UTCDateTime(timezone=True), nullable=True
        )
        batch_op.create_index("ix_payments_due", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_gateway_ref"), ["gateway_ref"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_payments_idempotency_key"), ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_payments_idempotency_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_payments_gateway_ref"))
        batch_op.drop_index("ix_payments_due")
        batch_op.alter_column(
            "paid_at", existing_type=revflow.storage.types.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.drop_column("updated_at")
        batch_op.drop_column("status_at")
        batch_op.drop_column("disputed")
        batch_op.drop_column("amount_refunded")
        batch_op.drop_column("test_clock_id")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("scheduled_at")
        batch_op.drop_column("hard_decline")
        batch_op.drop_column("failure_message")
        batch_op.drop_column("decline_code")
        batch_op.drop_column("failure_code")
        batch_op.drop_column("payment_method_id")
        batch_op.drop_column("attempt_number")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("gateway_ref")
        batch_op.drop_column("gateway")

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_payment_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_org_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_gateway_ref"))

    op.drop_table("refunds")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disputes_payment_id"))
        batch_op.drop_index(batch_op.f("ix_disputes_org_id"))
        batch_op.drop_index(batch_op.f("ix_disputes_invoice_id"))

    op.drop_table("disputes")
    with op.batch_alter_table("dunning_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dunning_cases_org_id"))
        batch_op.drop_index("ix_dunning_cases_due")
        batch_op.drop_index(batch_op.f("ix_dunning_cases_customer_id"))

    op.drop_table("dunning_cases")
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_methods_org_id"))
        batch_op.drop_index(batch_op.f("ix_payment_methods_customer_id"))

    op.drop_table("payment_methods")
    with op.batch_alter_table("dunning_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dunning_assignments_policy_id"))
        batch_op.drop_index(batch_op.f("ix_dunning_assignments_org_id"))

    op.drop_table("dunning_assignments")
    with op.batch_alter_table("sandbox_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_refunds_charge_id"))

    op.drop_table("sandbox_refunds")
    with op.batch_alter_table("gateway_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_events_org_id"))

    op.drop_table("gateway_events")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_status")
        batch_op.drop_index(batch_op.f("ix_emails_org_id"))

    op.drop_table("emails")
    with op.batch_alter_table("dunning_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dunning_policies_org_id"))

    op.drop_table("dunning_policies")
    with op.batch_alter_table("sandbox_payment_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_payment_methods_customer_ref"))

    op.drop_table("sandbox_payment_methods")
    with op.batch_alter_table("sandbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_events_pending")

    op.drop_table("sandbox_events")
    op.drop_table("sandbox_customers")
    with op.batch_alter_table("sandbox_charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_charges_settles_at"))
        batch_op.drop_index(batch_op.f("ix_sandbox_charges_customer_ref"))
        batch_op.drop_index(batch_op.f("ix_sandbox_charges_created"))

    op.drop_table("sandbox_charges")

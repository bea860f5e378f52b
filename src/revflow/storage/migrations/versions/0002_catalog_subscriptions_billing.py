"""catalog subscriptions billing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:43:38.211469
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import revflow.storage.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=True),
        sa.Column("object_id", sa.String(length=40), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_alerts_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("org_id", "dedupe_key", name=op.f("uq_alerts_org_id_dedupe_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_type"), ["type"], unique=False)

    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("percent_off", revflow.storage.types.DecimalString(length=64), nullable=True),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("duration", sa.String(length=20), nullable=False),
        sa.Column("duration_in_months", sa.Integer(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("redeem_by", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "applies_to_products",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "applies_to_plans",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_coupons_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_org_id"), ["org_id"], unique=False)

    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_plans_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("org_id", "code", name=op.f("uq_plans_org_id_code")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_org_id"), ["org_id"], unique=False)

    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_products_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_org_id"), ["org_id"], unique=False)

    op.create_table(
        "test_clocks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("frozen_time", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_test_clocks_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_clocks")),
    )
    with op.batch_alter_table("test_clocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_clocks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "discounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("promotion_code_id", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("start", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("applied_period_start", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"], name=op.f("fk_discounts_coupon_id_coupons")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_discounts_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discounts")),
    )
    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discounts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_discounts_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_discounts_subscription_id"), ["subscription_id"], unique=False)

    op.create_table(
        "plan_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_plan_versions_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_versions_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
        sa.UniqueConstraint("plan_id", "version", name=op.f("uq_plan_versions_plan_id_version")),
    )
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_versions_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_versions_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "prices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("nickname", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=False),
        sa.Column("unit_amount", revflow.storage.types.DecimalString(length=64), nullable=False),
        sa.Column("flat_amount", revflow.storage.types.DecimalString(length=64), nullable=False),
        sa.Column(
            "tiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("package_size", sa.Integer(), nullable=True),
        sa.Column("package_rounding", sa.String(length=10), nullable=False),
        sa.Column("interval", sa.String(length=10), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("billing_timing", sa.String(length=20), nullable=False),
        sa.Column("metric_code", sa.String(length=100), nullable=True),
        sa.Column("custom", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_prices_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_prices_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
    )
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prices_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prices_product_id"), ["product_id"], unique=False)

    op.create_table(
        "promotion_codes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("expires_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_promotion_codes_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_promotion_codes_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_codes")),
        sa.UniqueConstraint("org_id", "code", name=op.f("uq_promotion_codes_org_id_code")),
    )
    with op.batch_alter_table("promotion_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_codes_org_id"), ["org_id"], unique=False)

    op.create_table(
        "plan_version_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("plan_version_id", sa.String(length=40), nullable=False),
        sa.Column("price_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", revflow.storage.types.DecimalString(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_plan_version_items_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["plan_version_id"],
            ["plan_versions.id"],
            name=op.f("fk_plan_version_items_plan_version_id_plan_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["price_id"], ["prices.id"], name=op.f("fk_plan_version_items_price_id_prices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_version_items")),
    )
    with op.batch_alter_table("plan_version_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_version_items_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_plan_version_items_plan_version_id"), ["plan_version_id"], unique=False
        )

    op.create_table(
        "quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("coupon_id", sa.String(length=40), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=True),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("start_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("trial_days", sa.Integer(), nullable=True),
        sa.Column("collection_method", sa.String(length=30), nullable=False),
        sa.Column("days_until_due", sa.Integer(), nullable=True),
        sa.Column("expires_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finalized_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acceptor_name", sa.String(length=200), nullable=True),
        sa.Column("acceptor_email", sa.String(length=320), nullable=True),
        sa.Column("canceled_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_quotes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_quotes_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
        sa.UniqueConstraint("org_id", "number", name=op.f("uq_quotes_org_id_number")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quotes_org_id"), ["org_id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=True),
        sa.Column("plan_version_id", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("collection_method", sa.String(length=30), nullable=False),
        sa.Column("days_until_due", sa.Integer(), nullable=True),
        sa.Column("interval", sa.String(length=10), nullable=False),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("billing_cycle_anchor", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("billing_cycle_day", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("start_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trial_end", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("trial_amount", sa.BigInteger(), nullable=False),
        sa.Column("current_period_start", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_billing_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("cancel_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("term_end", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=True),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("quote_id", sa.String(length=40), nullable=True),
        sa.Column("test_clock_id", sa.String(length=40), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_subscriptions_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_subscriptions_plan_id_plans")),
        sa.ForeignKeyConstraint(
            ["plan_version_id"],
            ["plan_versions.id"],
            name=op.f("fk_subscriptions_plan_version_id_plan_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_subscriptions_due", ["next_billing_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_subscriptions_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_subscriptions_test_clock_id"), ["test_clock_id"], unique=False)

    op.create_table(
        "subscription_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("price_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", revflow.storage.types.DecimalString(length=64), nullable=False),
        sa.Column("start_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("bill_start", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bill_end", revflow.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_subscription_items_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["price_id"], ["prices.id"], name=op.f("fk_subscription_items_price_id_prices")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_items_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_items")),
    )
    with op.batch_alter_table("subscription_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscription_items_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_subscription_items_subscription_id"), ["subscription_id"], unique=False
        )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test_clock_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_customers_test_clock_id"), ["test_clock_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_customers_test_clock_id_test_clocks"), "test_clocks", ["test_clock_id"], ["id"]
        )

    with op.batch_alter_table("invoice_line_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="one_off"))
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("price_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("billing_period_start", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("discount_amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "discounts",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
        batch_op.create_index(
            batch_op.f("ix_invoice_line_items_subscription_id"), ["subscription_id"], unique=False
        )

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("auto_finalize_at", revflow.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("test_clock_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_invoices_auto_finalize_at"), ["auto_finalize_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_subscription_id"), ["subscription_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_test_clock_id"), ["test_clock_id"], unique=False)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quote_prefix", sa.String(length=20), nullable=False, server_default="Q-")
        )
        batch_op.add_column(
            sa.Column("invoice_grace_hours", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("invoice_grace_hours")
        batch_op.drop_column("quote_prefix")

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_test_clock_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_auto_finalize_at"))
        batch_op.drop_column("test_clock_id")
        batch_op.drop_column("auto_finalize_at")
        batch_op.drop_column("subscription_id")

    with op.batch_alter_table("invoice_line_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_line_items_subscription_id"))
        batch_op.drop_column("discounts")
        batch_op.drop_column("discount_amount")
        batch_op.drop_column("billing_period_start")
        batch_op.drop_column("price_id")
        batch_op.drop_column("subscription_id")
        batch_op.drop_column("kind")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_customers_test_clock_id_test_clocks"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_customers_test_clock_id"))
        batch_op.drop_column("test_clock_id")

    with op.batch_alter_table("subscription_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_items_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_subscription_items_org_id"))

    op.drop_table("subscription_items")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_test_clock_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_org_id"))
        batch_op.drop_index("ix_subscriptions_due")
        batch_op.drop_index(batch_op.f("ix_subscriptions_customer_id"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_org_id"))
        batch_op.drop_index(batch_op.f("ix_quotes_customer_id"))

    op.drop_table("quotes")
    with op.batch_alter_table("plan_version_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_version_items_plan_version_id"))
        batch_op.drop_index(batch_op.f("ix_plan_version_items_org_id"))

    op.drop_table("plan_version_items")
    with op.batch_alter_table("promotion_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_codes_org_id"))

    op.drop_table("promotion_codes")
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prices_product_id"))
        batch_op.drop_index(batch_op.f("ix_prices_org_id"))

    op.drop_table("prices")
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_versions_plan_id"))
        batch_op.drop_index(batch_op.f("ix_plan_versions_org_id"))

    op.drop_table("plan_versions")
    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discounts_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_discounts_org_id"))
        batch_op.drop_index(batch_op.f("ix_discounts_customer_id"))

    op.drop_table("discounts")
    with op.batch_alter_table("test_clocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_clocks_org_id"))

    op.drop_table("test_clocks")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_org_id"))

    op.drop_table("products")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_org_id"))

    op.drop_table("plans")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_org_id"))

    op.drop_table("coupons")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_type"))
        batch_op.drop_index(batch_op.f("ix_alerts_org_id"))

    op.drop_table("alerts")

"""Tables. Every row belongs to one organization (``org_id``); public ids are prefixed strings.

Money columns are BigInteger minor units; unit prices and quantities are exact decimal strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from revflow.storage.types import DecimalString, ExactJSON, JSONType, UTCDateTime

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Coupon",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerBalanceTransaction",
    "CustomerExternalId",
    "Discount",
    "Event",
    "EventDelivery",
    "IdempotencyKey",
    "Invoice",
    "InvoiceLineItem",
    "NumberSequence",
    "Organization",
    "Payment",
    "Plan",
    "PlanVersion",
    "PlanVersionItem",
    "Price",
    "Product",
    "PromotionCode",
    "Quote",
    "Subscription",
    "SubscriptionItem",
    "TestClock",
    "TestClockNumberSequence",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: DecimalString(), dict[str, Any]: JSONType}


def org_fk() -> Mapped[str]:
    return mapped_column(String(40), ForeignKey("organizations.id"), index=True)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tax_ids: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="INV-")
    credit_note_prefix: Mapped[str] = mapped_column(String(20), default="CN-")
    default_net_days: Mapped[int] = mapped_column(Integer, default=30)
    quote_prefix: Mapped[str] = mapped_column(String(20), default="Q-")
    #: Hours a draft made by the billing engine waits before it finalizes itself.
    invoice_grace_hours: Mapped[int] = mapped_column(Integer, default=1)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class NumberSequence(Base):
    """Last number handed out per organization and document kind; incremented under a row lock."""

    __tablename__ = "number_sequences"

    org_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    currency: Mapped[str | None] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(35), default="en_US")
    tax_ids: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    archived_at: Mapped[datetime | None]
    test_clock_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("test_clocks.id"), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    external_ids: Mapped[list[CustomerExternalId]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerExternalId.system",
    )


class CustomerExternalId(Base):
    """A customer's id in one connected system; unique per organization and system, both ways."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_id"),
        UniqueConstraint("customer_id", "system"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"))
    system: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))

    customer: Mapped[Customer] = relationship(back_populates="external_ids")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        Index("ix_invoices_org_customer", "org_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"))
    number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    collection_method: Mapped[str] = mapped_column(String(30), default="send_invoice")
    billing_reason: Mapped[str] = mapped_column(String(40), default="manual")
    description: Mapped[str | None] = mapped_column(Text)
    footer: Mapped[str | None] = mapped_column(Text)
    due_date: Mapped[date | None] = mapped_column(Date)
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_remaining: Mapped[int] = mapped_column(BigInteger, default=0)
    pre_payment_credit_notes_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    post_payment_credit_notes_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The buyer as printed, frozen at finalization.
    customer_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: Set on invoices of one subscription (consolidated invoices leave it empty: see the lines).
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    #: When a draft made by the billing engine finalizes itself (after the grace period).
    auto_finalize_at: Mapped[datetime | None] = mapped_column(index=True)
    test_clock_id: Mapped[str | None] = mapped_column(String(40), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    finalized_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    marked_uncollectible_at: Mapped[datetime | None]
    #: The status of the latest dispute of a payment of this invoice (``needs_response``,
    #: ``under_review``, ``won``, ``lost``...), None when none was ever disputed (ADR 0035).
    dispute_status: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    lines: Mapped[list[InvoiceLineItem]] = relationship(
        back_populates="invoice",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="InvoiceLineItem.position",
    )


class InvoiceLineItem(Base):
    __tablename__ = "invoice_line_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal]
    unit_amount_decimal: Mapped[Decimal]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    #: ``one_off``, ``recurring``, ``proration``, ``usage``, ``one_time`` or ``trial``.
    kind: Mapped[str] = mapped_column(String(20), default="one_off")
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    price_id: Mapped[str | None] = mapped_column(String(40))
    #: The subscription period this line bills (recompute-and-diff compares lines per period and price).
    billing_period_start: Mapped[datetime | None]
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: ``[{"discount_id", "coupon_id", "amount"}]``
    discounts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class TestClock(Base):
    """A frozen time that customers and subscriptions can live on; advancing it bills what falls due."""

    __tablename__ = "test_clocks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[int]  # 1, 2, 3… per organization: the marker in its documents' numbers (ADR 0040)
    frozen_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="ready")
    created_at: Mapped[datetime]


class TestClockNumberSequence(Base):
    """Last number handed out per test clock and document kind: simulated documents are numbered apart
    from the organization's real ones (ADR 0040); incremented under a row lock like NumberSequence."""

    __tablename__ = "test_clock_number_sequences"

    test_clock_id: Mapped[str] = mapped_column(String(40), ForeignKey("test_clocks.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    org_id: Mapped[str] = org_fk()
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Price(Base):
    """What a product costs: pricing model, currency, cadence. Prices never change once used: a new
    price (and plan version) replaces them."""

    __tablename__ = "prices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    product_id: Mapped[str] = mapped_column(String(40), ForeignKey("products.id"), index=True)
    nickname: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    #: ``recurring`` or ``one_time``.
    type: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(20))
    unit_amount: Mapped[Decimal]
    flat_amount: Mapped[Decimal]
    #: ``[{"up_to": "100" | null, "unit_amount": "100", "flat_amount": "0"}]`` (decimal strings)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    package_size: Mapped[int | None] = mapped_column(Integer)
    package_rounding: Mapped[str] = mapped_column(String(10), default="up")
    interval: Mapped[str | None] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    #: ``in_advance`` or ``in_arrears`` (usage is always in arrears).
    billing_timing: Mapped[str] = mapped_column(String(20), default="in_advance")
    #: Code of the billable metric for usage-based prices.
    metric_code: Mapped[str | None] = mapped_column(String(100))
    #: ``percentage`` prices: the fee of one event is kept between these (minor units).
    event_min_amount: Mapped[Decimal | None]
    event_max_amount: Mapped[Decimal | None]
    #: A negotiated price made for one quote, not listed in the catalog.
    custom: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]


class Plan(Base):
    """A named bundle of prices. Editing a live plan's prices makes a new version."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(default=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlanVersion(Base):
    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    plan_id: Mapped[str] = mapped_column(String(40), ForeignKey("plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    items: Mapped[list[PlanVersionItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PlanVersionItem.position"
    )


class PlanVersionItem(Base):
    __tablename__ = "plan_version_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = org_fk()
    plan_version_id: Mapped[str] = mapped_column(String(40), ForeignKey("plan_versions.id"), index=True)
    price_id: Mapped[str] = mapped_column(String(40), ForeignKey("prices.id"))
    quantity: Mapped[Decimal]
    position: Mapped[int] = mapped_column(Integer, default=0)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_due", "next_billing_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"), index=True)
    plan_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("plans.id"))
    plan_version_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("plan_versions.id"))
    #: A plan change scheduled for ``plan_change_at`` (a period end): plan and version then (both None
    #: when the subscription then leaves its plan for custom items). ``plan_id`` / ``plan_version_id``
    #: stay those in effect until then.
    scheduled_plan_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("plans.id"))
    scheduled_plan_version_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("plan_versions.id"))
    plan_change_at: Mapped[datetime | None]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    collection_method: Mapped[str] = mapped_column(String(30), default="charge_automatically")
    days_until_due: Mapped[int | None] = mapped_column(Integer)
    interval: Mapped[str] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    #: Regular periods are [shift(anchor, n), shift(anchor, n + 1)) in the customer's time zone.
    billing_cycle_anchor: Mapped[datetime]
    #: Day of month the cycle renews on (1..31) when anchored to a day rather than the anniversary.
    billing_cycle_day: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    start_at: Mapped[datetime]
    trial_end: Mapped[datetime | None]
    #: Fee for the trial period in minor units (0: a free trial).
    trial_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    #: The next instant the billing engine has work for this subscription (None: nothing scheduled).
    next_billing_at: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    #: End of a fixed term; at it the subscription renews for another term (auto_renew) or ends.
    term_end: Mapped[datetime | None]
    term_months: Mapped[int | None] = mapped_column(Integer)
    auto_renew: Mapped[bool] = mapped_column(default=True)
    quote_id: Mapped[str | None] = mapped_column(String(40))
    test_clock_id: Mapped[str | None] = mapped_column(String(40), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    items: Mapped[list[SubscriptionItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="SubscriptionItem.start_at"
    )


class SubscriptionItem(Base):
    """One segment of a subscription's timeline: a price and quantity over [start_at, end_at).

    ``bill_start``/``bill_end`` bound what the billing engine charges for the segment; they differ from
    the segment's own bounds only for changes made with ``proration_behavior=none``.
    """

    __tablename__ = "subscription_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    subscription_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscriptions.id"), index=True)
    price_id: Mapped[str] = mapped_column(String(40), ForeignKey("prices.id"))
    quantity: Mapped[Decimal]
    start_at: Mapped[datetime]
    end_at: Mapped[datetime | None]
    bill_start: Mapped[datetime]
    bill_end: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    percent_off: Mapped[Decimal | None]
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    #: ``once``, ``repeating`` or ``forever``.
    duration: Mapped[str] = mapped_column(String(20))
    duration_in_months: Mapped[int | None] = mapped_column(Integer)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    redeem_by: Mapped[datetime | None]
    applies_to_products: Mapped[list[str]] = mapped_column(JSONType, default=list)
    applies_to_plans: Mapped[list[str]] = mapped_column(JSONType, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]


class PromotionCode(Base):
    __tablename__ = "promotion_codes"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    coupon_id: Mapped[str] = mapped_column(String(40), ForeignKey("coupons.id"))
    code: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Discount(Base):
    """A coupon applied to a customer or a subscription, over [start, end) (end None: forever)."""

    __tablename__ = "discounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    coupon_id: Mapped[str] = mapped_column(String(40), ForeignKey("coupons.id"))
    promotion_code_id: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    #: For ``once`` coupons: the one period start it applies to, fixed when first used.
    applied_period_start: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Quote(Base):
    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"), index=True)
    number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    plan_id: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    #: ``[{"price_id", "quantity", "unit_amount"?}]``; unit_amount overrides the catalog price.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    coupon_id: Mapped[str | None] = mapped_column(String(40))
    term_months: Mapped[int | None] = mapped_column(Integer)
    auto_renew: Mapped[bool] = mapped_column(default=True)
    start_at: Mapped[datetime | None]
    trial_days: Mapped[int | None] = mapped_column(Integer)
    collection_method: Mapped[str] = mapped_column(String(30), default="send_invoice")
    days_until_due: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None]
    finalized_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    acceptor_name: Mapped[str | None] = mapped_column(String(200))
    acceptor_email: Mapped[str | None] = mapped_column(String(320))
    canceled_at: Mapped[datetime | None]
    subscription_id: Mapped[str | None] = mapped_column(String(40))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Alert(Base):
    """Something a person should look at: a discrepancy, a failed sync, a rate-limit warning."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("org_id", "dedupe_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    type: Mapped[str] = mapped_column(String(60), index=True)
    severity: Mapped[str] = mapped_column(String(20), default="warning")
    status: Mapped[str] = mapped_column(String(20), default="open")
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class CreditNote(Base):
    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="issued")
    type: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(40))
    memo: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]

    lines: Mapped[list[CreditNoteLine]] = relationship(
        back_populates="credit_note",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CreditNoteLine.id",
    )


class CreditNoteLine(Base):
    __tablename__ = "credit_note_lines"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    credit_note_id: Mapped[str] = mapped_column(String(40), ForeignKey("credit_notes.id"), index=True)
    invoice_line_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("invoice_line_items.id"))
    description: Mapped[str] = mapped_column(String(500))
    amount: Mapped[int] = mapped_column(BigInteger)

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")


class CustomerBalanceTransaction(Base):
    """One movement of a customer's credit balance; positive amounts add credit the customer can use."""

    __tablename__ = "customer_balance_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    invoice_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("invoices.id"))
    credit_note_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("credit_notes.id"))
    description: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_due", "status", "scheduled_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: ``succeeded`` for payments recorded by hand; gateway attempts move through ``pending`` (scheduled),
    #: ``sending`` (claimed by a worker), ``unknown``, ``processing``, then ``succeeded``, ``failed``,
    #: ``requires_action`` or ``canceled`` (never sent). See docs/payments.md.
    status: Mapped[str] = mapped_column(String(20))
    #: ``bank_transfer``/``check``/``cash``/``other`` by hand; ``card``/``us_bank_account`` at a gateway.
    method: Mapped[str] = mapped_column(String(30))
    reference: Mapped[str | None] = mapped_column(String(200))
    paid_at: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    # Gateway attempts (issue 5)
    gateway: Mapped[str | None] = mapped_column(String(20))
    gateway_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    #: f(invoice, attempt): the same attempt never charges twice, however often it is sent.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    attempt_number: Mapped[int | None] = mapped_column(Integer)
    payment_method_id: Mapped[str | None] = mapped_column(String(40))
    failure_code: Mapped[str | None] = mapped_column(String(60))
    decline_code: Mapped[str | None] = mapped_column(String(60))
    failure_message: Mapped[str | None] = mapped_column(Text)
    hard_decline: Mapped[bool] = mapped_column(default=False)
    #: When a ``pending`` attempt falls due (on the test clock's time for test-clock customers).
    scheduled_at: Mapped[datetime | None]
    #: A ``sending``/``unknown`` attempt whose lease ran out is resolved by the janitor.
    lease_expires_at: Mapped[datetime | None]
    test_clock_id: Mapped[str | None] = mapped_column(String(40))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    disputed: Mapped[bool] = mapped_column(default=False)
    #: The gateway's time of the status applied last (out-of-order events older than it are ignored).
    status_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """A POST's Idempotency-Key with the response it produced (Stripe semantics)."""

    __tablename__ = "idempotency_keys"

    org_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    """Append-only: who changed what, when. Database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_object", "org_id", "object_type", "object_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Event(Base):
    """A domain event, written in the same transaction as the change it records (transactional outbox)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_org_type", "org_id", "type"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    type: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    #: Read back exactly (ADR 0041): a voided usage event's properties keep the digits the customer sent.
    data: Mapped[dict[str, Any]] = mapped_column(ExactJSON)
    created_at: Mapped[datetime]


class EventDelivery(Base):
    """Delivery state of one event to one subscriber (webhook endpoint or connector).

    ``status``: ``pending`` (no attempt yet), ``retrying`` (failed, ``next_attempt_at`` set), ``succeeded``,
    ``dead_lettered`` (gave up after the retry window), ``paused`` (the subscriber is disabled) or
    ``canceled`` (the subscriber was deleted). A delivery is claimed by setting ``locked_until`` (a lease);
    per subscriber and object, one waits while an earlier one (lower ``event_seq``) is unfinished.
    """

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscriber"),
        Index("ix_event_deliveries_due", "status", "next_attempt_at"),
        Index("ix_event_deliveries_order", "subscriber", "object_id", "event_seq"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = org_fk()
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("events.id"))
    subscriber: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    #: ``webhook_endpoint`` (``subscriber`` is its id) or, later, ``connector``.
    subscriber_type: Mapped[str] = mapped_column(String(30), default="webhook_endpoint")
    object_id: Mapped[str] = mapped_column(String(40), default="")
    #: The event's place in the outbox: deliveries of one object reach a subscriber in this order.
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    locked_until: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    dead_lettered_at: Mapped[datetime | None]
    last_response_status: Mapped[int | None] = mapped_column(Integer)


# Tables of later capabilities live in their own modules; importing them here registers them on Base.metadata.
from revflow.storage import hub_models, payment_models, usage_models  # noqa: E402

# isort: split
from revflow.storage import connector_models, job_models  # noqa: E402

_ = (hub_models, payment_models, usage_models, connector_models, job_models)

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

from revflow.storage.types import DecimalString, JSONType, UTCDateTime

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerBalanceTransaction",
    "CustomerExternalId",
    "Event",
    "EventDelivery",
    "IdempotencyKey",
    "Invoice",
    "InvoiceLineItem",
    "NumberSequence",
    "Organization",
    "Payment",
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


def _org_fk() -> Mapped[str]:
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
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = _org_fk()
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
    org_id: Mapped[str] = _org_fk()
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    currency: Mapped[str | None] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(35), default="en_US")
    tax_ids: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    archived_at: Mapped[datetime | None]
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
    org_id: Mapped[str] = _org_fk()
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
    org_id: Mapped[str] = _org_fk()
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
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    finalized_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    marked_uncollectible_at: Mapped[datetime | None]
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
    org_id: Mapped[str] = _org_fk()
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

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class CreditNote(Base):
    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = _org_fk()
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
    org_id: Mapped[str] = _org_fk()
    credit_note_id: Mapped[str] = mapped_column(String(40), ForeignKey("credit_notes.id"), index=True)
    invoice_line_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("invoice_line_items.id"))
    description: Mapped[str] = mapped_column(String(500))
    amount: Mapped[int] = mapped_column(BigInteger)

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")


class CustomerBalanceTransaction(Base):
    """One movement of a customer's credit balance; positive amounts add credit the customer can use."""

    __tablename__ = "customer_balance_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = _org_fk()
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

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = _org_fk()
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(30))
    reference: Mapped[str | None] = mapped_column(String(200))
    paid_at: Mapped[datetime]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]


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
    org_id: Mapped[str] = _org_fk()
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
    org_id: Mapped[str] = _org_fk()
    type: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]


class EventDelivery(Base):
    """Delivery state of one event to one subscriber (webhook endpoint or connector)."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscriber"),
        Index("ix_event_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = _org_fk()
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("events.id"))
    subscriber: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

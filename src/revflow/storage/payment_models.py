"""Tables of payments and dunning (issue 5).
Imported by revflow.storage.models so that they register on Base.metadata.

The ``payments`` table itself (one row per gateway attempt or hand-recorded payment) lives in models.py.
The ``sandbox_*`` tables are the sandbox gateway's own books (the gateway side, not Revflow's): they carry
no organization, as Stripe's records do not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from revflow.storage.models import Base, org_fk
from revflow.storage.types import JSONType

__all__ = [
    "Dispute",
    "DunningAssignment",
    "DunningCase",
    "DunningPolicy",
    "Email",
    "GatewayEventRecord",
    "PaymentMethod",
    "Refund",
    "SandboxCharge",
    "SandboxCustomer",
    "SandboxEvent",
    "SandboxPaymentMethod",
    "SandboxRefund",
]


class PaymentMethod(Base):
    """A saved payment method: the gateway token and what a person needs to recognise it, never a number."""

    __tablename__ = "payment_methods"
    __table_args__ = (UniqueConstraint("org_id", "gateway", "token"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(30))
    brand: Mapped[str | None] = mapped_column(String(30))
    last4: Mapped[str | None] = mapped_column(String(4))
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)
    #: ``active`` or ``detached``.
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    detached_at: Mapped[datetime | None]


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    payment_id: Mapped[str] = mapped_column(String(40), ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: ``succeeded``, ``pending`` or ``failed`` (as the gateway says).
    status: Mapped[str] = mapped_column(String(20))
    gateway_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    reason: Mapped[str | None] = mapped_column(String(40))
    credit_note_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("credit_notes.id"))
    created_at: Mapped[datetime]


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("org_id", "gateway_ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    payment_id: Mapped[str] = mapped_column(String(40), ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    gateway_ref: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(30), default="needs_response")
    created_at: Mapped[datetime]


class DunningPolicy(Base):
    """How failed collection is retried and what happens when it never recovers."""

    __tablename__ = "dunning_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    #: Days after the first failure on which each retry runs, e.g. ``[1, 3, 5, 7]``.
    retry_days: Mapped[list[int]] = mapped_column(JSONType, default=list)
    #: Charges in all, the first included.
    max_attempts: Mapped[int] = mapped_column(Integer)
    #: ``cancel``, ``pause`` or ``mark_uncollectible``.
    final_action: Mapped[str] = mapped_column(String(30))
    is_default: Mapped[bool] = mapped_column(default=False)
    send_emails: Mapped[bool] = mapped_column(default=True)
    #: ``{"retry" | "final" | "recovered" | "ach_failed": {"subject": jinja, "body": jinja}}``
    templates: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DunningAssignment(Base):
    """A policy assigned to a plan or to a customer (the customer's wins)."""

    __tablename__ = "dunning_assignments"
    __table_args__ = (
        UniqueConstraint("org_id", "plan_id"),
        UniqueConstraint("org_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = org_fk()
    policy_id: Mapped[str] = mapped_column(String(40), ForeignKey("dunning_policies.id"), index=True)
    plan_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("plans.id"))
    customer_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("customers.id"))


class DunningCase(Base):
    """Dunning of one invoice: opened by its first failed charge, closed by payment or the final action."""

    __tablename__ = "dunning_cases"
    __table_args__ = (
        UniqueConstraint("invoice_id"),
        Index("ix_dunning_cases_due", "status", "next_action_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"))
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(40))
    policy_id: Mapped[str | None] = mapped_column(String(40))
    #: The policy as it was when dunning began: ``{"retry_days", "max_attempts", "final_action", ...}``.
    policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: ``active``, ``recovered``, ``exhausted`` (final action taken) or ``closed`` (voided, paid by hand).
    status: Mapped[str] = mapped_column(String(20), default="active")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: ``card`` (retried on the schedule) or ``bank_debit`` (waits for a new payment method).
    mode: Mapped[str] = mapped_column(String(20), default="card")
    started_at: Mapped[datetime]
    #: When the next retry or the final action is due (None: nothing scheduled).
    next_action_at: Mapped[datetime | None]
    next_action: Mapped[str | None] = mapped_column(String(30))
    last_failure_code: Mapped[str | None] = mapped_column(String(60))
    final_action: Mapped[str | None] = mapped_column(String(30))
    ended_at: Mapped[datetime | None]
    test_clock_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class Email(Base):
    """An email to send (outbox): delivered by the worker through the configured email adapter."""

    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("org_id", "dedupe_key"),
        Index("ix_emails_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    #: ``queued``, ``sent`` (SMTP), ``stored`` (embedded: kept for the API), ``failed`` or ``skipped``.
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class GatewayEventRecord(Base):
    """An inbound gateway webhook, stored once per gateway event id (the dedupe key)."""

    __tablename__ = "gateway_events"
    __table_args__ = (UniqueConstraint("gateway", "event_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: None when the event concerns nothing Revflow knows (recorded, acknowledged, not applied).
    org_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("organizations.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(40))
    raw_type: Mapped[str] = mapped_column(String(80))
    object_ref: Mapped[str] = mapped_column(String(100))
    #: ``processed``, ``ignored`` (stale or no effect) or ``unmatched`` (unknown object).
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    gateway_created: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime]


# --- the sandbox gateway's own books ------------------------------------------------------------------


class SandboxCustomer(Base):
    __tablename__ = "sandbox_customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    revflow_customer_id: Mapped[str] = mapped_column(String(40), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime]


class SandboxPaymentMethod(Base):
    __tablename__ = "sandbox_payment_methods"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The test token it was made from (``pm_card_visa``...): decides every charge's outcome.
    behaviour: Mapped[str] = mapped_column(String(60))
    customer_ref: Mapped[str | None] = mapped_column(String(40), index=True)
    type: Mapped[str] = mapped_column(String(30))
    brand: Mapped[str | None] = mapped_column(String(30))
    last4: Mapped[str | None] = mapped_column(String(4))
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    created: Mapped[datetime]


class SandboxCharge(Base):
    __tablename__ = "sandbox_charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_ref: Mapped[str] = mapped_column(String(40), index=True)
    payment_method: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    payment_method_type: Mapped[str] = mapped_column(String(30))
    failure_code: Mapped[str | None] = mapped_column(String(60))
    decline_code: Mapped[str | None] = mapped_column(String(60))
    failure_message: Mapped[str | None] = mapped_column(Text)
    hard_decline: Mapped[bool] = mapped_column(default=False)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    #: ACH: when the debit settles (or returns); compared with the real or the test clock's time.
    settles_at: Mapped[datetime | None] = mapped_column(index=True)
    test_clock_id: Mapped[str | None] = mapped_column(String(40))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created: Mapped[datetime] = mapped_column(index=True)


class SandboxRefund(Base):
    __tablename__ = "sandbox_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    charge_id: Mapped[str] = mapped_column(String(40), ForeignKey("sandbox_charges.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    created: Mapped[datetime]


class SandboxEvent(Base):
    """An event the sandbox emits (ACH settlement), kept until Revflow acknowledges it, as a webhook is
    retried until it is answered 2xx."""

    __tablename__ = "sandbox_events"
    __table_args__ = (Index("ix_sandbox_events_pending", "delivered", "created"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    charge_id: Mapped[str] = mapped_column(String(40))
    delivered: Mapped[bool] = mapped_column(default=False)
    created: Mapped[datetime]

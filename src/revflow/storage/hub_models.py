"""Tables of the integration hub (issue 6): the outbox queue, webhook endpoints and their attempt log.

The delivery state of each event to each subscriber is :class:`revflow.storage.models.EventDelivery`.
Imported by revflow.storage.models so that they register on Base.metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from revflow.storage.models import Base, org_fk
from revflow.storage.types import JSONType

__all__ = ["EntityMapping", "OutboxEntry", "WebhookAttempt", "WebhookEndpoint"]


class OutboxEntry(Base):
    """One event not yet fanned out to its subscribers.

    A database trigger on ``events`` inserts the row in the transaction that records the event, so no
    writer can forget it; the fan-out deletes it once the event's deliveries exist. ``seq`` is the
    order events were written in (per object, the order of the changes, which lock the object).
    """

    __tablename__ = "outbox_queue"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("events.id"))


class WebhookEndpoint(Base):
    """A URL of the organization's that receives the events it subscribed to, signed with its secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    #: Event types, or patterns such as ``invoice.*``; ``["*"]`` is every event.
    enabled_events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: ``enabled`` or ``disabled``.
    status: Mapped[str] = mapped_column(String(20), default="enabled")
    #: ``gone`` (answered 410), ``failing`` (failed for days) or ``manual``.
    disabled_reason: Mapped[str | None] = mapped_column(String(20))
    disabled_at: Mapped[datetime | None]
    #: Sealed with REVFLOW_SECRET_KEY (``fernet:…``), never stored in the clear.
    secret: Mapped[str] = mapped_column(String(500))
    #: The secret before the last rotation, still used to sign until ``previous_secret_expires_at``.
    previous_secret: Mapped[str | None] = mapped_column(String(500))
    previous_secret_expires_at: Mapped[datetime | None]
    #: Start of the current run of failed attempts (None: the last attempt succeeded).
    failing_since: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookAttempt(Base):
    """One HTTP request to an endpoint and what came back: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    endpoint_id: Mapped[str] = mapped_column(String(40), ForeignKey("webhook_endpoints.id"))
    #: The outbox delivery this attempt belongs to (None: a test-send).
    delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event_type: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(Integer)
    request_body: Mapped[str] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    #: The first 1 KB of the response body.
    response_body: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class EntityMapping(Base):
    """One Revflow object and its counterpart in a connected system (customer ↔ HubSpot company…).

    Unique both ways: an external object is linked to one Revflow object, and a Revflow object to one
    object of each external type in each system. Customer mappings are mirrored in
    ``customer_external_ids`` (the customer API's ``external_ids``), in the same transaction.
    """

    __tablename__ = "entity_mappings"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_type", "external_id"),
        UniqueConstraint("org_id", "object_type", "object_id", "system", "external_type"),
        Index("ix_entity_mappings_object", "object_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40))
    #: ``hubspot``, ``salesforce``, ``stripe``, ``xero``…
    system: Mapped[str] = mapped_column(String(40))
    #: The vendor's object type: ``company``, ``deal``, ``account``, ``opportunity``, ``customer``…
    external_type: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

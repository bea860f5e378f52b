"""Tables of the connector framework (issue 6): connected systems (integrations) and their sync jobs.

Imported by revflow.storage.models so that they register on Base.metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from revflow.storage.models import Base, org_fk
from revflow.storage.types import JSONType

__all__ = ["Integration", "SyncJob"]


class Integration(Base):
    """One connected CRM of an organization: its system, sealed credentials, owner and settings."""

    __tablename__ = "integrations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    #: ``hubspot`` or ``salesforce``.
    system: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    #: Who answers for this flow (a person or team, e.g. an email address).
    owner: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: JSON of the credentials, sealed with the SecretBox (``fernet:…``); never returned by the API.
    credentials: Mapped[str] = mapped_column(Text)
    #: plan property, won stage, proration behaviour, poll interval, customer-success email…
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SyncJob(Base):
    """One unit of sync work with a connected system, visible in the API.

    ``kind``: ``push_customer``, ``push_subscription`` (outbound), ``inbound_change`` (a webhook's event),
    ``poll`` (one recurring job per integration, its ``cursor`` the position in the vendor's changes).
    ``status``: ``pending`` → ``running`` → ``succeeded`` | ``failed`` (not retryable) | ``dead`` (retries
    exhausted); a failed attempt that may be retried goes back to ``pending`` with a later ``next_run_at``.
    ``dedupe_key`` makes an inbound event (its vendor event id) create one job however often it arrives.
    """

    __tablename__ = "sync_jobs"
    __table_args__ = (
        UniqueConstraint("integration_id", "dedupe_key"),
        Index("ix_sync_jobs_due", "status", "next_run_at"),
        Index("ix_sync_jobs_object", "integration_id", "kind", "object_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    integration_id: Mapped[str] = mapped_column(String(40), ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(String(30))
    #: ``outbound`` or ``inbound``.
    direction: Mapped[str] = mapped_column(String(10))
    #: Revflow object (``customer``/``subscription``) or the vendor's (``deal``/``company``).
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(60))
    next_run_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    cursor: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: What the last successful run did (e.g. the external id written, the subscription created).
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

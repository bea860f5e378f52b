"""Tables of usage metering (issue 4).
Imported by revflow.storage.models so that they register on Base.metadata.

``usage_events`` is append-mostly and large: on PostgreSQL it is range-partitioned by ``timestamp``
(monthly partitions live in the ``usage_partitions`` schema, see migration 0003 and ADR 0013), so its
primary key includes ``timestamp``. Deduplication on ``(org_id, transaction_id)`` is the primary key of
the small unpartitioned ``usage_event_keys`` table, written in the same statement as the event.
``usage_rollups`` holds per-hour aggregates maintained at ingestion; ``usage_unique_values`` the
distinct values of ``unique_count`` metrics per hour. Event values are fixed-point integers: the
decimal value × 10^6 (``VALUE_SCALE``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from revflow.storage.models import Base, org_fk
from revflow.storage.types import ExactJSON, JSONType

__all__ = [
    "BillableMetric",
    "UsageEvent",
    "UsageEventKey",
    "UsageImport",
    "UsageLateEvent",
    "UsageRollup",
    "UsageThreshold",
    "UsageUniqueValue",
]


class BillableMetric(Base):
    """What to measure from usage events: ``aggregation`` of ``property`` over the events whose
    properties match ``filters``, optionally per value of ``group_by``. ``recurring`` metrics carry over
    from one period to the next (active seats) instead of resetting."""

    __tablename__ = "billable_metrics"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    aggregation: Mapped[str] = mapped_column(String(20))
    property: Mapped[str | None] = mapped_column(String(100))
    #: ``{"region": ["eu", "uk"]}``: an event counts when each listed property has one of the values.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    group_by: Mapped[str | None] = mapped_column(String(100))
    recurring: Mapped[bool] = mapped_column(default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UsageEventKey(Base):
    """One row per accepted ``(org_id, transaction_id)``: the deduplication key, unpartitioned, so it
    holds across the event table's time partitions."""

    __tablename__ = "usage_event_keys"

    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40))
    timestamp: Mapped[datetime]


class UsageEvent(Base):
    """An accepted usage event. ``status``: ``billable`` (counted), ``filtered`` (kept, but the metric's
    filters exclude it), ``unmatched`` (unknown customer or metric; recovered later), ``voided``."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_lookup", "org_id", "customer_id", "metric_code", "timestamp"),
        # Only the exceptions (unmatched, filtered, voided, invalid): billable events stay out of it.
        Index(
            "ix_usage_events_exceptions",
            "org_id",
            "status",
            "id",
            postgresql_where=text("status <> 'billable'"),
            sqlite_where=text("status <> 'billable'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(primary_key=True)
    # No foreign key on the hot insert path: organizations are never deleted.
    org_id: Mapped[str] = mapped_column(String(40))
    transaction_id: Mapped[str] = mapped_column(String(255))
    metric_code: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str | None] = mapped_column(String(40))
    external_customer_id: Mapped[str | None] = mapped_column(String(200))
    subscription_id: Mapped[str | None] = mapped_column(String(40))
    #: The metric property's value × 10^6 (None for ``count`` and unmatched events).
    value: Mapped[int | None] = mapped_column(BigInteger)
    #: The value counted by ``unique_count`` metrics (as text).
    unique_value: Mapped[str | None] = mapped_column(String(200))
    group_key: Mapped[str] = mapped_column(String(200), default="")
    #: Read back exactly (non-integer numbers as Decimals): a customer sees the digits they sent.
    properties: Mapped[dict[str, Any]] = mapped_column(ExactJSON, default=dict)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]


class UsageRollup(Base):
    """Per-hour aggregate of a customer's billable events for one metric and group, kept in step with
    ``usage_events`` in the ingestion transaction. Values are × 10^6 like the events'."""

    __tablename__ = "usage_rollups"

    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    metric_code: Mapped[str] = mapped_column(String(100), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    #: Concurrent writers spread over a few rows per hour (a hot customer's hour is not one row lock);
    #: readers add the shards up.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[int | None] = mapped_column(BigInteger)
    max_value: Mapped[int | None] = mapped_column(BigInteger)
    latest_at: Mapped[datetime | None]
    latest_value: Mapped[int | None] = mapped_column(BigInteger)
    latest_id: Mapped[str | None] = mapped_column(String(40))


class UsageUniqueValue(Base):
    """Distinct values of a ``unique_count`` metric seen per customer, group and hour."""

    __tablename__ = "usage_unique_values"

    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    metric_code: Mapped[str] = mapped_column(String(100), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)


class UsageThreshold(Base):
    """A threshold on a subscription's usage: ``units`` of one metric or ``amount`` (minor units) of
    all its usage in the period. ``last_period_start`` is the period it last fired in."""

    __tablename__ = "usage_thresholds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = org_fk()
    subscription_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscriptions.id"), index=True)
    metric_code: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[Decimal]
    #: Invoice at once when an ``amount`` threshold is crossed (progressive billing).
    invoice: Mapped[bool] = mapped_column(default=False)
    #: Fires at every multiple of ``value`` (100, 200, 300 …) instead of once per period.
    recurring: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_period_start: Mapped[datetime | None]
    #: Multiples of ``value`` already fired in ``last_period_start``'s period (recurring thresholds).
    last_multiple: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime]


class UsageImport(Base):
    """Progress of one CSV import, by file digest: rows committed so far (the import resumes after)."""

    __tablename__ = "usage_imports"

    org_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows_done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    accepted: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    updated_at: Mapped[datetime]


class UsageLateEvent(Base):
    """A billable event that arrived after its subscription's period was invoiced (``invoice_id``). The
    subscription's next billing point re-examines that period and bills the difference as a usage line
    of the earlier service period (``settled_invoice_id``; ``settled_at`` also set when nothing was
    owed, e.g. the event was voided first). ADR 0034."""

    __tablename__ = "usage_late_events"
    __table_args__ = (Index("ix_usage_late_events_pending", "org_id", "subscription_id", "settled_at"),)

    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    timestamp: Mapped[datetime]
    subscription_id: Mapped[str] = mapped_column(String(40))
    metric_code: Mapped[str] = mapped_column(String(100))
    #: The invoice that billed the period (None when the period billed no usage of the metric).
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    settled_invoice_id: Mapped[str | None] = mapped_column(String(40))
    settled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

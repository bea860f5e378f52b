"""Alerts: records of things a person should look at, deduplicated by key.

Raising an alert (or re-opening a resolved one) also writes an ``alert.raised`` domain event in the same
transaction, so webhook endpoints subscribed to ``alert.*`` hear about it through the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.services.views_quotes import AlertView
from revflow.storage.models import Alert, Event

__all__ = ["raise_alert"]


def raise_alert(
    session: Session,
    *,
    org_id: str,
    type: str,
    message: str,
    dedupe_key: str,
    now: datetime,
    object_type: str | None = None,
    object_id: str | None = None,
    details: dict[str, Any] | None = None,
    severity: str = "warning",
) -> Alert:
    """Record an open alert, or return the open one with the same ``dedupe_key`` (refreshing its details)."""
    existing = session.scalar(select(Alert).where(Alert.org_id == org_id, Alert.dedupe_key == dedupe_key))
    if existing is not None:
        existing.details = details or {}
        existing.message = message
        if existing.status == "resolved":
            existing.status, existing.resolved_at = "open", None
            _announce(session, existing, now)
        return existing
    alert = Alert(
        id=new_id("alrt"),
        org_id=org_id,
        type=type,
        severity=severity,
        status="open",
        object_type=object_type,
        object_id=object_id,
        message=message,
        details=details or {},
        dedupe_key=dedupe_key,
        created_at=now,
    )
    session.add(alert)
    session.flush()
    _announce(session, alert, now)
    return alert


def _announce(session: Session, alert: Alert, now: datetime) -> None:
    session.add(
        Event(
            id=new_id("evt"),
            org_id=alert.org_id,
            type="alert.raised",
            object_type="alert",
            object_id=alert.id,
            data={"object": AlertView.of(alert).model_dump(mode="json")},
            created_at=now,
        )
    )

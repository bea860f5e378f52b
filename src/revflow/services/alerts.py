"""Alerts: records of things a person should look at, deduplicated by key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.storage.models import Alert

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
    return alert

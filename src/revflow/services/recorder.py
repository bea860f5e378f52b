"""Audit trail and domain events, written in the caller's transaction (transactional outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.storage.bulk import write_rows
from revflow.storage.models import AuditEvent, Event

__all__ = ["buffered", "diff", "insert_rows", "record"]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return ``{field: {"before": old, "after": new}}`` for the fields that differ."""
    keys = set(before) | set(after)
    return {
        k: {"before": before.get(k), "after": after.get(k)}
        for k in sorted(keys)
        if before.get(k) != after.get(k)
    }


_BUFFER = "revflow.record_buffer"


def record(
    ctx: Ctx,
    *,
    action: str,
    object_type: str,
    object_id: str,
    changes: dict[str, Any],
    event_type: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one audit row and, when ``event_type`` is given, one domain event carrying ``data``.

    Both join the caller's transaction: they commit with the change or not at all. Inside
    :func:`buffered` they are collected and written with one multi-row insert per table.
    """
    now = ctx.now()
    audit = {
        "id": new_id("aud"),
        "org_id": ctx.org_id,
        "actor_type": ctx.actor.type,
        "actor_id": ctx.actor.id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "changes": changes,
        "request_id": ctx.request_id,
        "created_at": now,
    }
    event = None
    if event_type is not None:
        event = {
            "id": new_id("evt"),
            "org_id": ctx.org_id,
            "type": event_type,
            "object_type": object_type,
            "object_id": object_id,
            "data": {"object": data or {}},
            "created_at": now,
        }
    buffer = ctx.session.info.get(_BUFFER)
    if buffer is not None:
        buffer[0].append(audit)
        if event is not None:
            buffer[1].append(event)
        return
    ctx.session.add(AuditEvent(**audit))
    if event is not None:
        ctx.session.add(Event(**event))


def insert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (keyed by column name) in one set-based write (COPY on PostgreSQL), without ORM
    bookkeeping or an autoflush."""
    write_rows(session, model.__table__, rows)


@contextmanager
def buffered(session: Session) -> Iterator[None]:
    """Collect the audit rows and events recorded in the block; write them at its end (same transaction)."""
    if _BUFFER in session.info:  # already buffering: the outer block writes
        yield
        return
    session.info[_BUFFER] = ([], [])
    try:
        yield
        audits, events = session.info[_BUFFER]
        insert_rows(session, AuditEvent, audits)
        insert_rows(session, Event, events)
    finally:
        session.info.pop(_BUFFER, None)

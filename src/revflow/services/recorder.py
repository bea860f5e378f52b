"""Audit trail and domain events, written in the caller's transaction (transactional outbox)."""

from __future__ import annotations

from typing import Any

from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.storage.models import AuditEvent, Event

__all__ = ["diff", "record"]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return ``{field: {"before": old, "after": new}}`` for the fields that differ."""
    keys = set(before) | set(after)
    return {
        k: {"before": before.get(k), "after": after.get(k)}
        for k in sorted(keys)
        if before.get(k) != after.get(k)
    }


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

    Both join the caller's transaction: they commit with the change or not at all.
    """
    now = ctx.now()
    ctx.session.add(
        AuditEvent(
            id=new_id("aud"),
            org_id=ctx.org_id,
            actor_type=ctx.actor.type,
            actor_id=ctx.actor.id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            changes=changes,
            request_id=ctx.request_id,
            created_at=now,
        )
    )
    if event_type is not None:
        ctx.session.add(
            Event(
                id=new_id("evt"),
                org_id=ctx.org_id,
                type=event_type,
                object_type=object_type,
                object_id=object_id,
                data={"object": data or {}},
                created_at=now,
            )
        )

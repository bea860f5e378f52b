"""Idempotency-Key handling with Stripe's semantics.

The key row is inserted at the start of the request's own transaction and its response stored in that
same transaction, so the effect and the stored response commit together. A concurrent request with the
same key blocks on the key's unique index (PostgreSQL) or the write lock (SQLite) and, once the first
commits, replays its response: the two never both execute.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from revflow.domain.errors import InvalidInput
from revflow.storage.models import IdempotencyKey

__all__ = ["IdempotencyKeyReused", "Replay", "claim", "purge_expired", "request_hash", "store_response"]


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def claim(
    session: Session, *, org_id: str, key: str, method: str, path: str, digest: str, now: datetime
) -> Replay | None:
    """Claim ``key`` for this request inside the session's transaction.

    Returns None when this request is the first (go ahead), or the stored Replay. Raises
    IdempotencyKeyReused when the key was used with another request.
    """
    row = IdempotencyKey(
        org_id=org_id, key=key, request_hash=digest, method=method, path=path, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
        return None
    except IntegrityError:
        pass
    existing = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.org_id == org_id, IdempotencyKey.key == key)
    )
    if existing is None or existing.response_status is None:  # pragma: no cover - the holder rolled back
        raise InvalidInput("the first request with this key failed; retry", code="idempotency_retry")
    if existing.request_hash != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request; use a new key",
        )
    return Replay(existing.response_status, existing.response_body or "")


def store_response(session: Session, *, org_id: str, key: str, status: int, body: str) -> None:
    """Store the response of the request that claimed ``key`` (same transaction)."""
    row = session.get(IdempotencyKey, (org_id, key))
    if row is not None:
        row.response_status = status
        row.response_body = body


def purge_expired(session: Session, *, now: datetime, ttl_hours: int) -> int:
    """Delete keys older than ``ttl_hours``; returns how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - timedelta(hours=ttl_hours))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

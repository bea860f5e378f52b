"""Organizations (tenants) and their API keys. Keys are shown once and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.services.recorder import record
from revflow.storage.models import ApiKey, Organization

__all__ = [
    "KEY_PREFIX",
    "authenticate",
    "create_api_key",
    "create_organization",
    "hash_key",
    "revoke_api_key",
]

KEY_PREFIX = "rf_sk_"


def hash_key(secret: str) -> str:
    """SHA-256 hex of a secret key (keys carry 190 random bits, so a fast hash is the right tool)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_organization(
    session: Session, *, name: str, now: datetime, email: str | None = None
) -> Organization:
    """Create an organization and return it (the caller commits)."""
    org = Organization(
        id=new_id("org"), name=name, email=email, address={}, tax_ids=[], metadata_={}, created_at=now
    )
    session.add(org)
    session.flush()
    return org


def create_api_key(ctx: Ctx, *, name: str = "default") -> tuple[ApiKey, str]:
    """Create a secret key for the organization; returns (record, secret). The secret is never stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        org_id=ctx.org_id,
        name=name,
        prefix=secret[:12],
        key_hash=hash_key(secret),
        created_at=ctx.now(),
    )
    ctx.session.add(key)
    ctx.session.flush()
    record(
        ctx,
        action="api_key.create",
        object_type="api_key",
        object_id=key.id,
        changes={"name": {"before": None, "after": name}, "prefix": {"before": None, "after": key.prefix}},
    )
    return key, secret


def revoke_api_key(ctx: Ctx, key_id: str) -> ApiKey:
    """Revoke a key (idempotent); later requests with it answer 401."""
    key = ctx.get(ApiKey, key_id, for_update=True, label="api key")
    if key.revoked_at is None:
        key.revoked_at = ctx.now()
        ctx.session.flush()
        record(
            ctx,
            action="api_key.revoke",
            object_type="api_key",
            object_id=key.id,
            changes={"revoked": {"before": False, "after": True}},
        )
    return key


#: Built once: every API request runs it (see :func:`revflow.storage.bulk.per_dialect`).
_BY_HASH = select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash"))


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """Return the live key matching ``secret``, or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = session.scalar(_BY_HASH, {"key_hash": hash_key(secret)})
    if key is None or key.revoked_at is not None:
        return None
    return key

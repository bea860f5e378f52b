"""Gapless document numbers per organization, handed out under a row lock."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from revflow.services.context import Ctx
from revflow.storage.models import NumberSequence

__all__ = ["next_number", "reserve_numbers"]


def next_number(ctx: Ctx, *, kind: str) -> int:
    """Return the next number of ``kind`` (``invoice``, ``credit_note``) for the organization.

    The UPDATE takes a row lock held until the caller's transaction ends, so concurrent finalizations
    queue; a rollback returns the number, so numbers never skip.
    """
    dialect = ctx.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    ctx.session.execute(
        insert(NumberSequence).values(org_id=ctx.org_id, kind=kind, last_value=0).on_conflict_do_nothing()
    )
    value = ctx.session.execute(
        update(NumberSequence)
        .where(NumberSequence.org_id == ctx.org_id, NumberSequence.kind == kind)
        .values(last_value=NumberSequence.last_value + 1)
        .returning(NumberSequence.last_value)
    ).scalar_one()
    return int(value)


def reserve_numbers(ctx: Ctx, *, kind: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of ``kind`` and return the first (same lock and rollback
    rules as :func:`next_number`: the caller must use all of them in this transaction)."""
    dialect = ctx.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    ctx.session.execute(
        insert(NumberSequence).values(org_id=ctx.org_id, kind=kind, last_value=0).on_conflict_do_nothing()
    )
    last = ctx.session.execute(
        update(NumberSequence)
        .where(NumberSequence.org_id == ctx.org_id, NumberSequence.kind == kind)
        .values(last_value=NumberSequence.last_value + count)
        .returning(NumberSequence.last_value)
    ).scalar_one()
    return int(last) - count + 1

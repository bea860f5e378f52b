"""Gapless document numbers, handed out under a row lock: one sequence per organization and document kind,
and one per test clock for the documents of customers on a clock (ADR 0040)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from revflow.services.context import Ctx
from revflow.storage.models import NumberSequence, TestClock, TestClockNumberSequence

__all__ = ["next_clock_number", "next_number", "reserve_numbers"]


def next_number(ctx: Ctx, *, kind: str, prefix: str, test_clock_id: str | None = None) -> str:
    """Return the next number of ``kind`` (``invoice``, ``credit_note``, ``quote``) as printed on the
    document: ``prefix`` and six digits (``INV-000042``) from the organization's sequence, or, for a
    customer on a test clock, ``prefix``, ``TEST``, the clock's number and six digits (``INV-TEST3-000001``)
    from the clock's own sequence, so simulations never take a real document's number.

    The UPDATE takes a row lock held until the caller's transaction ends, so concurrent finalizations
    queue; a rollback returns the number, so numbers never skip.
    """
    return reserve_numbers(ctx, kind=kind, prefix=prefix, count=1, test_clock_id=test_clock_id)[0]


def reserve_numbers(
    ctx: Ctx, *, kind: str, prefix: str, count: int, test_clock_id: str | None = None
) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``kind`` and return them in order, printed as
    :func:`next_number` prints one (same sequences, lock and rollback rules: the caller must use all of
    them in this transaction)."""
    if test_clock_id is None:
        first = _advance(ctx, NumberSequence, {"org_id": ctx.org_id, "kind": kind}, count)
        return [f"{prefix}{first + i:06d}" for i in range(count)]
    clock = ctx.get(TestClock, test_clock_id, label="test clock")
    key = {"test_clock_id": clock.id, "kind": kind}
    first = _advance(ctx, TestClockNumberSequence, {**key, "org_id": ctx.org_id}, count)
    return [f"{prefix}TEST{clock.number}-{first + i:06d}" for i in range(count)]


def next_clock_number(ctx: Ctx) -> int:
    """Return the next test clock number of the organization (1, 2, 3…), under the same lock."""
    return _advance(ctx, NumberSequence, {"org_id": ctx.org_id, "kind": "test_clock"}, 1)


def _advance(
    ctx: Ctx,
    model: type[NumberSequence] | type[TestClockNumberSequence],
    key: dict[str, str],
    count: int,
) -> int:
    """Add ``count`` to the sequence row of ``model`` at ``key`` (created at 0 if missing) and return the
    first of the numbers taken."""
    dialect = ctx.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    ctx.session.execute(insert(model).values(**key, last_value=0).on_conflict_do_nothing())
    where = [getattr(model, column) == value for column, value in key.items()]
    last = ctx.session.execute(
        update(model).where(*where).values(last_value=model.last_value + count).returning(model.last_value)
    ).scalar_one()
    return int(last) - count + 1

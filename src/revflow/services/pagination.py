"""Cursor pagination: newest first, ``starting_after`` / ``ending_before`` by id, ``has_more``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select

from revflow.domain.errors import InvalidInput
from revflow.services.context import Ctx

__all__ = ["MAX_LIMIT", "Page", "filtered", "paginate"]

T = TypeVar("T")
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


def filtered(stmt: Select[Any], *filters: tuple[Any, object | None]) -> Select[Any]:
    """``stmt`` narrowed by a list's optional filters: ``column == value`` for each ``(column, value)``
    whose value is not None (a filter left out of the request)."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def paginate(
    ctx: Ctx,
    stmt: Select[Any],
    model: Any,
    *,
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Page[Any]:
    """Return one page of ``stmt`` (already filtered by organization), newest first.

    Ids are time-ordered, so the cursor is the id itself. Raises InvalidInput for a bad limit or both cursors.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}", details=[{"field": "limit", "code": "out_of_range"}]
        )
    if starting_after and ending_before:
        raise InvalidInput("use starting_after or ending_before, not both", code="invalid_cursor")
    if ending_before:
        rows = list(
            ctx.session.scalars(
                stmt.where(model.id > ending_before).order_by(model.id.asc()).limit(limit + 1)
            )
        )
        has_more = len(rows) > limit
        return Page(list(reversed(rows[:limit])), has_more)
    if starting_after:
        stmt = stmt.where(model.id < starting_after)
    rows = list(ctx.session.scalars(stmt.order_by(model.id.desc()).limit(limit + 1)))
    return Page(rows[:limit], len(rows) > limit)

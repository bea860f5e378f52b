"""The unit of work every use case runs in: one database transaction, one tenant, one actor, one clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import false
from sqlalchemy.orm import Session

from revflow.domain.clock import Clock
from revflow.domain.errors import NotFound

__all__ = ["SYSTEM", "Actor", "Ctx"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (``api_key``, its id), the worker (``system``) or an operator (``cli``)."""

    type: str
    id: str | None = None


SYSTEM = Actor("system")


@dataclass(slots=True)
class Ctx:
    """A unit of work. Services add to ``session``; the caller commits (or rolls back) once."""

    session: Session
    org_id: str
    actor: Actor
    clock: Clock
    request_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()

    def get(self, model: type[T], obj_id: str, *, for_update: bool = False, label: str | None = None) -> T:
        """Return the organization's ``model`` row with ``obj_id``; raises NotFound (404) when it does not
        exist or belongs to another organization (the two are indistinguishable on purpose)."""
        stmt = self.session.query(model).filter_by(id=obj_id)
        if hasattr(model, "org_id"):
            stmt = stmt.filter_by(org_id=self.org_id)
        elif obj_id != self.org_id:  # the organization itself
            stmt = stmt.filter(false())
        if for_update:
            stmt = stmt.with_for_update()
        obj = stmt.one_or_none()
        if obj is None:
            name = label or getattr(model, "__tablename__", "object").rstrip("s")
            raise NotFound(
                f"No such {name}: '{obj_id}'", details=[{"field": "id", "code": "resource_missing"}]
            )
        return obj

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

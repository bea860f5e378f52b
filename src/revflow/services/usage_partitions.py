"""Monthly partitions of ``usage_events`` on PostgreSQL (SQLite keeps one table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["ensure_partitions"]


def _next(y: int, m: int) -> tuple[int, int]:
    return (y + 1, 1) if m == 12 else (y, m + 1)


def ensure_partitions(session: Session, *, now: datetime, months_ahead: int = 3) -> list[str]:
    """Create the missing monthly partitions from the current month to ``months_ahead`` months after
    it; returns the names created. Nothing to do on SQLite. A month whose rows already sit in the
    default partition cannot get its own partition (PostgreSQL refuses): create partitions ahead."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    existing = set(
        session.scalars(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'usage_events'"
            )
        )
    )
    created = []
    y, m = now.year, now.month
    for _ in range(months_ahead + 1):
        name = f"usage_events_{y}_{m:02d}"
        ny, nm = _next(y, m)
        if name not in existing:
            session.execute(
                text(
                    f"CREATE TABLE usage_partitions.{name} PARTITION OF usage_events "
                    f"FOR VALUES FROM ('{y}-{m:02d}-01 00:00+00') TO ('{ny}-{nm:02d}-01 00:00+00')"
                )
            )
            created.append(name)
        y, m = ny, nm
    return created

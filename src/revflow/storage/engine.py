"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from revflow.storage.types import exact_json

__all__ = ["alembic_config", "make_engine", "make_session_factory", "migrate", "normalize_url"]


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` and ``postgres://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """Return an engine for ``url``.

    On SQLite every transaction (reads included) starts with ``BEGIN IMMEDIATE``: requests run one at a
    time, so a writer never fails half-way on a lock upgrade; foreign keys are enforced and the file runs
    in WAL mode. PostgreSQL is the choice for concurrent load. Migrations pass ``foreign_keys=False``:
    SQLite's batch mode rebuilds tables, which enforced foreign keys would refuse.
    """
    url = normalize_url(url)
    kwargs.setdefault("json_serializer", _json_text)  # exact Decimals, as numbers
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kwargs:
        # Requests in a transaction are capped at the pool's size (api/tx.py), so that their connections
        # stay open between requests: an overflow connection is closed when it is returned, and opening
        # one costs a PostgreSQL backend start. The overflow serves the worker and group commits.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
    # psycopg prepares a statement run five times on a connection, and PostgreSQL may then switch it to a
    # generic plan that does not know the parameters: on the time-partitioned usage_events that plan cannot
    # prune partitions when it is made and picks parallel scans of whole months (current usage took 0.5 s
    # instead of 20 ms once pooled connections lived long enough). Plans are made for the actual values.
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("options", "-c plan_cache_mode=force_custom_plan")
    return create_engine(url, connect_args=connect_args, **kwargs)


def _json_text(value: Any) -> str:
    return exact_json(value).decode()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic configuration for the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files("revflow.storage") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on the database at ``url``."""
    command.upgrade(alembic_config(url), revision)

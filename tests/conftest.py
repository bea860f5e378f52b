"""Fixtures: every integration test runs on SQLite and on PostgreSQL, each run in its own database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from revflow.api.app import create_app
from revflow.bootstrap import Container, build
from revflow.config import Settings
from revflow.domain.clock import Clock
from revflow.services import orgs
from revflow.services.context import Actor, Ctx
from revflow.storage.engine import migrate
from revflow.storage.models import Base

PG_ADMIN = os.environ.get("REVFLOW_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("REVFLOW_REQUIRE_POSTGRES") == "1"


def _pg_available() -> bool:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if not _pg_available():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (REVFLOW_REQUIRE_POSTGRES=1) but {PG_ADMIN} does not answer")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}; set REVFLOW_TEST_PG_ADMIN to run these")
    name = f"revflow_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    migrate(url)
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("postgres_only")
    if marker is not None and request.param != "postgresql":
        pytest.skip("PostgreSQL only")
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "revflow.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("pg_database"))


def container_for(db_url: str, *, clock: Clock | None = None, **settings: Any) -> Iterator[Container]:
    """A container on the test's database with these ``settings`` (and ``clock``); on PostgreSQL its tables
    are emptied afterwards. A fixture yields from it: ``yield from container_for(db_url, ...)``."""
    c = build(Settings(database_url=db_url, **settings), clock=clock, auto_migrate=False)
    yield c
    if c.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with c.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    c.close()


@pytest.fixture
def container(db_url: str) -> Iterator[Container]:
    yield from container_for(db_url)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as tc:
        yield tc


@dataclass
class Tenant:
    """An organization with a live API key, and a client bound to it."""

    org_id: str
    key: str
    key_id: str
    http: TestClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.http.post(path, json=json, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.http.patch(path, json=json, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.http.delete(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def make_tenant(container: Container, http: TestClient, name: str = "Acme Billing") -> Tenant:
    with container.sessions() as session:
        org = orgs.create_organization(session, name=name, now=container.clock.now())
        ctx = Ctx(session=session, org_id=org.id, actor=Actor("cli"), clock=container.clock)
        key, secret = orgs.create_api_key(ctx)
        session.commit()
        return Tenant(org.id, secret, key.id, http)


@pytest.fixture
def tenant(container: Container, client: TestClient) -> Tenant:
    return make_tenant(container, client)


@pytest.fixture
def other_tenant(container: Container, client: TestClient) -> Tenant:
    return make_tenant(container, client, name="Other Org")

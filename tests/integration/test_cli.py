"""The revflow command: migrate, orgs create, demo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from revflow.cli.main import app
from revflow.config import get_settings


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("REVFLOW_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("REVFLOW_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


class TestCli:
    def test_orgs_create_prints_a_working_key_as_the_last_line(self, sqlite_env: Path) -> None:
        from fastapi.testclient import TestClient

        from revflow.api.app import create_app
        from revflow.bootstrap import build

        result = CliRunner().invoke(app, ["orgs", "create", "--name", "My Co"])

        assert result.exit_code == 0, result.output
        key = result.stdout.rstrip("\n").splitlines()[-1]
        assert key.startswith("rf_sk_")
        with TestClient(create_app(build(get_settings()))) as http:
            r = http.get("/v1/customers", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["data"] == []

    def test_demo_loads_customers_and_a_year_of_collected_invoices(self, sqlite_env: Path) -> None:
        from fastapi.testclient import TestClient

        from revflow.api.app import create_app
        from revflow.bootstrap import build

        result = CliRunner().invoke(app, ["demo"])
        again = CliRunner().invoke(app, ["demo"])

        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Created demo organization")
        assert again.exit_code == 0 and again.stdout.startswith("Found demo organization")
        key = result.stdout.strip().splitlines()[-1].split()[-1]
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(build(get_settings()), start_worker=False)) as http:
            customers = http.get("/v1/customers", headers=auth, params={"limit": 100}).json()["data"]
            invoices = http.get("/v1/invoices", headers=auth, params={"limit": 100}).json()["data"]
            subs = http.get("/v1/subscriptions", headers=auth, params={"limit": 100}).json()["data"]
            emails = http.get("/v1/emails", headers=auth, params={"limit": 100}).json()["data"]
        by_name = {c["name"]: c["id"] for c in customers}
        assert len(customers) == 9
        assert {i["currency"] for i in invoices} == {"USD", "EUR", "JPY"}
        assert sorted(s["status"] for s in subs) == ["active"] * 5 + ["canceled"]
        globex = sorted(
            (i for i in invoices if i["customer_id"] == by_name["Globex Corporation"]),
            key=lambda i: i["created_at"],
        )
        assert [(i["discount"], i["total"], i["status"]) for i in globex] == [
            (200000, 800000, "paid"),
            (0, 1000000, "open"),
        ]
        reasons = {i["billing_reason"] for i in invoices}
        assert {"manual", "subscription_create", "subscription_cycle", "subscription_update"} <= reasons
        assert sorted(e["template"] for e in emails) == ["recovered", "retry", "retry", "retry"]

    def test_a_demo_left_half_loaded_is_set_aside_and_loaded_again(self, sqlite_env: Path) -> None:
        from sqlalchemy import select

        from revflow.bootstrap import build
        from revflow.services.demo import DEMO_NAME
        from revflow.storage.models import Organization

        container = build(get_settings())
        with container.sessions() as session:  # what an interrupted load leaves behind
            org = Organization(
                id="org_halfloaded",
                name=DEMO_NAME,
                metadata_={"demo": "loading"},
                created_at=datetime.now(UTC),
            )
            session.add(org)
            session.commit()

        result = CliRunner().invoke(app, ["demo"])

        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Created demo organization")
        with container.sessions() as session:
            names = {r.id: r.name for r in session.execute(select(Organization.id, Organization.name))}
        container.close()
        assert names.pop("org_halfloaded") == f"{DEMO_NAME} (incomplete)"
        assert list(names.values()) == [DEMO_NAME]

    def test_migrate_reports_success(self, sqlite_env: Path) -> None:
        result = CliRunner().invoke(app, ["migrate"])

        assert result.exit_code == 0, result.output
        assert sqlite_env.exists()

    def test_a_database_that_does_not_answer_says_what_to_do(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REVFLOW_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
        get_settings.cache_clear()

        result = CliRunner().invoke(app, ["orgs", "create", "--name", "X"])

        get_settings.cache_clear()
        assert result.exit_code == 1
        assert "revflow migrate" in result.output


def test_httpx_is_available_for_sdk_style_clients() -> None:
    assert httpx.__version__

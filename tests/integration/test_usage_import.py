"""revflow usage import: per-row errors with line numbers, resumable after a crash, dedupe on retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from revflow.bootstrap import Container
from revflow.cli.main import app
from revflow.config import get_settings
from revflow.services import usage_import
from revflow.storage.usage_models import UsageEvent, UsageImport
from tests.conftest import Tenant
from tests.integration.usage_helpers import customer, metric


def _csv(tmp_path: Path, customer_id: str, n: int, bad_lines: dict[int, str] | None = None) -> Path:
    rows = ["transaction_id,customer_id,metric_code,timestamp,properties.bytes,region"]
    for i in range(n):
        value = (bad_lines or {}).get(i, str(i + 1))
        rows.append(f"tx{i},{customer_id},bytes,2024-06-01T00:{i % 60:02d}:00Z,{value},eu")
    path = tmp_path / "usage.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _events(container: Container, org_id: str) -> int:
    with container.sessions() as s:
        return int(
            s.scalar(select(func.count()).select_from(UsageEvent).where(UsageEvent.org_id == org_id)) or 0
        )


class TestCsvImport:
    def test_imports_good_rows_and_reports_bad_ones_by_line(
        self, tenant: Tenant, container: Container, tmp_path: Path
    ) -> None:
        metric(tenant, "bytes", "sum", property="bytes")
        path = _csv(tmp_path, customer(tenant), 30, bad_lines={4: "lots", 20: "1.0000001"})

        result = usage_import.import_csv(
            container.sessions, org_id=tenant.org_id, path=path, clock=container.clock, chunk=7
        )

        assert (result.rows, result.accepted, result.rejected) == (30, 28, 2)
        assert [(b.line, b.code) for b in result.bad] == [(6, "invalid_value"), (22, "invalid_value")]
        assert _events(container, tenant.org_id) == 28
        listed = tenant.get("/v1/usage_events", params={"limit": 1}).json()["data"][0]
        assert listed["properties"] == {"bytes": "30", "region": "eu"}

    def test_an_interrupted_import_resumes_after_the_last_committed_chunk(
        self, tenant: Tenant, container: Container, tmp_path: Path
    ) -> None:
        metric(tenant, "bytes", "sum", property="bytes")
        path = _csv(tmp_path, customer(tenant), 25)
        seen: list[int] = []

        def crash_after_two_chunks(n: int) -> None:
            seen.append(n)
            if len(seen) == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            usage_import.import_csv(
                container.sessions,
                org_id=tenant.org_id,
                path=path,
                clock=container.clock,
                chunk=10,
                progress=crash_after_two_chunks,
            )
        resumed = usage_import.import_csv(
            container.sessions, org_id=tenant.org_id, path=path, clock=container.clock, chunk=10
        )
        again = usage_import.import_csv(
            container.sessions, org_id=tenant.org_id, path=path, clock=container.clock, chunk=10
        )

        assert (resumed.skipped, resumed.rows, resumed.accepted, resumed.duplicates) == (20, 5, 5, 0)
        assert (again.skipped, again.rows) == (25, 0)
        assert _events(container, tenant.org_id) == 25
        with container.sessions() as s:
            state = s.scalars(select(UsageImport).where(UsageImport.org_id == tenant.org_id)).one()
        assert (state.rows_done, state.accepted) == (25, 25)


class TestImportCommand:
    def test_the_command_prints_counts_and_bad_lines(
        self, tenant: Tenant, container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        metric(tenant, "bytes", "sum", property="bytes")
        path = _csv(tmp_path, customer(tenant), 5, bad_lines={2: "x"})
        monkeypatch.setenv(
            "REVFLOW_DATABASE_URL", str(container.engine.url.render_as_string(hide_password=False))
        )
        monkeypatch.setenv("REVFLOW_LOG_LEVEL", "WARNING")
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["usage", "import", str(path), "--org", tenant.org_id])
        finally:
            get_settings.cache_clear()

        assert result.exit_code == 1, result.output
        assert "Imported 5 rows: 4 accepted, 0 duplicates, 1 rejected." in result.stdout
        assert "line 4: invalid_value" in result.stderr
        assert _events(container, tenant.org_id) == 4

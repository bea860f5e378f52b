"""The data-flow map's catalog and the committed docs/data-flows.md generated from it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from revflow.cli.main import app
from revflow.services.crm_sync import _HANDLERS
from revflow.services.flows import CATALOG, render_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "data-flows.md"


class TestDataFlowMap:
    def test_the_committed_document_is_what_the_code_generates(self) -> None:
        assert DOC.read_text() == render_markdown(), (
            "run: revflow integrations flows --markdown > docs/data-flows.md"
        )

    def test_the_cli_prints_the_same_markdown(self) -> None:
        result = CliRunner().invoke(app, ["integrations", "flows", "--markdown"])

        assert result.exit_code == 0, result.output
        assert result.output == render_markdown()

    def test_every_flow_is_carried_by_sync_job_kinds_the_code_runs(self) -> None:
        kinds = {k for flows in CATALOG.values() for f in flows for k in f.kinds}

        assert kinds == set(_HANDLERS)
        assert set(CATALOG) == {"hubspot", "salesforce"}
        for flows in CATALOG.values():
            assert {f.direction for f in flows} == {"outbound", "inbound", "compare"}

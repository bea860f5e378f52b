"""One migration history for SQLite and PostgreSQL: complete, reversible, and in step with the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from revflow.bootstrap import Container
from revflow.storage.engine import alembic_config
from revflow.storage.models import Base


class TestMigrations:
    def test_the_models_match_the_migrated_schema(self, container: Container) -> None:
        with container.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)

        assert diffs == []

    def test_downgrade_to_base_and_upgrade_again(self, db_url: str, container: Container) -> None:
        cfg = alembic_config(db_url)

        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")

        with container.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() is not None

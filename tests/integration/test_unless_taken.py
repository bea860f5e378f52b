"""storage.bulk.unless_taken: a statement in a pipelined savepoint, run again and again on one connection."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from revflow.bootstrap import Container
from revflow.storage.bulk import unless_taken

_INSERT = "INSERT INTO unless_taken_t (k) SELECT %(k)s"


@pytest.mark.postgres_only
class TestUnlessTaken:
    def test_taken_and_free_keys_alternate_on_one_connection(self, container: Container) -> None:
        # psycopg prepares a statement on its sixth run. Five keys go in, then every run is refused: the
        # release's sixth run is queued behind a refused insert, which a prepared release does not survive.
        with container.sessions() as s:
            s.execute(text("CREATE TEMP TABLE unless_taken_t (k int CONSTRAINT unless_taken_pk PRIMARY KEY)"))
            ran = [unless_taken(s, _INSERT, {"k": i % 5}, "unless_taken_pk") for i in range(12)]
            s.execute(text("INSERT INTO unless_taken_t VALUES (100)"))  # the transaction goes on
            keys = s.scalars(text("SELECT k FROM unless_taken_t ORDER BY k")).all()
            s.rollback()

        assert ran == [True] * 5 + [False] * 7
        assert keys == [*range(5), 100]

    def test_another_constraint_fails_the_transaction(self, container: Container) -> None:
        with container.sessions() as s:
            s.execute(text("CREATE TEMP TABLE unless_taken_t (k int CONSTRAINT unless_taken_pk PRIMARY KEY)"))
            unless_taken(s, _INSERT, {"k": 1}, "unless_taken_pk")

            with pytest.raises(psycopg.errors.UniqueViolation, match="unless_taken_pk"):
                unless_taken(s, _INSERT, {"k": 1}, "some_other_constraint")
            s.rollback()

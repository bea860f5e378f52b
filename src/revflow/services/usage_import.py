"""Backfill usage from a CSV file, resumably.

The file is read in chunks of rows; each chunk is ingested like an API batch (per-row results,
deduplicated on transaction id) and the import's progress (rows done, counts) is committed in the same
transaction as the chunk's events. The progress is keyed by the file's SHA-256, so running the same
import again resumes after the last committed chunk; a chunk that was committed is never re-read, and
one that was not is re-read whole (its events dedupe anyway).

Columns: ``transaction_id``, ``metric_code``, ``customer_id`` / ``external_customer_id`` /
``subscription_id``, ``timestamp`` (ISO 8601, default now); every other non-empty column is a property
(``properties.region`` and ``region`` both give the property ``region``).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from revflow.domain.clock import Clock
from revflow.services.context import Actor, Ctx
from revflow.services.recorder import record
from revflow.services.usage_ingest import MAX_BATCH, ingest
from revflow.storage.usage_models import UsageImport

__all__ = ["BadRow", "ImportResult", "count_rows", "file_digest", "import_csv"]

_FIELDS = {
    "transaction_id",
    "metric_code",
    "customer_id",
    "external_customer_id",
    "subscription_id",
    "timestamp",
}


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    transaction_id: str | None
    code: str
    message: str


@dataclass
class ImportResult:
    digest: str
    skipped: int = 0
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    bad: list[BadRow] = field(default_factory=list)


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def count_rows(path: Path) -> int:
    """Data rows in the file (records after the header)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def _event(row: dict[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    props: dict[str, str] = {}
    for name, value in row.items():
        if name is None or value is None or value == "":
            continue
        key = name.strip()
        if key in _FIELDS:
            event[key] = value
        else:
            props[key.removeprefix("properties.")] = value
    if props:
        event["properties"] = props
    return event


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield reader.line_num, _event(row)


def import_csv(
    sessions: sessionmaker[Session],
    *,
    org_id: str,
    path: Path,
    clock: Clock,
    chunk: int = MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import ``path`` into the organization's usage events, resuming after the rows a previous run
    committed. Returns the counts of this run and the rejected rows with their line numbers. Raises
    NotFound for an unknown organization."""
    digest = file_digest(path)
    result = ImportResult(digest)
    with sessions() as s:
        state = s.get(UsageImport, (org_id, digest))
        done = state.rows_done if state is not None else 0
    result.skipped = done
    if progress is not None and done:
        progress(done)
    pending: list[tuple[int, dict[str, Any]]] = []
    for n, item in enumerate(_rows(path)):
        if n < done:
            continue
        pending.append(item)
        if len(pending) >= chunk:
            _commit_chunk(sessions, org_id, digest, clock, pending, result)
            if progress is not None:
                progress(len(pending))
            pending = []
    if pending:
        _commit_chunk(sessions, org_id, digest, clock, pending, result)
        if progress is not None:
            progress(len(pending))
    return result


def _commit_chunk(
    sessions: sessionmaker[Session],
    org_id: str,
    digest: str,
    clock: Clock,
    rows: list[tuple[int, dict[str, Any]]],
    result: ImportResult,
) -> None:
    with sessions() as s:
        ctx = Ctx(session=s, org_id=org_id, actor=Actor("cli"), clock=clock)
        outcomes = ingest(ctx, [event for _, event in rows])
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for (line, _), outcome in zip(rows, outcomes, strict=True):
            counts[outcome.status] += 1
            if outcome.status == "rejected":
                result.bad.append(
                    BadRow(line, outcome.transaction_id, outcome.code or "", outcome.message or "")
                )
        state = s.get(UsageImport, (org_id, digest), with_for_update=True)
        if state is None:
            state = UsageImport(
                org_id=org_id, digest=digest, rows_done=0, accepted=0, duplicates=0, rejected=0
            )
            s.add(state)
        state.rows_done += len(rows)
        state.accepted += counts["accepted"]
        state.duplicates += counts["duplicate"]
        state.rejected += counts["rejected"]
        state.updated_at = ctx.now()
        record(
            ctx,
            action="usage.import",
            object_type="usage_import",
            object_id=digest[:40],
            changes={"rows_done": {"before": state.rows_done - len(rows), "after": state.rows_done}},
        )
        s.commit()
    result.rows += len(rows)
    result.accepted += counts["accepted"]
    result.duplicates += counts["duplicate"]
    result.rejected += counts["rejected"]

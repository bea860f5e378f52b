"""Benchmark: outbox fan-out and webhook delivery of N events to a local receiver.

    .venv/bin/python bench/outbox_delivery.py                    # PostgreSQL at 127.0.0.1:5432, N=5000
    .venv/bin/python bench/outbox_delivery.py --sqlite --n 2000  # embedded SQLite, one worker
    .venv/bin/python bench/outbox_delivery.py --workers 4        # four worker threads share the work

Writes N events (N/5 objects with 5 events each) with a bulk insert (the outbox trigger enqueues them),
registers one webhook endpoint subscribed to everything at a threaded local HTTP receiver that verifies
nothing and answers 200, fans the events out (timed apart), then runs the delivery (claim, sign, send,
record) in the worker threads until done. Prints wall times, deliveries per second, the attempts of each
worker, and checks that every event arrived once, in order per object.
Each run uses a database of its own. Setup is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from revflow.adapters.crypto import FernetSecretBox
from revflow.adapters.webhooks import HttpWebhookSender
from revflow.domain.clock import FrozenClock
from revflow.domain.ids import new_id
from revflow.services import orgs, outbox
from revflow.storage.engine import make_engine, make_session_factory, migrate
from revflow.storage.hub_models import WebhookEndpoint
from revflow.storage.models import Event


def _receiver() -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with lock:
                got.append(json.loads(body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    name = None
    if args.sqlite:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    else:
        name = f"revflow_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        migrate(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        clock = FrozenClock(datetime.now(UTC))
        server, got = _receiver()
        box = FernetSecretBox("bench-secret-key")
        with sessions() as s:
            org = orgs.create_organization(s, name="Bench", now=clock.now())
            s.add(
                WebhookEndpoint(
                    id=new_id("we"),
                    org_id=org.id,
                    url=f"http://127.0.0.1:{server.server_address[1]}/hooks",
                    enabled_events=["*"],
                    status="enabled",
                    secret=box.seal("whsec_" + "A" * 43 + "="),
                    metadata_={},
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
            objects = [new_id("cus") for _ in range(max(1, args.n // 5))]
            rows = [
                {
                    "id": new_id("evt"),
                    "org_id": org.id,
                    "type": "customer.updated",
                    "object_type": "customer",
                    "object_id": objects[i % len(objects)],
                    "data": {"object": {"id": objects[i % len(objects)], "version": i}},
                    "created_at": clock.now(),
                }
                for i in range(args.n)
            ]
            s.execute(insert(Event), rows)
            s.commit()
        sender = HttpWebhookSender(allow_private=True)
        results: list[outbox.DeliveryStats] = []

        def work() -> None:
            results.append(
                outbox.deliver_due(
                    sessions,
                    sender=sender,
                    box=box,
                    clock=clock,
                    config=outbox.DeliveryConfig(batch_size=50, max_rounds=10_000),
                )
            )

        started = time.perf_counter()
        fanned = 0
        while True:
            with sessions() as s:
                n = outbox.fan_out(s, now=clock.now())
                s.commit()
            fanned += n
            if n == 0:
                break
        fan_out_time = time.perf_counter() - started
        started = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        per_object: dict[str, list[int]] = {}
        for p in got:
            per_object.setdefault(p["object_id"], []).append(p["data"]["object"]["version"])
        in_order = all(v == sorted(v) for v in per_object.values())
        backend = "sqlite" if args.sqlite else "postgresql"
        print(
            f"{backend}: fan-out of {fanned} events {fan_out_time:.2f} s; "
            f"delivery with {args.workers} worker(s): {elapsed:.1f} s, "
            f"{len(got) / elapsed:.0f} deliveries/s; received {len(got)}, unique "
            f"{len({p['id'] for p in got})}, in order per object: {in_order}; "
            f"attempts per worker {[r.attempted for r in results]}"
        )
        server.shutdown()
        sender.close()
        engine.dispose()
    finally:
        if name is not None:
            with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Benchmark: usage event ingestion over HTTP, single-event latency, current-usage query at 10M events.

    .venv/bin/python bench/ingest.py                          # PostgreSQL at 127.0.0.1:5432, defaults below
    .venv/bin/python bench/ingest.py --events 500000 --workers 2 --concurrency 8
    .venv/bin/python bench/ingest.py --seed 0                 # skip the 10M-event query part

On a database of its own: starts ``uvicorn revflow.api.asgi:app_from_env --factory --workers W`` (the
same as ``revflow serve --workers W``), then

1. sends ``--events`` distinct events in batches of ``--batch`` over HTTP with ``--concurrency``
   requests in flight (bodies are serialized before the clock starts) and prints events/s, with
   deduplication enforced (the same batches are then sent again: every event must come back
   ``duplicate``);
2. COPYs the same number of rows into the same ``usage_events`` table with psycopg and prints its rate
   and the ratio HTTP / COPY;
3. sends ``--single`` single-event POSTs from ``--clients`` concurrent clients; prints p50 / p99;
4. prints the peak RSS (VmHWM) of each server process;
5. seeds the table to ``--seed`` events (``--seed-customer`` of them for one customer, in its current
   period) with server-side INSERT … SELECT generate_series (plus their dedupe keys and rollups), then
   times ``--queries`` calls of ``GET /v1/customers/{id}/usage`` and prints p50 / p95.

The client runs on the same host and competes for the same cores: figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from revflow.domain.ids import new_id  # noqa: E402
from revflow.services import orgs  # noqa: E402
from revflow.services.context import Actor, Ctx  # noqa: E402
from revflow.storage.engine import make_engine, make_session_factory, migrate  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += _children(int(k))
    return out


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu(pids: list[int]) -> dict[int, float]:
    """utime + stime of each of these processes, in seconds (from /proc; a gone process is left out)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _cpu_s(pids: list[int]) -> float:
    return sum(_cpu(pids).values())


def _cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds used since ``before`` by ``pids`` (a process started since counts from zero; one that
    exited since is lost, so the figure is a floor)."""
    return sum(t - before.get(pid, 0.0) for pid, t in _cpu(pids).items())


def _backends(dsn: str) -> list[int]:
    """PostgreSQL backend pids connected to the bench database (the server's pooled connections)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [r[0] for r in rows]


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _setup_org(url: str) -> tuple[str, str]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s:
        org = orgs.create_organization(s, name="Bench", now=datetime.now(UTC))
        from revflow.domain.clock import SystemClock

        ctx = Ctx(session=s, org_id=org.id, actor=Actor("cli"), clock=SystemClock())
        _, secret = orgs.create_api_key(ctx)
        s.commit()
        org_id = org.id
    engine.dispose()
    return org_id, secret


def _catalog(http: httpx.Client, customers: int, period_start: datetime) -> tuple[list[str], str]:
    r = http.post(
        "/v1/billable_metrics",
        json={"code": "api_calls", "name": "API calls", "aggregation": "sum", "property": "n"},
    )
    r.raise_for_status()
    product = http.post("/v1/products", json={"name": "API"}).json()["id"]
    price = http.post(
        "/v1/prices",
        json={
            "product_id": product,
            "currency": "USD",
            "type": "recurring",
            "interval": "month",
            "model": "graduated",
            "tiers": [
                {"up_to": 100000, "unit_amount": "0.1"},
                {"up_to": None, "unit_amount": "0.05"},
            ],
            "metric_code": "api_calls",
        },
    )
    price.raise_for_status()
    ids = []
    for i in range(customers):
        r = http.post("/v1/customers", json={"name": f"Customer {i}", "currency": "USD"})
        r.raise_for_status()
        ids.append(r.json()["id"])
    r = http.post(
        "/v1/subscriptions",
        json={
            "customer_id": ids[0],
            "items": [{"price_id": price.json()["id"]}],
            "start_at": period_start.isoformat(),
        },
    )
    r.raise_for_status()
    return ids, ids[0]


def _bodies(customers: list[str], events: int, batch: int, since: datetime, tag: str) -> list[bytes]:
    out = []
    span = max(1, int((datetime.now(UTC) - since).total_seconds()) - 60)
    for b in range(0, events, batch):
        rows = []
        for i in range(b, min(events, b + batch)):
            at = since + timedelta(seconds=(i * 7919) % span)
            rows.append(
                {
                    "transaction_id": f"{tag}-{i}",
                    "customer_id": customers[i % len(customers)],
                    "metric_code": "api_calls",
                    "timestamp": at.isoformat(),
                    "properties": {"n": 1 + i % 5, "region": "eu" if i % 2 else "us"},
                }
            )
        out.append(json.dumps({"events": rows}).encode())
    return out


def _request(port: int, key: str, path: str, body: bytes) -> bytes:
    """One pre-serialised HTTP/1.1 keep-alive request: the client sends bytes and parses nothing but the
    status line, Content-Length and (for batches) the three counts at the start of the answer."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_COUNTS = re.compile(rb'"accepted":(\d+),"duplicate":(\d+),"rejected":(\d+)')


async def _conn_loop(
    port: int, jobs: list[bytes], expect: int, out: list[float], counts: list[int], batch: bool
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for req in jobs:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            i = head.lower().index(b"content-length:")
            length = int(head[i + 15 : head.index(b"\r\n", i)])
            body = await reader.readexactly(length)
            out.append(time.perf_counter() - t0)
            if status != expect:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            if batch:
                m = _COUNTS.search(body, 0, 200)
                assert m is not None, body[:200]
                for k in range(3):
                    counts[k] += int(m.group(k + 1))
    finally:
        writer.close()


def _client_proc(
    port: int, jobs: list[list[bytes]], expect: int, batch: bool, start_at: float, conn: Any
) -> None:
    """One client process: one connection per job list, all started at ``start_at`` (time.time())."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    latencies: list[float] = []
    counts = [0, 0, 0]

    async def run() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(_conn_loop(port, j, expect, latencies, counts, batch) for j in jobs))

    asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((latencies, counts, usage.ru_utime + usage.ru_stime))  # a fork starts at zero
    conn.close()


def _load(
    port: int, requests: list[bytes], connections: int, procs: int, expect: int, batch: bool
) -> tuple[float, list[float], dict[str, int], float]:
    """Send ``requests`` over ``connections`` keep-alive connections spread over ``procs`` client
    processes. Returns wall seconds, latencies, batch counts and the CPU seconds the clients used."""
    per_conn: list[list[bytes]] = [requests[i::connections] for i in range(connections)]
    procs = max(1, min(procs, connections))
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 0.5
    pipes, children = [], []
    for p in range(procs):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_client_proc, args=(port, per_conn[p::procs], expect, batch, start_at, child)
        )
        proc.start()
        pipes.append(parent)
        children.append(proc)
    latencies: list[float] = []
    counts = [0, 0, 0]
    cpu = 0.0
    results = [pipe.recv() for pipe in pipes]
    wall = time.time() - start_at
    for proc in children:
        proc.join()
    for lat, cnt, used in results:
        latencies += lat
        counts = [a + b for a, b in zip(counts, cnt, strict=True)]
        cpu += used
    return wall, latencies, dict(zip(("accepted", "duplicate", "rejected"), counts, strict=True)), cpu


def _single_bodies(port: int, key: str, customer: str, total: int, tag: str) -> list[bytes]:
    return [
        _request(
            port,
            key,
            "/v1/usage_events",
            orjson.dumps(
                {
                    "transaction_id": f"{tag}-{i}",
                    "customer_id": customer,
                    "metric_code": "api_calls",
                    "properties": {"n": 1},
                }
            ),
        )
        for i in range(total)
    ]


def _copy(
    dsn: str, org_id: str, customers: list[str], n: int, since: datetime, tag: str
) -> tuple[float, float]:
    """COPY ``n`` rows shaped like the HTTP ones into usage_events; the text is built before the clock
    starts, so the figure is the database's own speed."""
    span = max(1, int((datetime.now(UTC) - since).total_seconds()) - 60)
    created = datetime.now(UTC).isoformat()
    base = new_id("uev")
    lines = []
    for i in range(n):
        at = (since + timedelta(seconds=(i * 7919) % span)).isoformat()
        props = json.dumps({"n": 1 + i % 5, "region": "eu" if i % 2 else "us"})
        lines.append(
            f"{base}{i:07d}\t{at}\t{org_id}\t{tag}-{i}\tapi_calls\t{customers[i % len(customers)]}"
            "\t\\N\t\\N\t"
            f"{(1 + i % 5) * 1_000_000}\t\\N\t\t{props}\tbillable\t\\N\t{created}\n"
        )
    data = "".join(lines).encode()
    cols = (
        "id, timestamp, org_id, transaction_id, metric_code, customer_id, external_customer_id, "
        "subscription_id, value, unique_value, group_key, properties, status, reason, created_at"
    )
    with psycopg.connect(dsn) as conn:
        backend = [conn.info.backend_pid]
        cpu0 = _cpu_s(backend)
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY usage_events ({cols}) FROM STDIN") as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started, _cpu_s(backend) - cpu0


def _seed(
    dsn: str, org_id: str, customers: list[str], big: str, total: int, for_big: int, since: datetime
) -> float:
    """Fill usage_events up to ``total`` rows server-side; ``for_big`` of them for ``big`` in its period."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]  # type: ignore[index]
        others = max(0, total - have - for_big)
        span_big = int((now - since).total_seconds()) - 120
        year_start = datetime(now.year, 1, 1, tzinfo=UTC)
        span_all = int((since - year_start).total_seconds())
        conn.execute("CREATE TEMP TABLE seed_customers (n int, id text)")
        with conn.cursor().copy("COPY seed_customers FROM STDIN") as copy:
            for i, cid in enumerate(customers[1:]):
                copy.write_row((i, cid))
        chunk = 1_000_000
        for lo in range(0, for_big + others, chunk):
            hi = min(for_big + others, lo + chunk)
            conn.execute(
                """
                INSERT INTO usage_events (id, timestamp, org_id, transaction_id, metric_code, customer_id,
                    value, group_key, properties, status, created_at)
                SELECT 'uev_seed' || g, CASE WHEN g < %(big_n)s
                    THEN %(since)s::timestamptz + make_interval(secs => (g::bigint * 7919) %% %(span_big)s)
                    ELSE %(year)s::timestamptz + make_interval(secs => (g::bigint * 7919) %% %(span_all)s)
                    END,
                    %(org)s, 'seed-' || g, 'api_calls',
                    CASE WHEN g < %(big_n)s THEN %(big)s
                        ELSE (SELECT id FROM seed_customers WHERE n = g %% %(nc)s) END,
                    (1 + g %% 5) * 1000000, '', '{"n": 1}'::jsonb, 'billable', now()
                FROM generate_series(%(lo)s, %(hi)s - 1) AS g
                """,
                {
                    "big_n": for_big,
                    "since": since,
                    "span_big": span_big,
                    "year": year_start,
                    "span_all": span_all,
                    "org": org_id,
                    "big": big,
                    "nc": len(customers) - 1,
                    "lo": lo,
                    "hi": hi,
                },
            )
            print(f"  seeded {hi:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        conn.execute(
            """
            INSERT INTO usage_event_keys (org_id, transaction_id, event_id, timestamp)
            SELECT org_id, transaction_id, id, timestamp FROM usage_events WHERE transaction_id LIKE 'seed-%%'
            ON CONFLICT DO NOTHING
            """
        )
        conn.execute(
            """
            INSERT INTO usage_rollups AS u (org_id, customer_id, metric_code, group_key, bucket, shard,
                events, total, min_value, max_value, latest_at, latest_value, latest_id)
            SELECT org_id, customer_id, metric_code, group_key, date_trunc('hour', timestamp, 'UTC'), 0,
                count(*), sum(value), min(value), max(value), max(timestamp),
                (array_agg(value ORDER BY timestamp DESC, id DESC))[1],
                (array_agg(id ORDER BY timestamp DESC, id DESC))[1]
            FROM usage_events WHERE transaction_id LIKE 'seed-%%'
            GROUP BY 1, 2, 3, 4, 5
            ON CONFLICT (org_id, customer_id, metric_code, group_key, bucket, shard) DO UPDATE SET
                events = u.events + excluded.events, total = u.total + excluded.total,
                min_value = LEAST(u.min_value, excluded.min_value),
                max_value = GREATEST(u.max_value, excluded.max_value),
                latest_value = CASE WHEN (excluded.latest_at, excluded.latest_id) > (u.latest_at, u.latest_id)
                    THEN excluded.latest_value ELSE u.latest_value END,
                latest_id = CASE WHEN (excluded.latest_at, excluded.latest_id) > (u.latest_at, u.latest_id)
                    THEN excluded.latest_id ELSE u.latest_id END,
                latest_at = GREATEST(u.latest_at, excluded.latest_at)
            """
        )
        # a live system's tables are vacuumed; without this, autovacuum of the 10M fresh rows competes
        # with the measurement on this small host
        conn.execute("VACUUM (ANALYZE) usage_events, usage_event_keys, usage_rollups")
    return time.perf_counter() - started


def _direct_usage(url: str, org_id: str, customer_id: str, n: int) -> list[float]:
    from revflow.domain.clock import SystemClock
    from revflow.services import usage_live

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    times = []
    try:
        for i in range(n + 5):
            with sessions() as s:
                ctx = Ctx(session=s, org_id=org_id, actor=Actor("cli"), clock=SystemClock())
                t0 = time.perf_counter()
                usage_live.customer_usage(ctx, customer_id)
                if i >= 5:
                    times.append(time.perf_counter() - t0)
    finally:
        engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get("REVFLOW_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    parser.add_argument("--repeat", type=int, default=2, help="measure each figure this many times")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--single", type=int, default=4000, help="single-event POSTs (0: skip)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=10_000_000)
    parser.add_argument("--seed-customer", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--timestamps",
        choices=("live", "spread"),
        default="live",
        help="live: events of the last 10 minutes (a sustained stream; few rollup hours per batch); "
        "spread: over the month so far (a backfill; about one rollup hour per event)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    name = f"revflow_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{args.pg_admin.rsplit('/', 1)[0]}/{name}"
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    server = None
    try:
        migrate(url)
        org_id, key = _setup_org(url)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "REVFLOW_DATABASE_URL": url, "REVFLOW_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "revflow.api.asgi:app_from_env",
                "--factory",
                "--workers",
                str(args.workers),
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        now = datetime.now(UTC)
        since = datetime(now.year, now.month, 1, tzinfo=UTC)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            customers, big = _catalog(client, args.customers, since)
        print(
            f"database {name}; server: {args.workers} uvicorn worker(s); {os.cpu_count()} cores on this host"
        )

        stamped_since = since if args.timestamps == "spread" else datetime.now(UTC) - timedelta(minutes=11)
        for run in range(1, args.repeat + 1):
            bodies = [
                _request(port, key, "/v1/usage_events/batch", b)
                for b in _bodies(customers, args.events, args.batch, stamped_since, f"http{run}")
            ]
            _load(port, bodies[:1], 1, 1, 200, True)  # open the pools' connections before measuring
            servers, pg0 = _children(server.pid), _cpu(_backends(dsn))
            py0 = _cpu_s(servers)
            wall, _, counts, cpu = _load(port, bodies[1:], args.concurrency, args.client_procs, 200, True)
            py_ms = (_cpu_s(servers) - py0) * 1e6 / counts["accepted"]
            pg_ms = _cpu_since(pg0, _backends(dsn)) * 1e6 / counts["accepted"]
            http_rate = counts["accepted"] / wall
            print(
                f"[run {run}] HTTP batch ingestion: {counts['accepted']:,} events in {wall:.2f} s = "
                f"{http_rate:,.0f} events/s (batches of {args.batch}, {args.concurrency} in flight over "
                f"{args.client_procs} client processes; {args.timestamps} timestamps; "
                f"rejected {counts['rejected']}; "
                f"client CPU {cpu:.2f} s = {cpu / wall:.0%} of one core)"
            )
            print(
                f"  CPU per 1,000 events: server processes {py_ms:.1f} ms, their PostgreSQL backends "
                f"{pg_ms:.1f} ms (load-independent; the rate above depends on what else runs)"
            )
            _, _, dup, _ = _load(port, bodies[:20], args.concurrency, 1, 200, True)
            print(
                f"  resent {sum(dup.values()):,} events: {dup['duplicate']:,} duplicate, "
                f"{dup['accepted']} accepted"
            )
            copy_s, copy_cpu = _copy(dsn, org_id, customers, args.events, stamped_since, f"copy{run}")
            copy_rate = args.events / copy_s
            copy_ms = copy_cpu * 1e6 / args.events
            print(
                f"[run {run}] raw COPY of the same rows into usage_events: {copy_rate:,.0f} rows/s; "
                f"ratio HTTP/COPY = {http_rate / copy_rate:.2f}"
            )
            print(
                f"  COPY costs PostgreSQL {copy_ms:.1f} ms CPU per 1,000 rows; CPU ratio COPY / HTTP "
                f"(server + PostgreSQL) = {copy_ms / (py_ms + pg_ms):.2f}"
            )

        for run in range(1, args.repeat + 1 if args.single else 1):  # --single 0 skips this part
            singles = _single_bodies(port, key, big, args.single, f"single{run}")
            servers, pg0 = _children(server.pid), _cpu(_backends(dsn))
            py0 = _cpu_s(servers)
            wall, lat, _, cpu = _load(port, singles, args.clients, args.client_procs, 201, False)
            py_ms = (_cpu_s(servers) - py0) * 1e3 / len(lat)
            pg_ms = _cpu_since(pg0, _backends(dsn)) * 1e3 / len(lat)
            print(
                f"[run {run}] single-event POST, {args.clients} concurrent clients, {len(lat):,} requests: "
                f"p50 {_pct(lat, 50) * 1000:.1f} ms, p99 {_pct(lat, 99) * 1000:.1f} ms "
                f"({len(lat) / wall:,.0f} req/s; client CPU {cpu:.2f} s = {cpu / wall:.0%} of one core)"
            )
            print(
                f"  CPU per request: server processes {py_ms:.2f} ms, "
                f"their PostgreSQL backends {pg_ms:.2f} ms"
            )
        pids = _children(server.pid)
        rss = {pid: _hwm_mib(pid) for pid in pids}
        print("server peak RSS (VmHWM): " + ", ".join(f"pid {p}: {m:.0f} MiB" for p, m in rss.items()))

        if args.seed:
            print(f"seeding to {args.seed:,} events ({args.seed_customer:,} for one customer) …", flush=True)
            took = _seed(dsn, org_id, customers, big, args.seed, args.seed_customer, since)
            with psycopg.connect(dsn) as conn:
                n = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]  # type: ignore[index]
                mine = conn.execute(
                    "SELECT count(*) FROM usage_events WHERE customer_id = %s", (big,)
                ).fetchone()[0]  # type: ignore[index]
            print(f"  {n:,} events in the table, {mine:,} for customer {big} (seeded in {took:.0f} s)")
            for run in range(1, args.repeat + 1):
                times = []
                http_conn = http.client.HTTPConnection("127.0.0.1", port)
                auth = {"Authorization": f"Bearer {key}"}
                for i in range(args.queries + 5):
                    t0 = time.perf_counter()
                    http_conn.request("GET", f"/v1/customers/{big}/usage", headers=auth)
                    resp = http_conn.getresponse()
                    raw = resp.read()
                    took_q = time.perf_counter() - t0
                    assert resp.status == 200, raw[:300]
                    if i >= 5:
                        times.append(took_q)
                http_conn.close()
                line = orjson.loads(raw)["subscriptions"][0]["lines"][0]
                direct = _direct_usage(url, org_id, big, args.queries)
                print(
                    f"  [run {run}] the same query in-process (usage_live.customer_usage, no HTTP): "
                    f"p50 {_pct(direct, 50) * 1000:.1f} ms, p95 {_pct(direct, 95) * 1000:.1f} ms"
                )
                print(
                    f"[run {run}] GET /v1/customers/{{id}}/usage over {args.queries} calls: "
                    f"p50 {_pct(times, 50) * 1000:.1f} ms, p95 {_pct(times, 95) * 1000:.1f} ms "
                    f"(units {line['units']}, amount {line['amount']})"
                )
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

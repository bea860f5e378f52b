"""Benchmark: the worker's collection job over N invoices charged through the sandbox gateway.

    .venv/bin/python bench/payments_collect.py                       # PostgreSQL at 127.0.0.1:5432, N=2000
    .venv/bin/python bench/payments_collect.py --n 500 --sqlite      # embedded SQLite
    .venv/bin/python bench/payments_collect.py --workers 4           # 4 threads share the claims

Sets up N customers, each with a sandbox card (``pm_card_visa``) and one finalized ``charge_automatically``
invoice (so N pending charges). Then runs ``collect_payments`` (claim with SKIP LOCKED, gateway call outside
any transaction, record) in ``--workers`` threads until nothing is due, and prints wall time, charges per
second, and checks that each invoice was charged exactly once. Setup is not timed. Each run uses a database
of its own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from revflow.bootstrap import build
from revflow.config import Settings
from revflow.jobs.worker import collect_payments
from revflow.services import customers, invoices, orgs, payment_methods
from revflow.services.context import Actor, Ctx
from revflow.storage.engine import migrate
from revflow.storage.models import Invoice, Payment
from revflow.storage.payment_models import SandboxCharge


def _database(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.sqlite:
        path = Path(tempfile.mkdtemp()) / "bench.db"
        return f"sqlite:///{path}", None
    name = f"revflow_bench_pay_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return args.pg_admin.rsplit("/", 1)[0] + "/" + name, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url, dbname = _database(args)
    try:
        migrate(url)
        container = build(Settings(database_url=url), auto_migrate=False)
        with container.sessions() as s:
            org = orgs.create_organization(s, name="Bench", now=container.clock.now())
            s.commit()
        for i in range(args.n):
            with container.sessions() as s:
                ctx = Ctx(session=s, org_id=org.id, actor=Actor("cli"), clock=container.clock)
                c = customers.create_customer(ctx, name=f"Customer {i}", currency="USD")
                payment_methods.attach(ctx, c.id, container.gateway, token="pm_card_visa")
                inv = invoices.create_invoice(
                    ctx,
                    customer_id=c.id,
                    items=[{"description": "Pro", "amount": 1000 + i}],
                    collection_method="charge_automatically",
                )
                invoices.finalize_invoice(ctx, inv.id)
                s.commit()

        started = time.perf_counter()
        threads = [threading.Thread(target=collect_payments, args=(container,)) for _ in range(args.workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        collect_payments(container)  # anything a thread left (none expected)
        elapsed = time.perf_counter() - started

        with container.sessions() as s:
            paid = s.scalar(select(func.count()).select_from(Invoice).where(Invoice.status == "paid"))
            succeeded = s.scalar(
                select(func.count()).select_from(Payment).where(Payment.status == "succeeded")
            )
        with container.gateway._sessions() as s:  # type: ignore[attr-defined]
            charges = s.scalar(select(func.count()).select_from(SandboxCharge))
        backend = "sqlite" if args.sqlite else "postgresql"
        print(f"{backend}: {args.n} invoices, {args.workers} worker thread(s)")
        print(f"collected in {elapsed:.2f} s: {args.n / elapsed:.0f} charges/s")
        print(f"invoices paid {paid}, payments succeeded {succeeded}, charges at the gateway {charges}")
        if not (paid == succeeded == charges == args.n):
            raise SystemExit("MISMATCH: some invoice was not charged exactly once")
        container.close()
    finally:
        if dbname is not None:
            with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Benchmark: one billing cycle over N subscriptions of mixed plans.

    .venv/bin/python bench/billing_run.py                      # PostgreSQL at 127.0.0.1:5432, N=100000
    .venv/bin/python bench/billing_run.py --n 5000 --sqlite    # embedded SQLite
    .venv/bin/python bench/billing_run.py --pg-admin postgresql://postgres@127.0.0.1:5432/postgres

Sets up N customers with one subscription each (flat, per-seat, graduated and yearly plans, in USD and
EUR), each one period old with its first invoice already billed, all renewing at the same instant. Then
runs the billing engine once (recompute-and-diff, invoice, finalize with numbering) and prints wall
time, invoices per second and peak memory (RSS) of this process, and, for scale, the time of a raw bulk
insert of the same invoice and line rows in the same run (the floor any billing engine sits on).
Setup is written with bulk inserts and is not timed. Each run uses a database of its own.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from revflow.domain.ids import new_id
from revflow.services import billing, orgs
from revflow.storage.engine import make_engine, make_session_factory, migrate
from revflow.storage.models import (
    Customer,
    Invoice,
    InvoiceLineItem,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)

PLANS = [  # (name, currency, model, flat, unit, tiers, interval, quantity)
    ("Starter", "USD", "flat", 2900, 0, [], "month", 1),
    ("Team", "USD", "per_unit", 0, 1200, [], "month", 7),
    (
        "Scale",
        "USD",
        "graduated",
        0,
        0,
        [
            {"up_to": "10", "unit_amount": "2000", "flat_amount": "0"},
            {"up_to": "50", "unit_amount": "1500", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "1000", "flat_amount": "0"},
        ],
        "month",
        25,
    ),
    ("Team EU", "EUR", "per_unit", 0, 1100, [], "month", 4),
    ("Enterprise", "USD", "flat", 1_000_000, 0, [], "year", 1),
]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def setup(url: str, n: int) -> tuple[str, datetime]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with sessions() as s:
        org = orgs.create_organization(s, name="Bench", now=now)
        org.invoice_grace_hours = 0  # finalize in the same run: the figure covers billing and finalizing
        org_id = org.id
        prices = []
        for name, cur, model, flat, unit, tiers, interval, qty in PLANS:
            prod = Product(
                id=new_id("prod"),
                org_id=org_id,
                name=name,
                description=None,
                active=True,
                metadata_={},
                created_at=now,
                updated_at=now,
            )
            s.add(prod)
            s.flush()
            price = Price(
                id=new_id("price"),
                org_id=org_id,
                product_id=prod.id,
                nickname=None,
                currency=cur,
                type="recurring",
                model=model,
                unit_amount=Decimal(unit),
                flat_amount=Decimal(flat),
                tiers=tiers,
                package_size=None,
                package_rounding="up",
                interval=interval,
                interval_count=1,
                billing_timing="in_advance",
                metric_code=None,
                custom=False,
                active=True,
                metadata_={},
                created_at=now,
            )
            s.add(price)
            prices.append((price, qty, flat + unit * qty if model != "graduated" else 42500))
        s.commit()
    starts = {"month": now - timedelta(days=31), "year": now.replace(year=now.year - 1)}  # May 1 → Jun 1
    chunk = 5000
    with engine.begin() as conn:
        for base in range(0, n, chunk):
            cust, subs, items, invs, lines = [], [], [], [], []
            for i in range(base, min(n, base + chunk)):
                price, qty, amount = prices[i % len(prices)]
                start = starts[price.interval]
                cid, sid, iid = new_id("cus"), new_id("sub"), new_id("inv")
                cust.append(
                    dict(
                        id=cid,
                        org_id=org_id,
                        name=f"Customer {i}",
                        email=None,
                        address={},
                        currency=price.currency,
                        timezone="UTC",
                        locale="en_US",
                        tax_ids=[],
                        metadata={},
                        created_at=start,
                        updated_at=start,
                    )
                )
                subs.append(
                    dict(
                        id=sid,
                        org_id=org_id,
                        customer_id=cid,
                        currency=price.currency,
                        status="active",
                        collection_method="send_invoice",
                        interval=price.interval,
                        interval_count=1,
                        billing_cycle_anchor=start,
                        timezone="UTC",
                        start_at=start,
                        trial_amount=0,
                        current_period_start=start,
                        current_period_end=now,
                        next_billing_at=now,
                        cancel_at_period_end=False,
                        auto_renew=True,
                        metadata={},
                        created_at=start,
                        updated_at=start,
                    )
                )
                items.append(
                    dict(
                        id=new_id("si"),
                        org_id=org_id,
                        subscription_id=sid,
                        price_id=price.id,
                        quantity=Decimal(qty),
                        start_at=start,
                        bill_start=start,
                        created_at=start,
                    )
                )
                invs.append(
                    dict(
                        id=iid,
                        org_id=org_id,
                        customer_id=cid,
                        number=f"INV-B{i:07d}",
                        status="paid",
                        currency=price.currency,
                        collection_method="send_invoice",
                        billing_reason="subscription_create",
                        subtotal=amount,
                        discount=0,
                        tax=0,
                        total=amount,
                        applied_balance=0,
                        amount_due=amount,
                        amount_paid=amount,
                        amount_remaining=0,
                        pre_payment_credit_notes_amount=0,
                        post_payment_credit_notes_amount=0,
                        metadata={},
                        subscription_id=sid,
                        created_at=start,
                        updated_at=start,
                        finalized_at=start,
                        paid_at=start,
                    )
                )
                lines.append(
                    dict(
                        id=new_id("il"),
                        org_id=org_id,
                        invoice_id=iid,
                        position=0,
                        description=price.id,
                        quantity=Decimal(qty),
                        unit_amount_decimal=Decimal(amount),
                        amount=amount,
                        currency=price.currency,
                        period_start=start,
                        period_end=now,
                        metadata={},
                        kind="recurring",
                        subscription_id=sid,
                        price_id=price.id,
                        billing_period_start=start,
                        discount_amount=0,
                        discounts=[],
                    )
                )
            conn.execute(insert(Customer), cust)
            conn.execute(insert(Subscription), subs)
            conn.execute(insert(SubscriptionItem), items)
            conn.execute(insert(Invoice), invs)
            conn.execute(insert(InvoiceLineItem), lines)
            print(f"  set up {min(n, base + chunk)}/{n}", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    engine.dispose()
    return org_id, now


def raw_insert(url: str, rows: list[dict[str, Any]], lines: list[dict[str, Any]]) -> float:
    """Time a bulk insert of ``rows`` invoices and ``lines`` into fresh copies of the same tables."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(Invoice), rows[i : i + 5000])
            conn.execute(insert(InvoiceLineItem), lines[i : i + 5000])
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


def _worker(job: tuple[str, datetime, int]) -> tuple[int, int, float]:
    """One billing process: bill what it can claim; returns (lines, errors, peak RSS MiB)."""
    url, now, batch_size = job
    engine = make_engine(url)
    stats = billing.run_due(make_session_factory(engine), now=now, batch_size=batch_size)
    engine.dispose()
    return stats.lines, stats.errors, peak_rss_mib()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--n", type=int, default=None, help="subscriptions (default 100000 on PostgreSQL, 5000 on SQLite)"
    )
    ap.add_argument("--sqlite", action="store_true", help="use an embedded SQLite file instead of PostgreSQL")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="billing processes sharing the run, as `revflow worker` processes do (default 2 on "
        "PostgreSQL, 1 on SQLite)",
    )
    args = ap.parse_args()
    n = args.n or (5000 if args.sqlite else 100_000)

    dbname = f"revflow_bench_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    else:
        with psycopg.connect(args.pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        url = (
            args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            + f"/{dbname}"
        )
    try:
        migrate(url)
        print(
            f"Setting up {n} subscriptions on {'SQLite' if args.sqlite else 'PostgreSQL'} …", file=sys.stderr
        )
        org_id, now = setup(url, n)
        engine = make_engine(url)
        sessions = make_session_factory(engine)

        workers = args.workers or (1 if args.sqlite else 2)
        rss_before = peak_rss_mib()
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        if workers == 1:
            stats = billing.run_due(sessions, now=now, batch_size=args.batch_size)
            lines_made, errors, child_rss = stats.lines, stats.errors, 0.0
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                parts = list(pool.map(_worker, [(url, now, args.batch_size)] * workers))
            lines_made = sum(p[0] for p in parts)
            errors = sum(p[1] for p in parts)
            child_rss = max(p[2] for p in parts)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        with sessions() as s:
            made = s.scalar(select(func.count()).select_from(Invoice).where(Invoice.created_at == now)) or 0
            open_ = (
                s.scalar(
                    select(func.count())
                    .select_from(Invoice)
                    .where(Invoice.created_at == now, Invoice.status == "open")
                )
                or 0
            )
            rows = [
                dict(
                    id=new_id("inv"),
                    org_id=org_id,
                    customer_id=c,
                    number=None,
                    status="draft",
                    currency=cur,
                    collection_method="send_invoice",
                    billing_reason="bench",
                    subtotal=t,
                    discount=0,
                    tax=0,
                    total=t,
                    applied_balance=0,
                    amount_due=t,
                    amount_paid=0,
                    amount_remaining=t,
                    pre_payment_credit_notes_amount=0,
                    post_payment_credit_notes_amount=0,
                    metadata={},
                    created_at=now,
                    updated_at=now,
                )
                for c, cur, t in s.execute(
                    select(Invoice.customer_id, Invoice.currency, Invoice.total).where(
                        Invoice.created_at == now
                    )
                )
            ]
        lines = [
            dict(
                id=new_id("il"),
                org_id=org_id,
                invoice_id=r["id"],
                position=0,
                description="bench",
                quantity=Decimal(1),
                unit_amount_decimal=Decimal(r["total"]),
                amount=r["total"],
                currency=r["currency"],
                period_start=now,
                period_end=now,
                metadata={},
                kind="recurring",
                discount_amount=0,
                discounts=[],
            )
            for r in rows
        ]
        raw = raw_insert(url, rows, lines)
        engine.dispose()

        print(f"subscriptions            {n}")
        print(f"workers                  {workers}")
        print(f"invoices created         {made} ({open_} finalized), {lines_made} lines, {errors} errors")
        print(f"billing run wall time    {wall:.1f} s")
        print(f"invoices per second      {made / wall:.0f}")
        print(
            f"billing CPU time         {cpu:.1f} s in the billing process(es), PostgreSQL's not included "
            "(steadier than wall time on a shared machine)"
        )
        print(
            f"peak RSS                 {max(peak_rss_mib(), child_rss):.0f} MiB per billing process "
            f"(before the run: {rss_before:.0f} MiB)"
        )
        print(
            f"raw bulk insert          {raw:.1f} s for the same {len(rows)} invoices + lines "
            f"({len(rows) / raw:.0f}/s)"
        )
        print(f"ratio engine / raw       {wall / raw:.1f}x the raw insert time")
    finally:
        if not args.sqlite:
            with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()

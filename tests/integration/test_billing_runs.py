"""Billing runs at scale: several workers share the work, and a run killed half-way resumes cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.services import billing, customers, subscriptions
from revflow.services.context import Actor, Ctx
from revflow.storage.models import Invoice, InvoiceLineItem, Subscription
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price


def _due_subscriptions(container: Container, org_id: str, n: int) -> datetime:
    """``n`` customers with one subscription each that starts an hour ago and was never billed;
    returns the instant the run should bill at."""
    price = make_price(container, org_id, flat=4200)
    now = datetime.now(UTC).replace(microsecond=0)
    created_at = now - timedelta(hours=2)
    with container.sessions() as s:
        ctx = Ctx(session=s, org_id=org_id, actor=Actor("cli"), clock=FrozenClock(created_at))
        for i in range(n):
            c = customers.create_customer(ctx, name=f"Customer {i}", currency="USD")
            subscriptions.create_subscription(
                ctx, customer_id=c.id, items=[{"price_id": price}], start_at=now - timedelta(hours=1)
            )
        s.commit()
    return now


def _invoice_counts(container: Container) -> tuple[int, int, list[str]]:
    with container.sessions() as s:
        per_sub = s.execute(
            select(InvoiceLineItem.subscription_id, func.count()).group_by(InvoiceLineItem.subscription_id)
        ).all()
        numbers = sorted(n for n in s.scalars(select(Invoice.number)) if n is not None)
        subs = s.scalar(select(func.count()).select_from(Subscription)) or 0
    assert all(count == 1 for _, count in per_sub), [p for p in per_sub if p[1] != 1][:5]
    return subs, len(per_sub), numbers


class TestBillingRuns:
    @pytest.mark.postgres_only
    def test_two_workers_bill_every_customer_exactly_once(self, tenant: Tenant, container: Container) -> None:
        now = _due_subscriptions(container, tenant.org_id, 120)
        results: list[billing.RunStats] = []

        def work() -> None:
            results.append(billing.run_due(container.sessions, now=now, batch_size=10))

        workers = [threading.Thread(target=work) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

        subs, billed, numbers = _invoice_counts(container)
        assert (subs, billed) == (120, 120)
        assert sum(r.customers for r in results) == 120
        assert sum(r.invoices for r in results) == 120
        assert all(r.customers > 0 for r in results)  # the work was shared
        assert numbers == [f"INV-{n:06d}" for n in range(1, 121)]

    def test_a_run_killed_half_way_resumes_without_duplicates_or_gaps(
        self, tenant: Tenant, container: Container, db_url: str
    ) -> None:
        _due_subscriptions(container, tenant.org_id, 80)
        env = {**os.environ, "REVFLOW_DATABASE_URL": db_url, "REVFLOW_LOG_LEVEL": "WARNING"}
        cmd = [sys.executable, "-m", "revflow.cli.main", "bill", "--batch-size", "5"]

        crash = subprocess.run(
            cmd, env={**env, "REVFLOW_FAILPOINT": "billing.before_commit:3"}, timeout=300, capture_output=True
        )
        _, partial, _ = _invoice_counts(container)
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

        assert crash.returncode == 97  # died in its third batch, before committing it
        assert partial == 10  # two committed batches of five; the third left no trace
        assert rerun.returncode == 0, rerun.stderr
        subs, billed, numbers = _invoice_counts(container)
        assert (subs, billed) == (80, 80)
        assert numbers == [f"INV-{n:06d}" for n in range(1, 81)]

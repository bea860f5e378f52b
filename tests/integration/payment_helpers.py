"""Helpers for payment tests: a container on a frozen clock, customers with payment methods, invoices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from revflow.adapters.payments.sandbox import SandboxGateway
from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.jobs.worker import Worker
from revflow.storage.payment_models import SandboxCharge
from tests.conftest import Tenant, container_for

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def frozen_container(db_url: str, *, at: datetime = T0, **settings: Any) -> Iterator[Container]:
    """A container whose clock the test moves (starting at ``at``); leases of 0 s so the janitor resolves
    at once."""
    yield from container_for(db_url, clock=FrozenClock(at), payment_lease_seconds=0, **settings)


def clock(container: Container) -> FrozenClock:
    assert isinstance(container.clock, FrozenClock)
    return container.clock


def work(container: Container) -> dict[str, int]:
    """One worker cycle; fails the test if a job failed."""
    done = Worker(container).run_once()
    assert all(v >= 0 for v in done.values()), done
    return done


def customer(t: Tenant, *, email: str | None = "ada@example.com", token: str | None = "pm_card_visa") -> str:
    cus = t.post("/v1/customers", {"name": "Ada Lovelace", "email": email, "currency": "USD"}).json()
    if token is not None:
        r = t.post(f"/v1/customers/{cus['id']}/payment_methods", {"token": token})
        assert r.status_code == 201, r.text
    return str(cus["id"])


def open_invoice(
    t: Tenant, customer_id: str, amount: int = 5000, *, method: str = "charge_automatically"
) -> str:
    inv = t.post(
        "/v1/invoices",
        {
            "customer_id": customer_id,
            "collection_method": method,
            "items": [{"description": "Pro", "amount": amount}],
        },
    ).json()
    fin = t.post(f"/v1/invoices/{inv['id']}/finalize")
    assert fin.status_code == 200, fin.text
    return str(inv["id"])


def sandbox_charges(container: Container) -> int:
    gateway = container.gateway
    assert isinstance(gateway, SandboxGateway)
    with gateway._sessions() as s:  # the gateway's own books
        return int(s.scalar(select(func.count()).select_from(SandboxCharge)) or 0)

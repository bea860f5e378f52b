"""Concurrent finalizations and concurrent retries with one Idempotency-Key, against a real server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.storage.models import Customer, Invoice
from tests.conftest import Tenant
from tests.integration.live import live_server


def _drafts(t: Tenant, n: int) -> list[str]:
    customer = t.post("/v1/customers", {"name": "Acme", "currency": "USD"}).json()
    return [
        t.post(
            "/v1/invoices",
            {"customer_id": customer["id"], "items": [{"description": f"#{i}", "amount": 100 + i}]},
        ).json()["id"]
        for i in range(n)
    ]


class TestConcurrentFinalization:
    def test_twenty_concurrent_finalizations_get_numbers_one_to_twenty(
        self, tenant: Tenant, container: Container
    ) -> None:
        drafts = _drafts(tenant, 20)

        with (
            live_server(container) as url,
            httpx.Client(base_url=url, headers=tenant.headers, timeout=60) as http,
            ThreadPoolExecutor(max_workers=20) as pool,
        ):
            responses = list(pool.map(lambda i: http.post(f"/v1/invoices/{i}/finalize"), drafts))

        assert [r.status_code for r in responses] == [200] * 20
        numbers = sorted(r.json()["number"] for r in responses)
        assert numbers == [f"INV-{n:06d}" for n in range(1, 21)]

    def test_racing_finalizations_of_one_invoice_finalize_it_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        (draft,) = _drafts(tenant, 1)

        with (
            live_server(container) as url,
            httpx.Client(base_url=url, headers=tenant.headers, timeout=60) as http,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            responses = list(pool.map(lambda _: http.post(f"/v1/invoices/{draft}/finalize"), range(8)))

        assert sorted(r.status_code for r in responses) == [200] + [409] * 7
        assert (
            tenant.get("/v1/events", params={"type": "invoice.finalized"}).json()["data"][0]["object_id"]
            == draft
        )
        assert len(tenant.get("/v1/events", params={"type": "invoice.finalized"}).json()["data"]) == 1


class TestConcurrentIdempotentRetries:
    @pytest.mark.parametrize("workers", [10])
    def test_one_key_sent_concurrently_executes_once(
        self, tenant: Tenant, container: Container, workers: int
    ) -> None:
        body = {"name": "Only Once Ltd", "currency": "EUR"}
        headers = {**tenant.headers, "Idempotency-Key": "create-once-1"}

        with (
            live_server(container) as url,
            httpx.Client(base_url=url, headers=headers, timeout=60) as http,
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            responses = list(pool.map(lambda _: http.post("/v1/customers", json=body), range(workers)))

        assert [r.status_code for r in responses] == [201] * workers
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == workers - 1
        with container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == 1
            assert s.scalar(select(func.count()).select_from(Invoice)) == 0

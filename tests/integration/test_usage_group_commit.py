"""Single usage events sent concurrently share one transaction (group commit), each answered on its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from revflow.api.usage_groups import SingleEventGroups
from revflow.bootstrap import Container
from revflow.services import usage_ingest
from revflow.services.context import Actor, Ctx
from revflow.storage.usage_models import UsageEvent
from tests.conftest import Tenant
from tests.integration.live import live_server
from tests.integration.usage_helpers import customer, metric


def _ctx(tenant: Tenant, container: Container, request_id: str) -> Ctx:
    with container.sessions() as s:  # submit reads the tenant, actor and request id only
        return Ctx(
            session=s,
            org_id=tenant.org_id,
            actor=Actor("api_key", tenant.key_id),
            clock=container.clock,
            request_id=request_id,
        )


def _stored(container: Container, org_id: str) -> dict[str, str]:
    with container.sessions() as s:
        return dict(
            s.execute(
                select(UsageEvent.transaction_id, UsageEvent.id).where(UsageEvent.org_id == org_id)
            ).all()
        )


class TestGroupCommit:
    def test_concurrent_single_events_are_stored_in_one_transaction_and_answered_each(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "gb", "sum", property="gb")
        cus = customer(tenant)
        events: list[dict[str, Any]] = [
            {"transaction_id": "a", "customer_id": cus, "metric_code": "gb", "properties": {"gb": 1}},
            {"transaction_id": "b", "customer_id": cus, "metric_code": "gb", "properties": {"gb": 2}},
            {"transaction_id": "a", "customer_id": cus, "metric_code": "gb", "properties": {"gb": 1}},
            {"transaction_id": "c", "customer_id": cus, "metric_code": "gb", "properties": {"gb": "x"}},
        ]
        groups = SingleEventGroups(container)

        async def send_all() -> list[usage_ingest.Outcome]:
            return await asyncio.gather(
                *(groups.submit(_ctx(tenant, container, f"req_{i}"), e) for i, e in enumerate(events))
            )

        outcomes = asyncio.run(send_all())
        stored = _stored(container, tenant.org_id)

        assert [(o.status, o.index) for o in outcomes] == [
            ("accepted", 0),
            ("accepted", 0),
            ("duplicate", 0),
            ("rejected", 0),
        ]
        assert outcomes[2].event_id == outcomes[0].event_id == stored["a"]
        assert outcomes[3].code == "invalid_value"
        assert sorted(stored) == ["a", "b"]
        assert len({event_id[:-2] for event_id in stored.values()}) == 1  # one batch id: one transaction

    def test_a_failed_group_fails_each_of_its_requests_and_stores_nothing(
        self, tenant: Tenant, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        groups = SingleEventGroups(container)
        real = usage_ingest.ingest

        def failing(ctx: Ctx, raw_events: list[Any]) -> list[usage_ingest.Outcome]:
            real(ctx, raw_events)
            raise ConnectionResetError("the database went away before the commit")

        monkeypatch.setattr(usage_ingest, "ingest", failing)

        async def send_all() -> list[Any]:
            return await asyncio.gather(
                *(
                    groups.submit(
                        _ctx(tenant, container, f"req_{i}"),
                        {"transaction_id": f"t{i}", "customer_id": cus, "metric_code": "calls"},
                    )
                    for i in range(3)
                ),
                return_exceptions=True,
            )

        results = asyncio.run(send_all())

        assert [type(r) for r in results] == [ConnectionResetError] * 3
        assert _stored(container, tenant.org_id) == {}

    def test_many_clients_at_once_over_http_each_get_their_own_answer(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        statuses: dict[int, tuple[int, str]] = {}

        with live_server(container) as base:

            def send(i: int) -> None:
                tx = f"t{i % 20}"  # every event twice: 20 distinct transaction ids
                r = httpx.post(
                    f"{base}/v1/usage_events",
                    json={"transaction_id": tx, "customer_id": cus, "metric_code": "calls"},
                    headers=tenant.headers,
                    timeout=30,
                )
                statuses[i] = (r.status_code, r.json()["id"])

            threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        stored = _stored(container, tenant.org_id)

        assert sorted(code for code, _ in statuses.values()) == [200] * 20 + [201] * 20
        assert len(stored) == 20
        assert {event_id for _, event_id in statuses.values()} == set(stored.values())

"""Usage events through the API: per-event results, dedupe (also under concurrency), unmatched events."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import Text, cast, func, select

from revflow.bootstrap import Container
from revflow.services import usage_ingest
from revflow.services.context import Actor, Ctx
from revflow.storage.usage_models import UsageEvent, UsageEventKey, UsageRollup
from tests.conftest import Tenant
from tests.integration.live import live_server
from tests.integration.usage_helpers import batch, customer, metric


def _count(container: Container, model: Any, org_id: str) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0)


def _rollup_events(container: Container, org_id: str) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.sum(UsageRollup.events)).where(UsageRollup.org_id == org_id)) or 0)


class TestBillableMetrics:
    def test_creates_lists_and_refuses_a_taken_code(self, tenant: Tenant) -> None:
        created = metric(tenant, "storage", "weighted_sum", property="gb", group_by="region")

        again = tenant.post("/v1/billable_metrics", {"code": "storage", "name": "x", "aggregation": "count"})
        listed = tenant.get("/v1/billable_metrics").json()["data"]

        assert created["aggregation"] == "weighted_sum" and created["group_by"] == "region"
        assert again.status_code == 409 and again.json()["code"] == "metric_code_taken"
        assert [m["code"] for m in listed] == ["storage"]

    def test_a_sum_metric_needs_a_property(self, tenant: Tenant) -> None:
        r = tenant.post("/v1/billable_metrics", {"code": "bytes", "name": "Bytes", "aggregation": "sum"})

        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert tenant.get("/v1/billable_metrics").json()["data"] == []


class TestBatchIngestion:
    def test_a_batch_answers_per_event_and_keeps_its_good_events(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "bytes", "sum", property="bytes")
        cus = customer(tenant)
        good = {"customer_id": cus, "metric_code": "bytes", "timestamp": "2024-06-01T10:00:00Z"}

        result = batch(
            tenant,
            [
                {**good, "transaction_id": "t1", "properties": {"bytes": 100}},
                {**good, "transaction_id": "t2", "properties": {"bytes": "ten"}},
                {**good, "properties": {"bytes": 1}},
                {**good, "transaction_id": "t3", "timestamp": "yesterday", "properties": {"bytes": 1}},
                {
                    **good,
                    "transaction_id": "t4",
                    "timestamp": "2999-01-01T00:00:00Z",
                    "properties": {"bytes": 1},
                },
                {**good, "transaction_id": "t5", "properties": {"bytes": "2.5"}},
                {**good, "transaction_id": "t1", "properties": {"bytes": 100}},
                {**good, "transaction_id": "t6", "metric_code": "nope", "properties": {}},
            ],
        )

        codes = [(r["status"], r.get("code")) for r in result["data"]]
        assert codes == [
            ("accepted", None),
            ("rejected", "invalid_value"),
            ("rejected", "missing_transaction_id"),
            ("rejected", "invalid_timestamp"),
            ("rejected", "timestamp_in_future"),
            ("accepted", None),
            ("duplicate", None),
            ("accepted", None),
        ]
        assert (result["accepted"], result["duplicate"], result["rejected"]) == (3, 1, 4)
        assert (
            result["data"][7]["event_status"] == "unmatched"
            and result["data"][7]["reason"] == "unknown_metric"
        )
        assert result["data"][6]["id"] == result["data"][0]["id"]
        assert _count(container, UsageEvent, tenant.org_id) == 3
        with container.sessions() as s:
            total = s.scalar(select(func.sum(UsageRollup.total)).where(UsageRollup.org_id == tenant.org_id))
        assert total == 102_500_000  # 100 + 2.5, × 10^6

    def test_a_retried_batch_counts_every_event_once(self, tenant: Tenant, container: Container) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        events = [{"transaction_id": f"tx{i}", "customer_id": cus, "metric_code": "calls"} for i in range(50)]

        first = batch(tenant, events)
        second = batch(tenant, events)

        assert first["accepted"] == 50 and second["duplicate"] == 50
        assert [r["id"] for r in first["data"]] == [r["id"] for r in second["data"]]
        assert _count(container, UsageEvent, tenant.org_id) == 50
        assert _rollup_events(container, tenant.org_id) == 50

    def test_an_integer_beyond_64_bits_in_properties_rejects_its_event_only(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        events = ", ".join(
            f'{{"transaction_id": "{tx}", "customer_id": "{cus}", "metric_code": "calls", '
            f'"properties": {{"ref": {ref}}}}}'
            for tx, ref in [("a", 1), ("b", 2**64), ("c", -(2**63)), ("d", 10**30)]
        )

        r = tenant.post(
            "/v1/usage_events/batch",
            content=f'{{"events": [{events}]}}'.encode(),
            headers={"Content-Type": "application/json"},
        )

        assert r.status_code == 200, r.text
        answers = [(e["status"], e.get("code")) for e in r.json()["data"]]
        assert answers == [
            ("accepted", None),
            ("rejected", "invalid_properties"),
            ("accepted", None),
            ("rejected", "invalid_properties"),
        ]
        assert "send it as a string" in r.json()["data"][1]["message"]
        assert _count(container, UsageEvent, tenant.org_id) == 2
        assert _count(container, UsageEventKey, tenant.org_id) == 2

    def test_a_batch_half_stored_before_stores_only_its_new_half(
        self, tenant: Tenant, container: Container
    ) -> None:
        # The first attempt (a plain insert, all keys new) fails on the stored keys; the batch is then
        # written again with ON CONFLICT in the same transaction, and the request goes on to commit.
        metric(tenant, "calls")
        cus = customer(tenant)
        events = [{"transaction_id": f"tx{i}", "customer_id": cus, "metric_code": "calls"} for i in range(40)]
        first = batch(tenant, events[::2])

        second = batch(tenant, events)

        assert first["accepted"] == 20
        assert (second["accepted"], second["duplicate"]) == (20, 20)
        assert [r["status"] for r in second["data"][:2]] == ["duplicate", "accepted"]
        by_tx = {r["transaction_id"]: r["id"] for r in first["data"]}
        again = [r for r in second["data"] if r["status"] == "duplicate"]
        assert all(r["id"] == by_tx[r["transaction_id"]] for r in again)
        assert _count(container, UsageEvent, tenant.org_id) == 40
        assert _count(container, UsageEventKey, tenant.org_id) == 40
        assert _rollup_events(container, tenant.org_id) == 40

    def test_bad_bodies_are_refused_whole(self, tenant: Tenant, container: Container) -> None:
        not_json = tenant.post(
            "/v1/usage_events/batch", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        too_many = tenant.post("/v1/usage_events/batch", {"events": [{}] * 1001})
        too_big = tenant.post("/v1/usage_events/batch", content=b"x" * 2_000_000)

        assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_json"
        assert too_many.status_code == 422 and too_many.json()["code"] == "batch_too_large"
        assert too_big.status_code == 413 and too_big.json()["code"] == "request_too_large"
        assert _count(container, UsageEventKey, tenant.org_id) == 0

    def test_events_of_another_organization_do_not_collide(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        for t in (tenant, other_tenant):
            metric(t, "calls")
        mine, theirs = customer(tenant), customer(other_tenant)

        a = batch(tenant, [{"transaction_id": "same", "customer_id": mine, "metric_code": "calls"}])
        b = batch(other_tenant, [{"transaction_id": "same", "customer_id": theirs, "metric_code": "calls"}])
        c = batch(other_tenant, [{"transaction_id": "x", "customer_id": mine, "metric_code": "calls"}])

        assert a["accepted"] == 1 and b["accepted"] == 1
        assert c["data"][0]["event_status"] == "unmatched"  # another org's customer is unknown here


class TestSingleEvent:
    def test_accepted_then_duplicate_then_rejected(self, tenant: Tenant) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        event = {"transaction_id": "one", "customer_id": cus, "metric_code": "calls"}

        first = tenant.post("/v1/usage_events", event)
        again = tenant.post("/v1/usage_events", event)
        bad = tenant.post("/v1/usage_events", {"customer_id": cus, "metric_code": "calls"})

        assert first.status_code == 201 and first.json()["event_status"] == "billable"
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert again.json()["id"] == first.json()["id"]
        assert bad.status_code == 422 and bad.json()["code"] == "missing_transaction_id"


class TestUnmatchedEvents:
    def test_events_of_an_unknown_customer_wait_and_then_bill(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "calls")
        events = [
            {"transaction_id": f"u{i}", "external_customer_id": "crm-42", "metric_code": "calls"}
            for i in range(3)
        ]

        result = batch(tenant, events)
        unmatched = tenant.get("/v1/usage_events", params={"status": "unmatched"}).json()["data"]
        cus = customer(tenant, external_ids={"crm": "crm-42"})
        after = tenant.get("/v1/usage_events", params={"status": "unmatched"}).json()["data"]
        billable = tenant.get("/v1/usage_events", params={"customer_id": cus}).json()["data"]

        assert [r["reason"] for r in result["data"]] == ["unknown_customer"] * 3
        assert len(unmatched) == 3 and after == []
        assert {e["status"] for e in billable} == {"billable"} and len(billable) == 3
        assert _rollup_events(container, tenant.org_id) == 3

    def test_events_of_an_unknown_metric_bill_once_it_exists(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant)
        batch(
            tenant,
            [
                {"transaction_id": "a", "customer_id": cus, "metric_code": "gb", "properties": {"gb": "1.5"}},
                {"transaction_id": "b", "customer_id": cus, "metric_code": "gb", "properties": {"gb": "x"}},
            ],
        )

        metric(tenant, "gb", "sum", property="gb")
        invalid = tenant.get("/v1/usage_events", params={"status": "invalid"}).json()["data"]

        assert [e["transaction_id"] for e in invalid] == ["b"]
        with container.sessions() as s:
            assert (
                s.scalar(select(func.sum(UsageRollup.total)).where(UsageRollup.org_id == tenant.org_id))
                == 1_500_000
            )


class TestExactValues:
    """Non-integer JSON numbers are read as exact decimals, never as binary floats (a float cannot hold
    123456789012.123456: it would count 123456789012.123459...)."""

    def test_decimal_values_are_counted_and_stored_digit_for_digit(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "gb", "sum", property="gb")
        cus = customer(tenant)
        body = (
            '{"events": ['
            f'{{"transaction_id": "big", "customer_id": "{cus}", "metric_code": "gb", '
            '"timestamp": "2024-06-01T10:00:00Z", "properties": {"gb": 123456789012.123456}},'
            f'{{"transaction_id": "tenth", "customer_id": "{cus}", "metric_code": "gb", '
            '"timestamp": "2024-06-01T10:00:00Z", "properties": {"gb": 0.1}},'
            f'{{"transaction_id": "fifth", "customer_id": "{cus}", "metric_code": "gb", '
            '"timestamp": "2024-06-01T10:00:00Z", "properties": {"gb": 2E-1}}]}'
        )

        r = tenant.post(
            "/v1/usage_events/batch", content=body.encode(), headers={"Content-Type": "application/json"}
        )

        assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
        with container.sessions() as s:
            values = dict(
                s.execute(
                    select(UsageEvent.transaction_id, UsageEvent.value).where(
                        UsageEvent.org_id == tenant.org_id
                    )
                ).all()
            )
            stored = s.scalar(
                select(cast(UsageEvent.properties, Text)).where(
                    UsageEvent.org_id == tenant.org_id, UsageEvent.transaction_id == "big"
                )
            )
            total = s.scalar(select(func.sum(UsageRollup.total)).where(UsageRollup.org_id == tenant.org_id))
        assert values == {"big": 123_456_789_012_123_456, "tenth": 100_000, "fifth": 200_000}
        assert total == 123_456_789_012_423_456
        assert stored is not None and "123456789012.123456" in stored

    def test_an_epoch_timestamp_with_a_fraction_is_exact_to_the_microsecond(self, tenant: Tenant) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        body = (
            f'{{"transaction_id": "e1", "customer_id": "{cus}", "metric_code": "calls", '
            '"timestamp": 1717243200.000001}'
        )

        r = tenant.post(
            "/v1/usage_events", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        listed = tenant.get("/v1/usage_events", params={"customer_id": cus}).json()["data"]

        assert r.status_code == 201, r.text
        assert listed[0]["timestamp"].startswith("2024-06-01T12:00:00.000001")

    def test_an_unmatched_decimal_value_is_read_exactly_once_its_metric_exists(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant)
        body = (
            f'{{"transaction_id": "late", "customer_id": "{cus}", "metric_code": "gb", '
            '"timestamp": "2024-06-01T10:00:00Z", "properties": {"gb": 98765432109.876543}}'
        )
        tenant.post("/v1/usage_events", content=body.encode(), headers={"Content-Type": "application/json"})

        metric(tenant, "gb", "sum", property="gb")

        with container.sessions() as s:
            value = s.scalar(select(UsageEvent.value).where(UsageEvent.org_id == tenant.org_id))
        listed = tenant.get("/v1/usage_events")
        assert value == 98_765_432_109_876_543
        [event] = listed.json()["data"]
        assert event["status"] == "billable" and event["value"] == "98765432109.876543"
        assert '"gb":98765432109.876543' in listed.text  # the properties as sent (ADR 0041)

    def test_a_binary_float_from_a_python_caller_is_refused_not_rounded(
        self, tenant: Tenant, container: Container
    ) -> None:
        metric(tenant, "gb", "sum", property="gb")
        cus = customer(tenant)

        with container.sessions() as s:
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=container.clock)
            [outcome] = usage_ingest.ingest(
                ctx,
                [{"transaction_id": "f", "customer_id": cus, "metric_code": "gb", "properties": {"gb": 0.1}}],
            )
            s.commit()

        assert (outcome.status, outcome.code) == ("rejected", "invalid_value")
        assert _count(container, UsageEvent, tenant.org_id) == 0


class TestConcurrentRetries:
    def test_concurrent_retries_of_one_batch_count_once(self, tenant: Tenant, container: Container) -> None:
        metric(tenant, "calls")
        cus = customer(tenant)
        events = [{"transaction_id": f"c{i}", "customer_id": cus, "metric_code": "calls"} for i in range(200)]
        results: list[dict[str, Any]] = []
        errors: list[BaseException] = []

        with live_server(container) as base:

            def send() -> None:
                try:
                    with httpx.Client(base_url=base, headers=tenant.headers, timeout=60) as http:
                        r = http.post("/v1/usage_events/batch", json={"events": events})
                        r.raise_for_status()
                        results.append(r.json())
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=send) for _ in range(6)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()

        assert errors == []
        assert sum(r["accepted"] for r in results) == 200
        assert sum(r["duplicate"] for r in results) == 200 * 5
        assert _count(container, UsageEvent, tenant.org_id) == 200
        assert _rollup_events(container, tenant.org_id) == 200


class TestPartitions:
    @pytest.mark.postgres_only
    def test_months_ahead_get_their_own_partition_once(self, tenant: Tenant, container: Container) -> None:
        from datetime import UTC, datetime

        from sqlalchemy import text

        from revflow.services.usage_partitions import ensure_partitions

        with container.sessions() as s:
            first = ensure_partitions(s, now=datetime(2028, 1, 15, tzinfo=UTC), months_ahead=2)
            again = ensure_partitions(s, now=datetime(2028, 1, 15, tzinfo=UTC), months_ahead=2)
            s.commit()
        metric(tenant, "calls")
        cus = customer(tenant)
        # 2028 is "more than an hour in the future" for the API: write through the service clock instead
        with container.sessions() as s:
            from revflow.domain.clock import FrozenClock
            from revflow.services.context import Actor, Ctx
            from revflow.services.usage_ingest import ingest

            ctx = Ctx(
                session=s,
                org_id=tenant.org_id,
                actor=Actor("cli"),
                clock=FrozenClock(datetime(2028, 2, 2, tzinfo=UTC)),
            )
            [outcome] = ingest(
                ctx,
                [
                    {
                        "transaction_id": "f",
                        "customer_id": cus,
                        "metric_code": "calls",
                        "timestamp": "2028-02-01T00:00:00Z",
                    }
                ],
            )
            s.commit()
            where = s.scalar(
                text("SELECT tableoid::regclass::text FROM usage_events WHERE transaction_id = 'f'")
            )

        assert first == ["usage_events_2028_01", "usage_events_2028_02", "usage_events_2028_03"]
        assert again == []
        assert outcome.status == "accepted"
        assert where == "usage_partitions.usage_events_2028_02"

"""Helpers for usage metering tests: metrics, customers and events through the API."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant


def metric(t: Tenant, code: str, aggregation: str = "count", **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/billable_metrics", {"code": code, "name": code, "aggregation": aggregation, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def customer(t: Tenant, **fields: Any) -> str:
    r = t.post("/v1/customers", {"name": "Acme", "currency": "USD", **fields})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def batch(t: Tenant, events: list[dict[str, Any]]) -> dict[str, Any]:
    r = t.post("/v1/usage_events/batch", {"events": events})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]

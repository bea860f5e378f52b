"""Helpers for CRM sync tests: a HubSpot integration pointed at the fake, plans, and running sync jobs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from revflow.bootstrap import Container
from revflow.services import crm_sync
from tests.conftest import Tenant
from tests.fakes.hubspot import FakeHubSpot
from tests.integration.billing_helpers import make_plan, make_price

HOOK_URL = "http://testserver/v1/webhooks/hubspot"
#: A private-app token shaped like HubSpot's (the fake's all-zero default trips the card-number guard).
TOKEN = "pat-na1-3f1c9a2e-7b4d-4e8a-9c11-2d5e6f7a8b9c"


def connect_hubspot(t: Tenant, container: Container, fake: FakeHubSpot, **settings: Any) -> str:
    """Point the container's HubSpot adapter at the fake and create the integration; returns its id."""
    container.crm_overrides["hubspot"] = {"api_base": fake.url, "timeout": 3.0}
    r = t.post(
        "/v1/integrations",
        {
            "system": "hubspot",
            "credentials": {"access_token": fake.access_token, "client_secret": fake.client_secret},
            "owner": "revops@example.com",
            "description": "Billing fields on companies and deals; plan changes from deals",
            "settings": settings,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def plans(container: Container, org_id: str, currency: str = "USD") -> dict[str, str]:
    """``basic`` at 49.00 and ``pro`` at 99.00 a month; returns code -> plan id."""
    basic = make_price(container, org_id, name="Basic", currency=currency, flat=4900)
    pro = make_price(container, org_id, name="Pro", currency=currency, flat=9900)
    return {
        "basic": make_plan(container, org_id, "basic", [basic]),
        "pro": make_plan(container, org_id, "pro", [pro]),
    }


def sync(container: Container) -> crm_sync.SyncStats:
    """Run every due sync job once."""
    return crm_sync.run_due(
        container.sessions, factory=container.crm_connector, box=container.secret_box, clock=container.clock
    )


def deliver(fake: FakeHubSpot, client: TestClient) -> list[int | None]:
    """Deliver the fake's queued webhooks to Revflow's endpoint; returns the answers' statuses."""

    def handler(body: bytes, headers: dict[str, str]) -> int:
        return client.post("/v1/webhooks/hubspot", content=body, headers=headers).status_code

    return [d.status for d in fake.deliver_webhooks(handler)]


def jobs(t: Tenant, **filters: str) -> list[dict[str, Any]]:
    r = t.get("/v1/sync_jobs", params={"limit": 100, **filters})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def alerts(t: Tenant, type: str) -> list[dict[str, Any]]:
    r = t.get("/v1/alerts", params={"limit": 100})
    assert r.status_code == 200, r.text
    return [a for a in r.json()["data"] if a["type"] == type]

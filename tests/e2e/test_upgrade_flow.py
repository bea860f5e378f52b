"""The seed's upgrade flow, end to end, on SQLite and PostgreSQL:

a plan change on a HubSpot deal → (signed webhook) → subscription upgraded → prorated invoice finalized →
charged through the payment gateway (sandbox) → ``subscription.updated`` and ``invoice.paid`` webhooks
delivered, signed, to a registered endpoint → the HubSpot company and deal show the new plan and MRR → a
customer-success email — all within one worker cycle, on a test clock halfway through the period.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from revflow.api.app import create_app
from revflow.bootstrap import Container
from revflow.domain.clock import FrozenClock
from revflow.jobs.worker import Worker
from tests.conftest import Tenant, container_for, make_tenant
from tests.fakes.hubspot import FakeHubSpot
from tests.integration.crm_helpers import HOOK_URL, TOKEN, connect_hubspot, deliver, plans
from tests.integration.webhook_receiver import Receiver

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def container(db_url: str, clock: FrozenClock) -> Iterator[Container]:
    yield from container_for(db_url, clock=clock, webhook_allow_private=True)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as tc:
        yield tc


@pytest.fixture
def tenant(container: Container, client: TestClient) -> Tenant:
    return make_tenant(container, client)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(access_token=TOKEN, webhook_url=HOOK_URL) as f:
        f.subscribe("deal.propertyChange", "revflow_plan")
        yield f


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _cycle(container: Container) -> dict[str, int]:
    done = Worker(container).run_once()
    assert all(v >= 0 for v in done.values()), done
    return done


class TestUpgradeFlow:
    def test_a_plan_change_on_the_hubspot_deal_runs_through_billing_payment_webhooks_crm_and_success(
        self,
        tenant: Tenant,
        container: Container,
        client: TestClient,
        clock: FrozenClock,
        fake: FakeHubSpot,
        receiver: Receiver,
    ) -> None:
        # Arrange: a customer on a test clock, subscribed to basic (49.00/month) with a card, known to
        # HubSpot; an endpoint for subscription.updated and invoice.paid; customer success by email.
        ids = plans(container, tenant.org_id)
        test_clock = tenant.post("/v1/test_clocks", {"frozen_time": START.isoformat()}).json()
        cus = tenant.post(
            "/v1/customers",
            {
                "name": "Acme Corp",
                "email": "ap@acme.io",
                "currency": "USD",
                "test_clock_id": test_clock["id"],
            },
        ).json()
        assert (
            tenant.post(f"/v1/customers/{cus['id']}/payment_methods", {"token": "pm_card_visa"}).status_code
            == 201
        )
        sub = tenant.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": ids["basic"]}).json()
        endpoint = tenant.post(
            "/v1/webhook_endpoints",
            {"url": receiver.url, "enabled_events": ["subscription.updated", "invoice.paid"]},
        ).json()
        receiver.secrets.append(endpoint["secret"])
        connect_hubspot(tenant, container, fake, customer_success_email="cs@example.com")
        _cycle(container)  # first invoice charged; company and deal pushed
        deliver(fake, client)  # HubSpot echoes Revflow's own writes: no change
        _cycle(container)
        deal_id = tenant.get("/v1/entity_mappings", params={"object_id": sub["id"]}).json()["data"][0][
            "external_id"
        ]
        assert fake.get("deals", deal_id)["properties"]["revflow_plan"] == "basic"  # type: ignore[index]
        half = START + timedelta(days=15)
        tenant.post(f"/v1/test_clocks/{test_clock['id']}/advance", {"frozen_time": half.isoformat()})
        clock.advance(timedelta(days=15))
        receiver.received.clear()

        # Act: a sales rep changes the deal's plan in HubSpot; HubSpot posts the webhook; one worker cycle.
        fake.edit("deals", deal_id, revflow_plan="pro")
        assert deliver(fake, client) == [200]
        _cycle(container)

        # Assert: the whole chain, after that one cycle.
        upgraded = tenant.get(f"/v1/subscriptions/{sub['id']}").json()
        invoices = tenant.get("/v1/invoices", params={"subscription_id": sub["id"], "limit": 100}).json()[
            "data"
        ]
        proration = [i for i in invoices if i["billing_reason"] == "subscription_update"]
        assert upgraded["plan_id"] == ids["pro"]
        assert len(proration) == 1
        inv = proration[0]
        assert inv["status"] == "paid" and inv["number"]
        # The difference (99.00 - 49.00) for the second half of the period: 15 or 16 of 28-31 days.
        assert 2300 <= inv["total"] <= 2900, inv["total"]
        payments = tenant.get("/v1/payments", params={"invoice_id": inv["id"]}).json()["data"]
        assert [(p["status"], p["amount"]) for p in payments] == [("succeeded", inv["total"])]

        types = [r.payload["type"] for r in receiver.received]
        assert all(r.verified for r in receiver.received)
        assert types.count("subscription.updated") >= 1 and types.count("invoice.paid") == 1, types
        paid = next(r.payload for r in receiver.received if r.payload["type"] == "invoice.paid")
        assert inv["id"] in str(paid)

        deal = fake.get("deals", deal_id)
        assert deal is not None
        assert deal["properties"]["revflow_plan"] == "pro"
        assert deal["properties"]["revflow_mrr"] == "99.00"
        assert deal["properties"]["revflow_payment_status"] == "paid"
        company = fake.get("companies", _company_id(tenant, cus["id"]))
        assert company is not None
        assert (
            company["properties"]["revflow_plan"] == "pro" and company["properties"]["revflow_mrr"] == "99.00"
        )

        emails = tenant.get("/v1/emails", params={"limit": 100}).json()["data"]
        cs = [e for e in emails if e["to"] == "cs@example.com"]
        assert len(cs) == 1 and cs[0]["status"] in ("sent", "stored")
        assert "Acme Corp" in cs[0]["subject"] and "pro" in cs[0]["subject"]


def _company_id(t: Tenant, customer_id: str) -> str:
    data = t.get("/v1/entity_mappings", params={"object_id": customer_id, "system": "hubspot"}).json()["data"]
    return str(data[0]["external_id"])

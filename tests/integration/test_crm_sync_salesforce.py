"""Salesforce through the connector framework, against the fake Salesforce (TLS), on SQLite and PostgreSQL:
accounts and opportunities pushed with billing fields; inbound by polling from the LastModifiedDate cursor
stored on the poll sync job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.storage.connector_models import SyncJob
from tests.conftest import Tenant
from tests.fakes.salesforce import FakeSalesforce
from tests.integration.crm_helpers import alerts, jobs, plans, sync


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(hang_seconds=4.0) as f:
        yield f


def _connect(t: Tenant, container: Container, fake: FakeSalesforce) -> str:
    container.crm_overrides["salesforce"] = {
        "login_url": fake.login_url,
        "ca_file": fake.ca_file,
        "timeout": 3.0,
        "settle_seconds": 0,
    }
    r = t.post(
        "/v1/integrations",
        {
            "system": "salesforce",
            "credentials": {
                "username": fake.username,
                "password": fake.password,
                "security_token": fake.security_token,
            },
            "owner": "sales-ops@example.com",
            "description": "Billing fields on accounts and opportunities; won ones start subscriptions",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _poll_now(container: Container, fake: FakeSalesforce) -> None:
    """Let the fake's clock pass a second (polling reads settled seconds) and make the poll job due."""
    fake.advance_clock(2)
    with container.sessions() as s:
        for job in s.scalars(select(SyncJob).where(SyncJob.kind == "poll")):
            job.next_run_at = container.clock.now()
        s.commit()


class TestSalesforce:
    def test_customers_and_subscriptions_become_accounts_and_opportunities_with_billing_fields(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        from revflow.jobs.worker import deliver_events

        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        cus = tenant.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"}).json()
        sub = tenant.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": ids["pro"]}).json()

        deliver_events(container)
        stats = sync(container)

        accounts = fake.records("Account")
        opps = fake.records("Opportunity")
        assert stats.failed == 0 and stats.dead == 0
        assert len(accounts) == 1 and len(opps) == 1
        assert accounts[0]["Name"] == "Acme Corp" and accounts[0]["Revflow_Id__c"] == cus["id"]
        assert opps[0]["Revflow_Id__c"] == sub["id"] and opps[0]["AccountId"] == accounts[0]["Id"]
        assert opps[0]["Revflow_Plan__c"] == "pro" and float(opps[0]["Revflow_MRR__c"]) == 99.0
        assert opps[0]["StageName"] == "Closed Won" and opps[0]["CurrencyIsoCode"] == "USD"
        mapped = tenant.get("/v1/entity_mappings", params={"system": "salesforce"}).json()["data"]
        assert {(m["object_type"], m["external_type"], m["external_id"]) for m in mapped} == {
            ("customer", "account", accounts[0]["Id"]),
            ("subscription", "opportunity", opps[0]["Id"]),
        }

    def test_a_closed_won_opportunity_with_a_plan_is_polled_and_creates_the_subscription(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        _connect(tenant, container, fake)
        plans(container, tenant.org_id)
        account = fake.create("Account", Name="Globex")
        fake.create(
            "Opportunity",
            Name="Globex Basic",
            AccountId=account["Id"],
            StageName="Closed Won",
            CloseDate="2026-03-31",
            Revflow_Plan__c="basic",
            CurrencyIsoCode="USD",
        )
        _poll_now(container, fake)

        stats = sync(container)
        cursor = jobs(tenant, kind="poll")[0]["cursor"]
        _poll_now(container, fake)
        again = sync(container)

        subs = tenant.get("/v1/subscriptions").json()["data"]
        customers = tenant.get("/v1/customers").json()["data"]
        assert stats.failed == 0 and again.failed == 0
        assert [c["name"] for c in customers] == ["Globex"]
        assert len(subs) == 1 and subs[0]["customer_id"] == customers[0]["id"]
        assert cursor  # the LastModifiedDate position is kept on the poll job
        created = [
            j
            for j in jobs(tenant, kind="inbound_change")
            if j["result"].get("action") == "subscription_created"
        ]
        assert len(created) == 1

    def test_a_plan_change_on_the_opportunity_changes_the_subscription_and_unknown_plans_fail(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        from revflow.jobs.worker import deliver_events

        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        cus = tenant.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"}).json()
        sub = tenant.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": ids["basic"]}).json()
        deliver_events(container)
        sync(container)
        opp = fake.records("Opportunity")[0]["Id"]

        fake.edit("Opportunity", opp, Revflow_Plan__c="pro")
        _poll_now(container, fake)
        sync(container)
        changed = tenant.get(f"/v1/subscriptions/{sub['id']}").json()["plan_id"]
        fake.edit("Opportunity", opp, Revflow_Plan__c="platinum")
        _poll_now(container, fake)
        sync(container)

        assert changed == ids["pro"]
        assert tenant.get(f"/v1/subscriptions/{sub['id']}").json()["plan_id"] == ids["pro"]
        failed = jobs(tenant, status="failed")
        assert [j["error_code"] for j in failed] == ["unknown_plan"]
        assert len(alerts(tenant, "sync_failed")) == 1

    def test_request_limit_exceeded_and_server_errors_are_retried_and_nothing_is_lost(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        from revflow.jobs.worker import deliver_events

        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        cus = tenant.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"}).json()
        tenant.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": ids["pro"]})
        fake.fail_next("REQUEST_LIMIT_EXCEEDED", path="/sobjects/Account")
        fake.fail_next("503", path="/sobjects/Opportunity")

        deliver_events(container)
        sync(container)
        retried = {
            j["error_code"] for j in jobs(tenant) if j["status"] == "pending" and j["kind"].startswith("push")
        }
        with container.sessions() as s:
            for job in s.scalars(select(SyncJob).where(SyncJob.status == "pending")):
                job.next_run_at = container.clock.now()
            s.commit()
        sync(container)

        assert "rate_limited" in retried
        assert len(fake.records("Account")) == 1 and len(fake.records("Opportunity")) == 1
        assert {j["status"] for j in jobs(tenant) if j["kind"].startswith("push")} == {"succeeded"}
        assert alerts(tenant, "sync_failed") == []

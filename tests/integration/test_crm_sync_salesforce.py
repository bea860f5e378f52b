"""Salesforce through the connector framework, against the fake Salesforce (TLS), on SQLite and PostgreSQL:
accounts and opportunities pushed with billing fields; inbound by polling from the LastModifiedDate cursor
stored on the poll sync job."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

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


def _linked(t: Tenant, container: Container, plan_id: str) -> tuple[str, str]:
    """A subscription pushed to its opportunity; returns (subscription id, opportunity id)."""
    from revflow.jobs.worker import deliver_events

    cus = t.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"}).json()
    sub = t.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": plan_id}).json()
    deliver_events(container)
    sync(container)
    (mapping,) = t.get("/v1/entity_mappings", params={"object_id": sub["id"]}).json()["data"]
    return str(sub["id"]), str(mapping["external_id"])


class TestSalesforceLifecycle:
    def test_the_latest_invoice_is_on_the_opportunity_and_an_edited_total_is_reported_then_resolved(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        from revflow.jobs.worker import deliver_events

        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id, opp = _linked(tenant, container, ids["pro"])
        (invoice,) = tenant.get("/v1/invoices", params={"subscription_id": sub_id}).json()["data"]
        pushed = fake.record("Opportunity", opp)
        fake.edit("Opportunity", opp, Revflow_Last_Invoice_Total__c=89)
        _reconcile_now(container)
        sync(container)
        found = alerts(tenant, "crm_discrepancy")

        tenant.post(f"/v1/invoices/{invoice['id']}/payments", {"method": "bank_transfer"})
        deliver_events(container)
        sync(container)
        _reconcile_now(container)
        sync(container)
        after = fake.record("Opportunity", opp)

        assert pushed is not None and after is not None
        assert pushed["Revflow_Last_Invoice_Number__c"] == invoice["number"]
        assert pushed["Revflow_Last_Invoice_Total__c"] == Decimal("99.00")
        assert pushed["Revflow_Last_Invoice_Status__c"] == "open"
        assert [(a["details"]["field"], a["details"]["revflow"], a["details"]["crm"]) for a in found] == [
            ("last_invoice_total", "99.00", "89")
        ]
        assert after["Revflow_Last_Invoice_Status__c"] == "paid"
        assert [a["status"] for a in alerts(tenant, "crm_discrepancy")] == ["resolved"]

    def test_closed_lost_cancels_at_the_period_end_and_closed_won_again_removes_the_cancel(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id, opp = _linked(tenant, container, ids["basic"])

        fake.edit("Opportunity", opp, StageName="Closed Lost")
        _poll_now(container, fake)
        lost = sync(container)
        canceling = tenant.get(f"/v1/subscriptions/{sub_id}").json()
        fake.edit("Opportunity", opp, StageName="Closed Won")
        _poll_now(container, fake)
        won = sync(container)
        restored = tenant.get(f"/v1/subscriptions/{sub_id}").json()

        assert lost.failed == 0 and won.failed == 0
        assert canceling["cancel_at_period_end"] is True
        assert canceling["cancel_at"] == canceling["current_period_end"]
        assert (restored["cancel_at_period_end"], restored["cancel_at"]) == (False, None)
        actions = [j["result"].get("action") for j in jobs(tenant, kind="inbound_change")]
        assert actions.count("cancel_scheduled") == 1 and actions.count("cancel_removed") == 1

    def test_an_open_stage_on_a_billed_opportunity_fails_the_job_and_changes_nothing(
        self, tenant: Tenant, container: Container, fake: FakeSalesforce
    ) -> None:
        _connect(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id, opp = _linked(tenant, container, ids["basic"])

        fake.edit("Opportunity", opp, StageName="Negotiation/Review", Revflow_Plan__c="pro")
        _poll_now(container, fake)
        sync(container)

        failed = jobs(tenant, status="failed")
        assert [(j["error_code"], j["object_id"]) for j in failed] == [("unknown_stage", opp)]
        assert [a["details"]["code"] for a in alerts(tenant, "sync_failed")] == ["unknown_stage"]
        sub = tenant.get(f"/v1/subscriptions/{sub_id}").json()
        assert (sub["plan_id"], sub["cancel_at_period_end"]) == (ids["basic"], False)


def _reconcile_now(container: Container) -> None:
    with container.sessions() as s:
        for job in s.scalars(select(SyncJob).where(SyncJob.kind == "reconcile")):
            job.next_run_at = container.clock.now()
        s.commit()

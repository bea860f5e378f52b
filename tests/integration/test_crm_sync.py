"""The connector framework and HubSpot both ways, against the fake HubSpot, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.services import crm_sync
from revflow.storage.connector_models import Integration, SyncJob
from revflow.storage.hub_models import EntityMapping
from revflow.storage.models import Subscription
from tests.conftest import Tenant
from tests.fakes.hubspot import FakeHubSpot
from tests.integration.crm_helpers import (
    HOOK_URL,
    TOKEN,
    alerts,
    connect_hubspot,
    deliver,
    jobs,
    plans,
    sync,
)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(access_token=TOKEN, hang_seconds=4.0, webhook_url=HOOK_URL) as f:
        f.subscribe("deal.propertyChange", "revflow_plan")
        f.subscribe("deal.propertyChange", "dealstage")
        f.subscribe("deal.creation")
        f.subscribe("deal.deletion")
        yield f


def _subscribe(t: Tenant, plan_id: str, name: str = "Acme Corp") -> tuple[str, str]:
    cus = t.post("/v1/customers", {"name": name, "email": "billing@acme.io", "currency": "USD"}).json()
    sub = t.post("/v1/subscriptions", {"customer_id": cus["id"], "plan_id": plan_id})
    assert sub.status_code == 201, sub.text
    return str(cus["id"]), str(sub.json()["id"])


def _deal_of(t: Tenant, sub_id: str) -> str:
    r = t.get("/v1/entity_mappings", params={"object_id": sub_id, "system": "hubspot"}).json()["data"]
    assert len(r) == 1, r
    return str(r[0]["external_id"])


def _plan_of(container: Container, sub_id: str) -> str | None:
    with container.sessions() as s:
        sub = s.get(Subscription, sub_id)
        assert sub is not None
        return sub.plan_id


class TestIntegrationsApi:
    def test_credentials_are_write_only_and_sealed_and_a_poll_job_is_scheduled(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        integration_id = connect_hubspot(tenant, container, fake, customer_success_email="cs@example.com")

        got = tenant.get(f"/v1/integrations/{integration_id}").json()
        listed = tenant.get("/v1/integrations").json()["data"]
        with container.sessions() as s:
            row = s.get(Integration, integration_id)
            assert row is not None
            stored = row.credentials
        polls = jobs(tenant, integration_id=integration_id, kind="poll")

        assert "credentials" not in got and got["has_credentials"] is True
        assert got["owner"] == "revops@example.com"
        assert got["settings"]["proration_behavior"] == "always_invoice"
        assert got["settings"]["customer_success_email"] == "cs@example.com"
        assert [i["id"] for i in listed] == [integration_id]
        assert fake.access_token not in stored and stored.startswith("fernet:")
        assert [(j["status"], j["direction"]) for j in polls] == [("pending", "inbound")]

    def test_update_replaces_credentials_and_merges_settings_and_delete_removes_jobs(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        integration_id = connect_hubspot(tenant, container, fake)

        r = tenant.patch(
            f"/v1/integrations/{integration_id}",
            {
                "owner": "ops@example.com",
                "settings": {"poll_interval_seconds": 60},
                "credentials": {"access_token": "new"},
            },
        )
        with container.sessions() as s:
            row = s.get(Integration, integration_id)
            assert row is not None
            opened = container.secret_box.open(row.credentials)
        deleted = tenant.delete(f"/v1/integrations/{integration_id}")
        with container.sessions() as s:
            left = s.scalars(select(SyncJob).where(SyncJob.integration_id == integration_id)).all()

        assert r.status_code == 200, r.text
        assert r.json()["owner"] == "ops@example.com"
        assert r.json()["settings"]["poll_interval_seconds"] == 60
        assert r.json()["settings"]["proration_behavior"] == "always_invoice"
        assert '"access_token": "new"' in opened
        assert deleted.status_code == 200 and list(left) == []
        assert tenant.get(f"/v1/integrations/{integration_id}").status_code == 404

    def test_bad_input_is_refused_with_a_code_and_nothing_is_created(self, tenant: Tenant) -> None:
        no_token = tenant.post(
            "/v1/integrations",
            {"system": "hubspot", "credentials": {"client_secret": "x"}, "owner": "o", "description": "d"},
        )
        unknown = tenant.post(
            "/v1/integrations",
            {"system": "zoho", "credentials": {"access_token": "x"}, "owner": "o", "description": "d"},
        )
        no_owner = tenant.post(
            "/v1/integrations",
            {"system": "hubspot", "credentials": {"access_token": "x"}, "description": "d"},
        )

        assert no_token.status_code == 422 and no_token.json()["code"] == "invalid_credentials"
        assert unknown.status_code in (400, 422)
        assert no_owner.status_code in (400, 422)
        assert tenant.get("/v1/integrations").json()["data"] == []


class TestPushToHubSpot:
    def test_customers_and_subscriptions_become_companies_and_deals_with_billing_fields(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        customer_id, sub_id = _subscribe(tenant, ids["pro"])
        container_run = sync_after_fan_out(container)

        companies = fake.objects("companies")
        deals = fake.objects("deals")
        mappings = tenant.get("/v1/entity_mappings", params={"system": "hubspot"}).json()["data"]

        assert container_run.failed == 0 and container_run.dead == 0
        assert len(companies) == 1 and len(deals) == 1
        company, deal = companies[0]["properties"], deals[0]["properties"]
        assert company["name"] == "Acme Corp" and company["revflow_id"] == customer_id
        assert company["revflow_plan"] == "pro" and company["revflow_mrr"] == "99.00"
        assert deal["revflow_id"] == sub_id and deal["revflow_plan"] == "pro"
        assert deal["revflow_mrr"] == "99.00" and deal["revflow_status"] == "active"
        assert deal["revflow_currency"] == "USD" and deal["dealstage"] == "closedwon"
        assert deal["revflow_next_renewal"] != ""
        assert deal["revflow_payment_status"] in ("open", "paid")
        assert deal["revflow_overdue_balance"] == "0.00"
        assert {(m["object_type"], m["object_id"], m["external_id"]) for m in mappings} == {
            ("customer", customer_id, companies[0]["id"]),
            ("subscription", sub_id, deals[0]["id"]),
        }

    def test_pushing_again_changes_the_same_objects_and_creates_no_duplicate(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        customer_id, _ = _subscribe(tenant, ids["pro"])
        sync_after_fan_out(container)

        tenant.patch(f"/v1/customers/{customer_id}", {"name": "Acme Corporation"})
        sync_after_fan_out(container)

        companies = fake.objects("companies")
        assert len(companies) == 1 and len(fake.objects("deals")) == 1
        assert companies[0]["properties"]["name"] == "Acme Corporation"


def sync_after_fan_out(container: Container) -> object:
    """Fan the outbox out (which creates the push jobs) and run the sync jobs."""
    from revflow.jobs.worker import deliver_events

    deliver_events(container)
    return sync(container)


class TestInboundFromHubSpot:
    def test_a_plan_change_on_the_deal_arrives_by_webhook_and_changes_the_subscription(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["basic"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        deliver(fake, client)  # Revflow's own writes echo back; they change nothing
        sync(container)
        assert _plan_of(container, sub_id) == ids["basic"]

        fake.edit("deals", deal_id, revflow_plan="pro")
        statuses = deliver(fake, client)
        stats = sync(container)

        inbound = [
            j for j in jobs(tenant, kind="inbound_change") if j["result"].get("action") == "plan_changed"
        ]
        assert statuses == [200]
        assert stats.failed == 0
        assert _plan_of(container, sub_id) == ids["pro"]
        assert len(inbound) == 1 and inbound[0]["result"]["to_plan"] == "pro"
        invoices = tenant.get("/v1/invoices", params={"subscription_id": sub_id}).json()["data"]
        assert any(i["billing_reason"] == "subscription_update" for i in invoices)

    def test_a_redelivered_webhook_creates_one_job_and_a_bad_signature_is_refused(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["basic"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        deliver(fake, client)
        sync(container)
        fake.edit("deals", deal_id, revflow_plan="pro")
        body, headers = fake.sign()
        before = len(jobs(tenant, kind="inbound_change"))

        forged = client.post(
            "/v1/webhooks/hubspot", content=body, headers={**headers, "X-HubSpot-Signature-v3": "AAAA"}
        )
        after_forged = len(jobs(tenant, kind="inbound_change"))
        first = client.post("/v1/webhooks/hubspot", content=body, headers=headers)
        again = client.post("/v1/webhooks/hubspot", content=body, headers=headers)

        assert forged.status_code == 400 and forged.json()["code"] == "invalid_signature"
        assert after_forged == before
        assert first.status_code == 200 and first.json()["queued"] == 1
        assert again.status_code == 200 and again.json()["queued"] == 0
        assert len(jobs(tenant, kind="inbound_change")) == before + 1
        assert _plan_of(container, sub_id) == ids["basic"]  # nothing applied before the worker runs

    def test_a_deal_won_with_a_plan_creates_the_customer_and_the_subscription(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        plans(container, tenant.org_id)
        company = fake.create("companies", {"name": "Globex", "domain": "globex.com"})
        deal = fake.create(
            "deals",
            {
                "dealname": "Globex Pro",
                "dealstage": "contractsent",
                "revflow_plan": "pro",
                "deal_currency_code": "USD",
            },
            associate_with=company["id"],
        )

        fake.edit("deals", deal["id"], dealstage="closedwon")
        deliver(fake, client)
        stats = sync(container)

        subs = tenant.get("/v1/subscriptions").json()["data"]
        customers = tenant.get("/v1/customers").json()["data"]
        assert stats.failed == 0
        assert [c["name"] for c in customers] == ["Globex"]
        assert len(subs) == 1 and subs[0]["customer_id"] == customers[0]["id"]
        assert _deal_of(tenant, subs[0]["id"]) == deal["id"]
        assert customers[0]["external_ids"].get("hubspot") == company["id"]

    def test_polling_picks_up_a_won_deal_when_no_webhook_arrives(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        plans(container, tenant.org_id)
        company = fake.create("companies", {"name": "Initech"})
        fake.create(
            "deals",
            {"dealname": "Initech Basic", "dealstage": "closedwon", "revflow_plan": "basic"},
            associate_with=company["id"],
        )

        stats = sync(container)  # the poll job is due at once; its inbound changes run in the same call

        poll = jobs(tenant, kind="poll")[0]
        subs = tenant.get("/v1/subscriptions").json()["data"]
        assert stats.failed == 0
        assert len(subs) == 1
        assert poll["cursor"] and poll["status"] == "pending" and poll["result"]["deals"] >= 1

    @pytest.mark.parametrize(
        ("props", "code"),
        [
            ({"revflow_plan": "platinum"}, "unknown_plan"),
            ({"deal_currency_code": "EUR"}, "currency_mismatch"),
        ],
    )
    def test_data_that_does_not_map_fails_the_job_with_an_alert_and_changes_nothing(
        self,
        tenant: Tenant,
        container: Container,
        client: TestClient,
        fake: FakeHubSpot,
        props: dict[str, str],
        code: str,
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["basic"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        deliver(fake, client)
        sync(container)
        invoices_before = len(tenant.get("/v1/invoices").json()["data"])

        fake.edit("deals", deal_id, **({"revflow_plan": "pro"} | props))
        deliver(fake, client)
        sync(container)

        failed = jobs(tenant, status="failed")
        assert len(failed) == 1 and failed[0]["error_code"] == code
        assert failed[0]["object_id"] == deal_id and failed[0]["last_error"]
        assert _plan_of(container, sub_id) == ids["basic"]
        assert len(tenant.get("/v1/invoices").json()["data"]) == invoices_before
        sync_alerts = alerts(tenant, "sync_failed")
        assert len(sync_alerts) == 1 and sync_alerts[0]["details"]["code"] == code


class TestFaults:
    def test_a_429_waits_for_retry_after_and_then_pushes_once(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _subscribe(tenant, ids["pro"])
        sync(container)  # the first poll, out of the way
        fake.inject_fault("429", times=1, retry_after=7, path="/crm/v3/objects/companies")

        t0 = container.clock.now()
        sync_after_fan_out(container)

        waiting = [j for j in jobs(tenant) if j["status"] == "pending" and j["kind"].startswith("push")]
        assert waiting and all(j["error_code"] == "rate_limited" for j in waiting)
        assert all(
            timedelta(seconds=6) <= _parse(j["next_run_at"]) - t0 <= timedelta(seconds=60) for j in waiting
        )
        with container.sessions() as s:  # time passes
            for job in s.scalars(select(SyncJob).where(SyncJob.status == "pending")):
                job.next_run_at = t0
            s.commit()
        sync(container)
        assert len(fake.objects("companies")) == 1 and len(fake.objects("deals")) == 1
        assert {j["status"] for j in jobs(tenant) if j["kind"].startswith("push")} == {"succeeded"}

    @pytest.mark.parametrize("kind", ["500", "timeout", "malformed"])
    def test_server_errors_timeouts_and_garbled_answers_are_retried_without_duplicates(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot, kind: str
    ) -> None:
        connect_hubspot(tenant, container, fake)
        container.crm_overrides["hubspot"]["timeout"] = 1.0
        ids = plans(container, tenant.org_id)
        _subscribe(tenant, ids["pro"])
        sync(container)
        fake.inject_fault(kind, times=1, method="POST", path="/crm/v3/objects/companies")  # type: ignore[arg-type]

        sync_after_fan_out(container)
        retried = [j for j in jobs(tenant) if j["kind"].startswith("push") and j["status"] == "pending"]
        with container.sessions() as s:
            for job in s.scalars(select(SyncJob).where(SyncJob.status == "pending")):
                job.next_run_at = container.clock.now()
            s.commit()
        sync(container)

        assert retried and all(j["last_error"] for j in retried)
        assert len(fake.objects("companies")) == 1 and len(fake.objects("deals")) == 1
        assert {j["status"] for j in jobs(tenant) if j["kind"].startswith("push")} == {"succeeded"}
        assert alerts(tenant, "sync_failed") == []

    def test_a_budget_under_ten_percent_raises_a_rate_limit_warning(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _subscribe(tenant, ids["pro"])
        sync(container)
        assert alerts(tenant, "rate_limit_warning") == []
        fake.set_rate_limit(max=100, remaining=12)

        sync_after_fan_out(container)

        warnings = alerts(tenant, "rate_limit_warning")
        assert len(warnings) == 1
        assert warnings[0]["details"]["limit"] == 100 and warnings[0]["details"]["remaining"] < 10


def _parse(value: str) -> object:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _due(container: Container, kind: str) -> None:
    with container.sessions() as s:
        for job in s.scalars(select(SyncJob).where(SyncJob.kind == kind)):
            job.next_run_at = container.clock.now()
        s.commit()


class TestMonitoring:
    def test_reconciliation_records_each_mismatch_with_both_values_and_resolves_it_when_fixed(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["pro"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        _due(container, "reconcile")
        sync(container)
        assert alerts(tenant, "crm_discrepancy") == []  # in step after the push
        fake.edit("deals", deal_id, revflow_mrr="120.00", revflow_status="canceled")  # someone edits by hand

        _due(container, "reconcile")
        sync(container)
        found = alerts(tenant, "crm_discrepancy")
        job = jobs(tenant, kind="reconcile")[0]
        with container.sessions() as s:  # the fix: Revflow pushes its values again
            integ = s.scalars(select(Integration)).one()
            crm_sync.enqueue_job(
                s,
                integ,
                kind="push_subscription",
                object_type="subscription",
                object_id=sub_id,
                now=container.clock.now(),
            )
            s.commit()
        sync(container)
        _due(container, "reconcile")
        sync(container)
        after = {a["details"]["field"]: a["status"] for a in alerts(tenant, "crm_discrepancy")}

        by_field = {a["details"]["field"]: a["details"] for a in found}
        assert set(by_field) == {"mrr", "status"}
        assert (by_field["mrr"]["revflow"], by_field["mrr"]["crm"]) == ("99.00", "120.00")
        assert (by_field["status"]["revflow"], by_field["status"]["crm"]) == ("active", "canceled")
        assert all(a["object_id"] == sub_id for a in found)
        assert job["result"]["checked"] == 2 and job["result"]["mismatches"] == 2
        assert after == {"mrr": "resolved", "status": "resolved"}

    def test_the_flow_map_shows_owner_direction_trigger_last_success_and_error_rate(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        integration_id = connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["basic"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        deliver(fake, client)
        sync(container)
        fake.edit("deals", deal_id, revflow_plan="platinum")  # fails: unknown plan
        deliver(fake, client)
        sync(container)

        r = tenant.get("/v1/integrations/flows")
        metrics_text = client.get("/metrics").text

        assert r.status_code == 200, r.text
        [entry] = r.json()["data"]
        assert entry["integration_id"] == integration_id and entry["owner"] == "revops@example.com"
        flows = {(f["direction"], f["trigger"], f["external_object"]): f for f in entry["flows"]}
        push = flows[("outbound", "real-time", "deal")]
        inbound = flows[("inbound", "real-time", "deal")]
        poll = flows[("inbound", "schedule", "deal")]
        assert push["last_success_at"] is not None and push["error_rate"] == 0
        assert inbound["failed_jobs"] == 1 and 0 < inbound["error_rate"] < 1
        assert poll["last_success_at"] is not None
        assert flows[("compare", "schedule", "company, deal")]["sync_job_kinds"] == ["reconcile"]
        assert 'revflow_sync_jobs{status="failed",system="hubspot"} 1.0' in metrics_text
        assert 'revflow_alerts_open{type="sync_failed"} 1.0' in metrics_text
        assert "revflow_sync_jobs_total" in metrics_text


class TestMoreFaults:
    def test_a_poll_that_fails_keeps_its_cursor_and_the_next_one_loses_nothing(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        plans(container, tenant.org_id)
        company = fake.create("companies", {"name": "Umbrella"})
        fake.create(
            "deals",
            {"dealname": "Umbrella Pro", "dealstage": "closedwon", "revflow_plan": "pro"},
            associate_with=company["id"],
        )
        fake.inject_fault("500", times=1, path="/crm/v3/objects/companies/search")

        sync(container)
        failed_poll = jobs(tenant, kind="poll")[0]
        _due(container, "poll")
        sync(container)

        assert failed_poll["status"] == "pending" and failed_poll["cursor"] is None
        assert failed_poll["last_error"] and failed_poll["attempts"] == 1
        assert len(tenant.get("/v1/subscriptions").json()["data"]) == 1
        assert jobs(tenant, kind="poll")[0]["cursor"]

    def test_a_revoked_token_fails_the_push_with_a_clear_error_and_an_alert(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        integration_id = connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        tenant.patch(
            f"/v1/integrations/{integration_id}",
            {"credentials": {"access_token": "pat-na1-revoked", "client_secret": fake.client_secret}},
        )
        _, sub_id = _subscribe(tenant, ids["pro"])

        sync_after_fan_out(container)

        failed = [j for j in jobs(tenant, status="failed") if j["kind"] == "push_subscription"]
        assert len(failed) == 1 and failed[0]["object_id"] == sub_id
        assert "401" in failed[0]["last_error"] or "authentication" in failed[0]["last_error"].lower()
        assert fake.objects("companies") == [] and fake.objects("deals") == []
        assert any(a["details"]["kind"] == "push_subscription" for a in alerts(tenant, "sync_failed"))

    def test_retries_that_never_succeed_end_dead_with_an_alert(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        cus = tenant.post("/v1/customers", {"name": "Hooli", "currency": "USD"}).json()
        sync(container)
        fake.inject_fault("500", times=crm_sync.MAX_ATTEMPTS, path="/crm/v3/objects/companies")

        sync_after_fan_out(container)
        for _ in range(crm_sync.MAX_ATTEMPTS):
            _due(container, "push_customer")
            sync(container)

        [job] = jobs(tenant, kind="push_customer")
        assert job["status"] == "dead" and job["attempts"] == crm_sync.MAX_ATTEMPTS
        assert job["object_id"] == cus["id"] and "gave up" in job["last_error"]
        assert [a["object_id"] for a in alerts(tenant, "sync_failed")] == [job["id"]]

    def test_a_signed_body_that_is_not_hubspot_events_is_refused_and_nothing_is_stored(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        before = jobs(tenant)
        from tests.fakes.hubspot import sign_v3

        body = b'{"not": "an array"}'
        headers = sign_v3(body, fake.client_secret, url=HOOK_URL, method="POST")

        r = client.post("/v1/webhooks/hubspot", content=body, headers=headers)

        assert r.status_code == 400 and r.json()["code"] == "malformed_payload"
        assert jobs(tenant) == before

    def test_webhooks_refused_while_revflow_is_down_are_delivered_again_and_applied_once(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        _, sub_id = _subscribe(tenant, ids["basic"])
        sync_after_fan_out(container)
        deal_id = _deal_of(tenant, sub_id)
        deliver(fake, client)
        sync(container)
        fake.edit("deals", deal_id, revflow_plan="pro")

        down = [d.status for d in fake.deliver_webhooks(lambda body, headers: 503)]
        up = deliver(fake, client)
        again = deliver(fake, client)
        sync(container)

        changed = [
            j for j in jobs(tenant, kind="inbound_change") if j["result"].get("action") == "plan_changed"
        ]
        assert down == [503] and up == [200] and again == []
        assert _plan_of(container, sub_id) == ids["pro"] and len(changed) == 1


class TestSeveralWorkers:
    @pytest.mark.postgres_only
    def test_two_workers_share_the_jobs_and_run_each_once(
        self, tenant: Tenant, container: Container, fake: FakeHubSpot
    ) -> None:
        import threading

        connect_hubspot(tenant, container, fake)
        for n in range(12):
            tenant.post("/v1/customers", {"name": f"Customer {n}", "currency": "USD"})
        from revflow.jobs.worker import deliver_events

        deliver_events(container)
        results: list[crm_sync.SyncStats] = []

        def work() -> None:  # small batches, so the two workers' claims interleave
            results.append(
                crm_sync.run_due(
                    container.sessions,
                    factory=container.crm_connector,
                    box=container.secret_box,
                    clock=container.clock,
                    batch_size=2,
                    max_rounds=50,
                )
            )

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        pushes = jobs(tenant, kind="push_customer")
        creates = [r for r in fake.requests if r.method == "POST" and r.path == "/crm/v3/objects/companies"]
        assert len(pushes) == 12
        assert {(j["status"], j["attempts"]) for j in pushes} == {("succeeded", 1)}
        assert sum(r.claimed for r in results) == 13  # 12 pushes and the first poll, each claimed once
        assert len(fake.objects("companies")) == 12 and len(creates) == 12


def _invoice_of(t: Tenant, sub_id: str) -> dict[str, object]:
    (invoice,) = t.get("/v1/invoices", params={"subscription_id": sub_id}).json()["data"]
    return dict(invoice)


def _linked(t: Tenant, container: Container, fake: FakeHubSpot, client: TestClient, plan_id: str) -> str:
    """A subscription pushed to its deal, the echo of Revflow's own writes delivered; returns its id."""
    _, sub_id = _subscribe(t, plan_id)
    sync_after_fan_out(container)
    deliver(fake, client)
    sync(container)
    return sub_id


def _subscription(t: Tenant, sub_id: str) -> dict[str, object]:
    return dict(t.get(f"/v1/subscriptions/{sub_id}").json())


class TestInvoiceFieldsOnDeals:
    def test_the_latest_invoice_reaches_the_deal_and_an_edited_total_is_reported_then_resolved(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["pro"])
        invoice = _invoice_of(tenant, sub_id)
        deal_id = _deal_of(tenant, sub_id)
        pushed = fake.get("deals", deal_id)
        fake.edit("deals", deal_id, revflow_last_invoice_total="89.00")  # someone edits by hand
        _due(container, "reconcile")
        sync(container)
        found = alerts(tenant, "crm_discrepancy")

        paid = tenant.post(f"/v1/invoices/{invoice['id']}/payments", {"method": "bank_transfer"})
        sync_after_fan_out(container)  # the payment's invoice.paid event pushes the deal again
        _due(container, "reconcile")
        sync(container)

        assert pushed is not None and invoice["status"] == "open" and invoice["number"]
        assert pushed["properties"]["revflow_last_invoice_number"] == invoice["number"]
        assert pushed["properties"]["revflow_last_invoice_total"] == "99.00"
        assert pushed["properties"]["revflow_last_invoice_status"] == "open"
        assert [(a["details"]["field"], a["details"]["revflow"], a["details"]["crm"]) for a in found] == [
            ("last_invoice_total", "99.00", "89.00")
        ]
        assert paid.status_code == 201, paid.text
        after = fake.get("deals", deal_id)
        assert after is not None
        assert after["properties"]["revflow_last_invoice_total"] == "99.00"
        assert after["properties"]["revflow_last_invoice_status"] == "paid"
        assert after["properties"]["revflow_payment_status"] == "paid"
        assert [a["status"] for a in alerts(tenant, "crm_discrepancy")] == ["resolved"]

    def test_a_voided_invoice_shows_as_void_on_the_deal(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["basic"])
        invoice = _invoice_of(tenant, sub_id)

        voided = tenant.post(f"/v1/invoices/{invoice['id']}/void", {})
        sync_after_fan_out(container)

        deal = fake.get("deals", _deal_of(tenant, sub_id))
        assert voided.status_code == 200, voided.text
        assert deal is not None
        assert deal["properties"]["revflow_last_invoice_status"] == "void"
        assert deal["properties"]["revflow_last_invoice_total"] == "49.00"


class TestDealLifecycle:
    def test_closed_lost_cancels_at_the_period_end_and_won_again_removes_the_cancel(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["basic"])
        deal_id = _deal_of(tenant, sub_id)

        fake.edit("deals", deal_id, dealstage="closedlost")
        deliver(fake, client)
        lost = sync(container)
        canceling = _subscription(tenant, sub_id)
        sync_after_fan_out(container)  # Revflow pushes the deal: it stays closed-lost
        stage_after_push = fake.get("deals", deal_id)
        deliver(fake, client)  # the push's echo changes nothing
        sync(container)
        fake.edit("deals", deal_id, dealstage="closedwon")
        deliver(fake, client)
        won = sync(container)
        restored = _subscription(tenant, sub_id)

        assert lost.failed == 0 and won.failed == 0
        assert canceling["status"] == "active" and canceling["cancel_at_period_end"] is True
        assert canceling["cancel_at"] == canceling["current_period_end"]
        assert stage_after_push is not None and stage_after_push["properties"]["dealstage"] == "closedlost"
        assert stage_after_push["properties"]["revflow_status"] == "active"
        assert (restored["cancel_at_period_end"], restored["cancel_at"]) == (False, None)
        actions = [j["result"].get("action") for j in jobs(tenant, kind="inbound_change")]
        assert actions.count("cancel_scheduled") == 1 and actions.count("cancel_removed") == 1
        events = tenant.get("/v1/events", params={"object_id": sub_id, "limit": 100}).json()["data"]
        assert [e["type"] for e in events].count("subscription.updated") == 2
        audit = tenant.get("/v1/audit_events", params={"object_id": sub_id, "limit": 100}).json()["data"]
        assert {"subscription.cancel", "subscription.reactivate"} <= {a["action"] for a in audit}

    def test_a_deleted_deal_raises_an_alert_and_marks_the_mapping_and_billing_goes_on(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["basic"])
        deal_id = _deal_of(tenant, sub_id)

        fake.delete("deals", deal_id)
        statuses = deliver(fake, client)
        stats = sync(container)
        changed = tenant.post(f"/v1/subscriptions/{sub_id}/change", {"plan_id": ids["pro"]})
        sync_after_fan_out(container)  # the plan change's push skips the deleted deal
        _due(container, "reconcile")
        sync(container)

        assert statuses == [200] and stats.failed == 0
        deleted = alerts(tenant, "crm_object_deleted")
        assert len(deleted) == 1 and deleted[0]["object_id"] == sub_id
        assert deleted[0]["details"]["external_id"] == deal_id
        with container.sessions() as s:
            mapping = s.scalars(select(EntityMapping).where(EntityMapping.object_id == sub_id)).one()
            assert mapping.metadata_["deleted_in_crm_at"]
        sub = _subscription(tenant, sub_id)
        assert changed.status_code == 200, changed.text
        assert (sub["status"], sub["cancel_at_period_end"], sub["plan_id"]) == ("active", False, ids["pro"])
        assert fake.objects("deals") == []  # no new deal pushed behind the CRM user's back
        pushes = jobs(tenant, kind="push_subscription")
        assert pushes[0]["result"]["skipped"] == "deleted_in_crm"
        assert pushes[0]["result"]["external_id"] == deal_id
        assert [a["details"]["field"] for a in alerts(tenant, "crm_discrepancy")] == []

    def test_a_cancel_in_revflow_shows_lost_and_a_plan_asked_of_the_ended_subscription_fails(
        self, tenant: Tenant, container: Container, client: TestClient, fake: FakeHubSpot
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["basic"])
        deal_id = _deal_of(tenant, sub_id)

        canceled = tenant.post(f"/v1/subscriptions/{sub_id}/cancel", {"at": "now"})
        sync_after_fan_out(container)
        pushed = fake.get("deals", deal_id)
        deliver(fake, client)  # the echo of the lost stage changes nothing
        echo = sync(container)
        fake.edit("deals", deal_id, dealstage="closedwon", revflow_plan="pro")
        deliver(fake, client)
        sync(container)

        assert canceled.status_code == 200, canceled.text
        assert pushed is not None and pushed["properties"]["dealstage"] == "closedlost"
        assert pushed["properties"]["revflow_status"] == "canceled"
        assert echo.failed == 0
        failed = jobs(tenant, status="failed")
        assert {j["error_code"] for j in failed} == {"subscription_ended"}
        sub = _subscription(tenant, sub_id)
        assert (sub["status"], sub["plan_id"]) == ("canceled", ids["basic"])

    @pytest.mark.parametrize(
        ("props", "code"),
        [
            ({"dealstage": "contractsent"}, "unknown_stage"),
            ({"dealstage": "closedwon", "revflow_plan": "platinum"}, "unknown_plan"),
        ],
    )
    def test_an_open_stage_or_bad_data_fails_the_job_and_changes_nothing(
        self,
        tenant: Tenant,
        container: Container,
        client: TestClient,
        fake: FakeHubSpot,
        props: dict[str, str],
        code: str,
    ) -> None:
        connect_hubspot(tenant, container, fake)
        ids = plans(container, tenant.org_id)
        sub_id = _linked(tenant, container, fake, client, ids["basic"])
        deal_id = _deal_of(tenant, sub_id)
        fake.edit("deals", deal_id, dealstage="closedlost")
        deliver(fake, client)
        sync(container)
        before = _subscription(tenant, sub_id)

        fake.edit("deals", deal_id, **props)
        deliver(fake, client)
        sync(container)

        failed = jobs(tenant, status="failed")  # one job per changed property's webhook event
        assert len(failed) == len(props) and {j["error_code"] for j in failed} == {code}
        assert {a["details"]["code"] for a in alerts(tenant, "sync_failed")} == {code}
        after = _subscription(tenant, sub_id)
        assert (after["cancel_at_period_end"], after["cancel_at"], after["plan_id"]) == (
            True,
            before["cancel_at"],
            ids["basic"],
        )

"""Outbound webhooks: endpoints, signing, the outbox worker's delivery, retries, ordering, replay."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from revflow.adapters.crypto import FernetSecretBox
from revflow.adapters.webhooks import HttpWebhookSender
from revflow.api.app import create_app
from revflow.bootstrap import Container, build
from revflow.config import Settings
from revflow.domain.clock import FrozenClock
from revflow.jobs.worker import Worker, deliver_events
from revflow.services import outbox
from revflow.services.alerts import raise_alert
from revflow.storage.hub_models import OutboxEntry, WebhookAttempt, WebhookEndpoint
from revflow.storage.models import Alert, EventDelivery
from tests.conftest import Tenant, container_for
from tests.integration.billing_helpers import make_plan, make_price
from tests.integration.webhook_receiver import Receiver


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def container(db_url: str, clock: FrozenClock) -> Iterator[Container]:
    yield from container_for(db_url, clock=clock, webhook_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _endpoint(
    t: Tenant, receiver: Receiver, events: list[str] | None = None, host: str | None = None
) -> dict[str, Any]:
    url = receiver.url if host is None else f"{receiver.scheme}://{host}:{receiver.port}/hooks"
    r = t.post("/v1/webhook_endpoints", {"url": url, "enabled_events": events or ["*"]})
    assert r.status_code == 201, r.text
    receiver.secrets.append(r.json()["secret"])
    return dict(r.json())


def _deliveries(container: Container) -> list[EventDelivery]:
    with container.sessions() as s:
        return list(s.scalars(select(EventDelivery).order_by(EventDelivery.id)))


def _run(container: Container, **config: Any) -> outbox.DeliveryStats:
    return outbox.deliver_due(
        container.sessions,
        sender=container.webhook_sender,
        box=container.secret_box,
        clock=container.clock,
        config=outbox.DeliveryConfig(**config),
    )


def _customer_history(t: Tenant, name: str, updates: int) -> tuple[str, list[str]]:
    """A customer created and renamed ``updates`` times; returns its id and its event ids in order."""
    cus = t.post("/v1/customers", {"name": name}).json()
    for i in range(updates):
        assert t.patch(f"/v1/customers/{cus['id']}", {"name": f"{name} v{i + 1}"}).status_code == 200
    events = t.get("/v1/events", params={"object_id": cus["id"], "limit": 100}).json()["data"]
    return cus["id"], [e["id"] for e in reversed(events)]


def _per_object(receiver: Receiver) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for p in receiver.payloads():
        seen.setdefault(p["object_id"], []).append(p["id"])
    return seen


def _object_of(event: dict[str, Any]) -> str:
    return str(event["object_id"])


class TestEndpoints:
    def test_the_secret_is_shown_once_and_the_endpoint_can_be_changed_and_deleted(
        self, tenant: Tenant
    ) -> None:
        created = tenant.post(
            "/v1/webhook_endpoints",
            {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["invoice.*", "customer.created"]},
        )

        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and len(Webhook(body["secret"])._whsecret) == 32
        assert (body["status"], body["enabled_events"]) == ("enabled", ["invoice.*", "customer.created"])
        got = tenant.get(f"/v1/webhook_endpoints/{body['id']}")
        listed = tenant.get("/v1/webhook_endpoints")
        assert "secret" not in got.json() and body["secret"] not in listed.text
        assert [e["id"] for e in listed.json()["data"]] == [body["id"]]
        patched = tenant.patch(
            f"/v1/webhook_endpoints/{body['id']}", {"disabled": True, "enabled_events": ["invoice.paid"]}
        )
        assert (patched.json()["status"], patched.json()["disabled_reason"]) == ("disabled", "manual")
        assert patched.json()["enabled_events"] == ["invoice.paid"]
        deleted = tenant.delete(f"/v1/webhook_endpoints/{body['id']}")
        assert deleted.json() == {"id": body["id"], "object": "webhook_endpoint", "deleted": True}
        assert tenant.get(f"/v1/webhook_endpoints/{body['id']}").status_code == 404

    def test_secrets_are_sealed_at_rest_and_a_rotated_server_key_still_opens_them(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        ep = _endpoint(tenant, receiver)
        secret = receiver.secrets[0]
        with container.sessions() as s:
            stored = s.get(WebhookEndpoint, ep["id"])
            assert stored is not None
            sealed = stored.secret
        tenant.post("/v1/customers", {"name": "Sealed with another key"})
        container.secret_box = FernetSecretBox("a-new-server-key")

        refused = _run(container)
        received_while_refused = len(receiver.received)
        container.secret_box = FernetSecretBox("a-new-server-key", previous=(container.settings.secret_key,))
        clock.advance(timedelta(minutes=1))
        delivered = _run(container)

        assert sealed.startswith("fernet:") and secret not in sealed and secret[6:] not in sealed
        assert (refused.attempted, refused.failed, received_while_refused) == (1, 1, 0)  # never sent unsigned
        log = tenant.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries").json()["data"]
        assert log[-1]["error"].startswith("secret_unreadable") and log[-1]["response_status"] is None
        assert delivered.succeeded == 1 and len(receiver.received) == 1 and receiver.received[0].verified

    def test_bad_filters_and_urls_are_refused(self, tenant: Tenant) -> None:
        cases = [
            ({"url": "http://127.0.0.1:9/x", "enabled_events": []}, "validation_error"),
            ({"url": "http://127.0.0.1:9/x", "enabled_events": ["Invoice Paid"]}, "invalid_event_filter"),
            ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "validation_error"),
            ({"url": "http://no-such-host.invalid/x", "enabled_events": ["*"]}, "url_not_allowed"),
        ]

        for body, code in cases:
            r = tenant.post("/v1/webhook_endpoints", body)

            assert (r.status_code, r.json()["code"]) == (422, code), (body, r.text)
        assert tenant.get("/v1/webhook_endpoints").json()["data"] == []

    def test_private_addresses_are_refused_unless_allowed(self, tenant: Tenant, container: Container) -> None:
        container.webhook_sender = HttpWebhookSender(allow_private=False)
        urls = [
            "http://127.0.0.1:8080/hooks",
            "http://localhost/hooks",
            "http://10.0.0.7/hooks",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hooks",
            "http://192.168.1.10/hooks",
        ]

        for url in urls:
            r = tenant.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})

            assert (r.status_code, r.json()["code"]) == (422, "url_not_allowed"), (url, r.text)
        public = tenant.post(
            "/v1/webhook_endpoints", {"url": "https://93.184.216.34/h", "enabled_events": ["*"]}
        )
        assert public.status_code == 201, public.text
        assert [e["id"] for e in tenant.get("/v1/webhook_endpoints").json()["data"]] == [public.json()["id"]]

    def test_a_name_that_resolves_to_a_private_address_at_delivery_time_is_not_called(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding DNS server: public, then loopback
        container.webhook_sender = HttpWebhookSender(
            allow_private=False, resolver=lambda host, port: next(answers)
        )
        ep = tenant.post(
            "/v1/webhook_endpoints",
            {"url": f"http://hooks.example.test:{receiver.port}/hooks", "enabled_events": ["*"]},
        )
        assert ep.status_code == 201, ep.text
        tenant.post("/v1/customers", {"name": "Acme"})

        stats = _run(container)

        assert receiver.received == []
        assert (stats.attempted, stats.failed) == (1, 1)
        log = tenant.get(f"/v1/webhook_endpoints/{ep.json()['id']}/deliveries").json()["data"]
        assert log[0]["error"].startswith("url_not_allowed") and log[0]["response_status"] is None


def _self_signed(tmp_path: Path, host: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=DNS:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TestTls:
    def test_https_is_pinned_to_the_checked_address_and_verifies_the_original_host_name(
        self, tenant: Tenant, container: Container, tmp_path: Path
    ) -> None:
        cert, key = _self_signed(tmp_path, "hooks.example.test")
        other_cert, other_key = _self_signed(tmp_path, "elsewhere.example.test")
        served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        served.load_cert_chain(cert, key)
        trusted = ssl.create_default_context(cafile=str(cert))
        trusted.load_verify_locations(cafile=str(other_cert))
        resolved: list[str] = []

        def resolver(host: str, port: int) -> list[str]:
            resolved.append(host)
            return ["127.0.0.1"]

        container.webhook_sender = HttpWebhookSender(
            allow_private=True, resolver=resolver, transport=httpx.HTTPTransport(verify=trusted)
        )
        good = Receiver().start(tls=served)
        wrong = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        wrong.load_cert_chain(other_cert, other_key)
        bad = Receiver().start(tls=wrong)
        try:
            ok = _endpoint(tenant, good, ["customer.created"], host="hooks.example.test")
            mismatch = _endpoint(tenant, bad, ["customer.created"], host="hooks.example.test")
            tenant.post("/v1/customers", {"name": "Acme"})

            _run(container)
        finally:
            good.stop()
            bad.stop()

        [got] = good.received
        assert got.verified and got.headers["host"] == f"hooks.example.test:{good.port}"
        assert bad.received == []  # its certificate names another host: refused before any byte was sent
        log = tenant.get(f"/v1/webhook_endpoints/{mismatch['id']}/deliveries").json()["data"]
        assert log[0]["response_status"] is None and "CERTIFICATE_VERIFY_FAILED" in log[0]["error"]
        ok_log = tenant.get(f"/v1/webhook_endpoints/{ok['id']}/deliveries").json()["data"]
        assert [a["response_status"] for a in ok_log] == [200]
        assert set(resolved) == {"hooks.example.test"}


class TestDelivery:
    def test_matching_events_arrive_signed_with_the_event_as_payload(
        self, tenant: Tenant, other_tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        ep = _endpoint(tenant, receiver, ["customer.*"])
        cus = tenant.post("/v1/customers", {"name": "Acme", "currency": "USD"}).json()
        tenant.post(
            "/v1/invoices", {"customer_id": cus["id"], "items": [{"description": "x", "amount": 100}]}
        )
        other_tenant.post("/v1/customers", {"name": "Not theirs"})

        attempted = deliver_events(container)

        assert attempted == 1
        [got] = receiver.received
        assert got.verified
        event = tenant.get("/v1/events", params={"type": "customer.created"}).json()["data"][0]
        assert got.headers["webhook-id"] == event["id"]
        assert got.payload["type"] == "customer.created" and got.payload["data"] == event["data"]
        assert got.payload["data"]["object"]["id"] == cus["id"]
        assert abs(int(got.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 300
        log = tenant.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries").json()["data"]
        assert [(a["attempt"], a["response_status"], a["succeeded"], a["test"]) for a in log] == [
            (1, 200, True, False)
        ]
        assert log[0]["request_body"] == got.body and log[0]["response_body"] == '{"ok": true}'
        statuses = tenant.get(f"/v1/events/{event['id']}/deliveries").json()["data"]
        assert [(d["subscriber"], d["status"], d["attempts"]) for d in statuses] == [
            (ep["id"], "succeeded", 1)
        ]
        with container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0

    def test_alerts_reach_endpoints_subscribed_to_them_once_per_opening(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        _endpoint(tenant, receiver, ["alert.*"])
        with container.sessions() as s:
            first = raise_alert(
                s,
                org_id=tenant.org_id,
                type="sync_failed",
                message="HubSpot refused the token",
                dedupe_key="k1",
                now=container.clock.now(),
                severity="error",
            )
            again = raise_alert(  # the same open alert: refreshed, not announced twice
                s,
                org_id=tenant.org_id,
                type="sync_failed",
                message="still refused",
                dedupe_key="k1",
                now=container.clock.now(),
                severity="error",
            )
            s.commit()
        tenant.post(f"/v1/alerts/{first.id}/resolve")
        with container.sessions() as s:  # it happens again after being resolved: announced again
            raise_alert(
                s,
                org_id=tenant.org_id,
                type="sync_failed",
                message="refused again",
                dedupe_key="k1",
                now=container.clock.now(),
                severity="error",
            )
            s.commit()

        deliver_events(container)

        assert again.id == first.id
        got = [(r.payload["type"], r.payload["data"]["object"]["id"]) for r in receiver.received]
        assert got == [("alert.raised", first.id), ("alert.resolved", first.id), ("alert.raised", first.id)]
        assert all(r.verified for r in receiver.received)
        assert receiver.received[0].payload["data"]["object"]["message"] == "HubSpot refused the token"
        assert receiver.received[2].payload["data"]["object"]["status"] == "open"

    def test_a_receiver_down_for_an_hour_gets_every_event_afterwards_in_order(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        _endpoint(tenant, receiver)
        receiver.stop()
        histories = dict(_customer_history(tenant, f"Customer {i}", updates=3) for i in range(3))

        for _ in range(12):  # an hour, a worker cycle every five minutes
            _run(container)
            clock.advance(timedelta(minutes=5))
        failed = _deliveries(container)
        receiver.start()
        for _ in range(30):
            _run(container)
            clock.advance(timedelta(minutes=5))

        assert receiver.received == [] or all(r.verified for r in receiver.received)
        assert {d.status for d in failed} == {"pending", "retrying"}
        assert max(d.attempts for d in failed) >= 5  # the heads of line were retried with backoff
        assert sum(d.attempts for d in failed if d.status == "pending") == 0  # the rest waited their turn
        assert _per_object(receiver) == histories
        assert sorted(receiver.ids()) == sorted(e for h in histories.values() for e in h)  # each once
        assert {d.status for d in _deliveries(container)} == {"succeeded"}

    def test_a_receiver_down_while_a_test_clock_renews_gets_every_event_once_in_order(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        plan = make_plan(container, tenant.org_id, "pro", [make_price(container, tenant.org_id, flat=9900)])
        _endpoint(tenant, receiver)
        test_clock = tenant.post("/v1/test_clocks", {"frozen_time": "2031-01-15T09:00:00Z"}).json()
        cus = tenant.post(
            "/v1/customers",
            {"name": "Clocked Co", "currency": "USD", "test_clock_id": test_clock["id"]},
        ).json()
        assert tenant.post(f"/v1/customers/{cus['id']}/payment_methods", {"token": "pm_card_visa"}).is_success
        sub = tenant.post(
            "/v1/subscriptions",
            {"customer_id": cus["id"], "plan_id": plan, "collection_method": "charge_automatically"},
        ).json()
        worker = Worker(container)
        worker.run_once()  # the first invoice is charged and its events delivered
        first = len(receiver.received)
        receiver.stop()

        advanced = tenant.post(
            f"/v1/test_clocks/{test_clock['id']}/advance", {"frozen_time": "2031-02-16T09:00:00Z"}
        )
        for _ in range(12):  # an hour of container-clock time, a worker cycle every five minutes
            worker.run_once()
            clock.advance(timedelta(minutes=5))
        waiting = _deliveries(container)
        receiver.start()
        for _ in range(30):
            worker.run_once()
            clock.advance(timedelta(minutes=5))

        page = tenant.get("/v1/events", params={"limit": 100}).json()
        events = list(reversed(page["data"]))
        expected: dict[str, list[str]] = {}
        for e in events:
            expected.setdefault(_object_of(e), []).append(e["id"])
        invoices = tenant.get("/v1/invoices", params={"subscription_id": sub["id"]}).json()["data"]
        renewal = next(i for i in invoices if i["billing_reason"] == "subscription_cycle")
        renewal_events = [e["type"] for e in events if _object_of(e) == renewal["id"]]

        assert advanced.status_code == 200, advanced.text
        assert first > 0 and not page["has_more"]
        assert renewal["status"] == "paid" and renewal["total"] == 9900
        assert {"invoice.created", "invoice.finalized", "invoice.paid"} <= set(renewal_events)
        assert renewal_events.index("invoice.finalized") < renewal_events.index("invoice.paid")
        assert {d.status for d in waiting} >= {"retrying"}
        assert all(r.verified for r in receiver.received)
        assert sorted(receiver.ids()) == sorted(e["id"] for e in events)  # each exactly once
        assert _per_object(receiver) == expected
        assert {d.status for d in _deliveries(container)} == {"succeeded"}

    def test_server_errors_and_timeouts_are_retried_with_growing_backoff(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        container.webhook_sender = HttpWebhookSender(allow_private=True, read_timeout=0.5)
        answers = {0: (500, "oops"), 1: (503, "busy"), 2: (200, "slow")}
        receiver.respond = lambda n: answers.get(n, (200, "ok"))
        ep = _endpoint(tenant, receiver)
        tenant.post("/v1/customers", {"name": "Acme"})
        start = clock.now()

        _run(container)
        first = _deliveries(container)[0]
        _run(container)  # not due yet: nothing is sent
        clock.advance(first.next_attempt_at - clock.now())
        _run(container)
        second = _deliveries(container)[0]
        receiver.delay = 1.0  # the third answer comes after the sender's read timeout
        clock.advance(second.next_attempt_at - clock.now())
        _run(container)
        third = _deliveries(container)[0]
        receiver.delay = 0
        clock.advance(third.next_attempt_at - clock.now())
        _run(container)

        assert (first.status, first.attempts, first.last_response_status) == ("retrying", 1, 500)
        assert timedelta(seconds=8) <= first.next_attempt_at - start <= timedelta(seconds=12)
        assert (second.attempts, second.last_response_status) == (2, 503)
        assert (
            timedelta(seconds=24) <= second.next_attempt_at - first.next_attempt_at <= timedelta(seconds=36)
        )
        assert third.attempts == 3 and third.last_error is not None and third.last_error.startswith("timeout")
        assert (
            timedelta(seconds=72) <= third.next_attempt_at - second.next_attempt_at <= timedelta(seconds=108)
        )
        assert len(receiver.received) == 4 and len(set(receiver.ids())) == 1
        final = _deliveries(container)[0]
        assert (final.status, final.attempts) == ("succeeded", 4)
        log = tenant.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries").json()["data"]
        assert [(a["attempt"], a["response_status"]) for a in log] == [
            (4, 200),
            (3, None),
            (2, 503),
            (1, 500),
        ]

    def test_a_429_with_retry_after_waits_at_least_that_long(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        receiver.respond = lambda n: (429, "slow down", {"Retry-After": "3600"}) if n == 0 else (200, "ok")
        _endpoint(tenant, receiver)
        tenant.post("/v1/customers", {"name": "Acme"})
        start = clock.now()

        _run(container)
        throttled = _deliveries(container)[0]
        clock.advance(timedelta(minutes=59))
        early = _run(container)
        clock.advance(timedelta(minutes=15))
        later = _run(container)

        assert (throttled.status, throttled.last_response_status) == ("retrying", 429)
        assert throttled.next_attempt_at is not None and throttled.next_attempt_at - start >= timedelta(
            hours=1
        )
        assert (early.attempted, later.succeeded) == (0, 1)
        assert len(receiver.received) == 2

    def test_a_410_disables_the_endpoint_at_once_with_an_alert_and_enabling_resumes(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        receiver.respond = lambda n: (410, "gone") if n == 0 else (200, "ok")
        ep = _endpoint(tenant, receiver)
        _customer_history(tenant, "Acme", updates=2)

        stats = _run(container)
        disabled = tenant.get(f"/v1/webhook_endpoints/{ep['id']}").json()
        alerts = tenant.get("/v1/alerts", params={"type": "webhook_endpoint_disabled"}).json()["data"]
        paused = _deliveries(container)
        tenant.post("/v1/customers", {"name": "While disabled"})
        _run(container)  # fanned out while the endpoint is disabled: not for it
        enabled = tenant.patch(f"/v1/webhook_endpoints/{ep['id']}", {"disabled": False})
        _run(container)

        assert (stats.attempted, stats.disabled) == (1, [ep["id"]])
        assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "gone")
        assert [(a["object_id"], a["severity"], a["status"]) for a in alerts] == [(ep["id"], "error", "open")]
        assert {d.status for d in paused} == {"paused"} and len(paused) == 3
        assert enabled.json()["status"] == "enabled"
        assert len(receiver.received) == 4  # the 410'd one again, then the two behind it
        assert receiver.ids()[0] == receiver.ids()[1]
        assert {d.status for d in _deliveries(container)} == {"succeeded"} and len(
            _deliveries(container)
        ) == 3

    def test_an_endpoint_failing_for_days_is_disabled_and_dead_letters_are_replayed(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        receiver.respond = lambda n: (500, "down")
        ep = _endpoint(tenant, receiver, ["customer.*"])  # not alert.*: its own alerts would queue behind
        cus, _ = _customer_history(tenant, "Acme", updates=0)
        started = clock.now()

        disabled_after = None
        for _ in range(24 * 6):
            _run(container, disable_after=timedelta(days=5))
            if tenant.get(f"/v1/webhook_endpoints/{ep['id']}").json()["status"] == "disabled":
                disabled_after = clock.now() - started
                break
            clock.advance(timedelta(hours=1))
        [dead] = _deliveries(container)
        alert_types = {a["type"] for a in tenant.get("/v1/alerts").json()["data"]}

        # 14 attempts at most (the documented schedule); hourly worker cycles run the short waits late
        assert dead.status == "dead_lettered" and 10 <= dead.attempts <= 14
        assert dead.first_attempt_at is not None and dead.dead_lettered_at is not None
        assert timedelta(days=2) < dead.dead_lettered_at - dead.first_attempt_at <= timedelta(days=3)
        assert disabled_after is None  # nothing was attempted after the dead letter: no proof of failing
        assert alert_types == {"webhook_dead_lettered"}

        tenant.post(f"/v1/customers/{cus}/archive")  # a new event fails too, now past five days of failure
        _run(container, disable_after=timedelta(days=5))
        endpoint = tenant.get(f"/v1/webhook_endpoints/{ep['id']}").json()
        assert (endpoint["status"], endpoint["disabled_reason"]) == ("disabled", "failing")
        assert {a["type"] for a in tenant.get("/v1/alerts").json()["data"]} == {
            "webhook_dead_lettered",
            "webhook_endpoint_disabled",
        }

        receiver.respond = lambda n: (200, "ok")
        tenant.patch(f"/v1/webhook_endpoints/{ep['id']}", {"disabled": False})
        replayed = tenant.post(f"/v1/events/{dead.event_id}/replay", {"endpoint_id": ep["id"]})
        _run(container)
        assert replayed.json()["deliveries_scheduled"] == 1
        assert {d.status for d in _deliveries(container)} == {"succeeded"}
        assert receiver.ids()[-2:] == [dead.event_id, _deliveries(container)[1].event_id]

    def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver
    ) -> None:
        ep = _endpoint(tenant, receiver)
        old = receiver.secrets.pop()
        rotated = tenant.post(f"/v1/webhook_endpoints/{ep['id']}/rotate_secret", {"expires_in_hours": 2})
        new = rotated.json()["secret"]
        tenant.post("/v1/customers", {"name": "During overlap"})
        _run(container)
        clock.advance(timedelta(hours=2, seconds=1))
        tenant.post("/v1/customers", {"name": "After overlap"})
        _run(container)

        during, after = receiver.received
        assert new != old and new.startswith("whsec_")
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            Webhook(secret).verify(during.body, during.headers)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(after.body, after.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(after.body, after.headers)

    def test_a_test_send_reaches_the_endpoint_and_is_logged(self, tenant: Tenant, receiver: Receiver) -> None:
        ep = _endpoint(tenant, receiver, ["invoice.paid"])

        r = tenant.post(f"/v1/webhook_endpoints/{ep['id']}/test")

        assert r.status_code == 200, r.text
        assert (r.json()["test"], r.json()["response_status"], r.json()["succeeded"]) == (True, 200, True)
        [got] = receiver.received
        assert got.verified and got.payload["type"] == "webhook_endpoint.test"
        log = tenant.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries").json()["data"]
        assert [a["id"] for a in log] == [r.json()["id"]]

    def test_a_crash_after_sending_redelivers_with_the_same_webhook_id(
        self, tenant: Tenant, container: Container, clock: FrozenClock, receiver: Receiver, db_url: str
    ) -> None:
        _endpoint(tenant, receiver)
        tenant.post("/v1/customers", {"name": "Acme"})
        env = {
            **os.environ,
            "REVFLOW_DATABASE_URL": db_url,
            "REVFLOW_LOG_LEVEL": "WARNING",
            "REVFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
            "REVFLOW_FAILPOINT": "outbox.after_send:1",
        }

        crash = subprocess.run(
            [sys.executable, "-m", "revflow.cli.main", "events", "deliver"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        leased = _deliveries(container)
        before_lease_ends = _run(container)
        clock.advance(timedelta(minutes=10))
        after = _run(container)

        assert crash.returncode == 97, crash.stderr
        assert [(d.status, d.attempts) for d in leased] == [("pending", 0)] and leased[
            0
        ].locked_until is not None
        assert before_lease_ends.attempted == 0
        assert after.succeeded == 1
        assert len(receiver.received) == 2 and len(set(receiver.ids())) == 1
        assert all(r.verified for r in receiver.received)
        assert [(d.status, d.attempts) for d in _deliveries(container)] == [("succeeded", 1)]

    def test_one_worker_on_either_backend_delivers_each_object_in_order(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        _endpoint(tenant, receiver)
        histories = dict(_customer_history(tenant, f"C{i}", updates=4) for i in range(5))

        stats = _run(container, batch_size=4)

        assert stats.attempted == stats.succeeded == 25
        assert _per_object(receiver) == histories

    @pytest.mark.postgres_only
    def test_several_workers_share_the_work_without_duplicates_and_keep_order(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        _endpoint(tenant, receiver)
        histories = dict(_customer_history(tenant, f"C{i}", updates=5) for i in range(16))
        with container.sessions() as s:  # the deliveries exist before the workers start, so all find work
            outbox.fan_out(s, now=container.clock.now())
            s.commit()
        results: list[outbox.DeliveryStats] = []
        start = threading.Barrier(4)

        def work() -> None:
            start.wait()
            results.append(_run(container, batch_size=3))

        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

        assert sum(r.attempted for r in results) == 96 == len(receiver.received)
        assert len(set(receiver.ids())) == 96  # no event twice
        assert sum(1 for r in results if r.attempted > 0) >= 2  # the work was shared
        assert _per_object(receiver) == histories
        assert {d.status for d in _deliveries(container)} == {"succeeded"}


class TestReplay:
    def test_a_time_range_is_replayed_through_the_api_and_the_cli(
        self,
        tenant: Tenant,
        container: Container,
        clock: FrozenClock,
        receiver: Receiver,
        db_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        ep = _endpoint(tenant, receiver, ["customer.*"])
        t0 = clock.now()
        _, early_events = _customer_history(tenant, "Early", updates=1)
        clock.advance(timedelta(hours=1))
        _customer_history(tenant, "Late", updates=0)
        _run(container)
        body = {"created_gte": t0.isoformat(), "created_lt": (t0 + timedelta(minutes=30)).isoformat()}

        api = tenant.post("/v1/events/replay", body)
        _run(container)
        bad = tenant.post("/v1/events/replay", {**body, "created_lt": t0.isoformat()})

        assert api.json()["deliveries_scheduled"] == 2
        early = [e for e in receiver.ids()[:3] if e in early_events]
        assert early == early_events and receiver.ids()[3:] == early_events  # replayed, in order
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_range")

        from typer.testing import CliRunner

        from revflow.cli.main import app
        from revflow.config import get_settings

        monkeypatch.setenv("REVFLOW_DATABASE_URL", db_url)
        monkeypatch.setenv("REVFLOW_LOG_LEVEL", "WARNING")
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(
                app,
                [
                    "events",
                    "replay",
                    "--from",
                    t0.isoformat(),
                    "--to",
                    (t0 + timedelta(hours=2)).isoformat(),
                    "--endpoint",
                    ep["id"],
                ],
            )
        finally:
            get_settings.cache_clear()
        _run(container)

        assert result.exit_code == 0, result.output
        assert "3 deliveries scheduled" in result.stdout
        assert len(receiver.received) == 8 and all(r.verified for r in receiver.received)


class TestMetrics:
    def test_metrics_show_deliveries_backlog_and_open_alerts(
        self, tenant: Tenant, container: Container, client: TestClient, receiver: Receiver
    ) -> None:
        receiver.respond = lambda n: (410, "gone")
        _endpoint(tenant, receiver)
        _customer_history(tenant, "Acme", updates=1)
        _run(container)
        tenant.post("/v1/customers", {"name": "Queued"})

        text_ = client.get("/metrics").text

        assert 'revflow_event_deliveries{status="paused"} 2.0' in text_
        assert "revflow_outbox_backlog 1.0" in text_
        assert 'revflow_alerts_open{type="webhook_endpoint_disabled"} 1.0' in text_
        assert "revflow_dead_lettered_deliveries 0.0" in text_
        assert 'revflow_webhook_attempts_total{outcome="gone"}' in text_
        assert "revflow_webhook_delivery_latency_seconds_bucket" in text_
        assert "# TYPE revflow_billing_runs_total counter" in text_
        assert "# TYPE revflow_payment_errors_total counter" in text_
        with container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Alert)) == 1
            assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == 1

    def test_readiness_and_metrics_answer_503_when_the_database_is_gone(self, tmp_path: Any) -> None:
        broken = build(Settings(database_url=f"sqlite:///{tmp_path}/missing/dir/x.db"), auto_migrate=False)
        try:
            with TestClient(create_app(broken), raise_server_exceptions=False) as http:
                ready, metrics = http.get("/readyz"), http.get("/metrics")
        finally:
            broken.close()

        assert (ready.status_code, ready.json()["code"]) == (503, "database_unavailable")
        assert (metrics.status_code, metrics.json()["code"]) == (503, "database_unavailable")

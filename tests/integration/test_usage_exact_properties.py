"""Usage-event properties come back in API answers, domain events and webhook bodies exactly as sent
(ADR 0041): the raw JSON text of each number, not what a binary double would round it to."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from standardwebhooks import Webhook

from revflow.bootstrap import Container
from revflow.services import outbox
from revflow.storage.types import decode_json
from tests.conftest import Tenant, container_for
from tests.integration.usage_helpers import customer, metric
from tests.integration.webhook_receiver import Receiver

#: 20 significant digits, 10^-6, 2^53 + 1 (not a double), and a nested object with a trailing zero.
_PROPERTIES = (
    '{"big": 1234567890.1234567890, "tiny": 0.000001, "huge": 9007199254740993, '
    '"nested": {"rate": [1.10, 2], "deep": {"x": -0.5}}}'
)
_NUMBERS = (
    '"big":1234567890.1234567890',
    '"tiny":0.000001',
    '"huge":9007199254740993',
    '"rate":[1.10,2]',
    '"x":-0.5',
)
_EXPECTED = {
    "big": Decimal("1234567890.1234567890"),
    "tiny": Decimal("0.000001"),
    "huge": 9007199254740993,
    "nested": {"rate": [Decimal("1.10"), 2], "deep": {"x": Decimal("-0.5")}},
}


@pytest.fixture
def container(db_url: str) -> Iterator[Container]:
    """The default container, allowed to deliver webhooks to a receiver on 127.0.0.1."""
    yield from container_for(db_url, webhook_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _post_batch(tenant: Tenant, *, cus: str, metric_code: str, properties: str) -> str:
    """One event whose properties are the JSON text ``properties``, sent as it is; returns its id."""
    event = (
        f'{{"transaction_id": "exact", "customer_id": "{cus}", "metric_code": "{metric_code}", '
        f'"timestamp": "2024-06-01T10:00:00Z", "properties": {properties}}}'
    )
    body = f'{{"events": [{event}]}}'.encode()
    r = tenant.post("/v1/usage_events/batch", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    return str(r.json()["data"][0]["id"])


class TestExactProperties:
    def test_the_listing_shows_each_number_as_sent(self, tenant: Tenant) -> None:
        metric(tenant, "calls")
        _post_batch(tenant, cus=customer(tenant), metric_code="calls", properties=_PROPERTIES)

        r = tenant.get("/v1/usage_events")

        assert r.status_code == 200, r.text
        for number in _NUMBERS:
            assert number in r.text, r.text
        [event] = decode_json(r.content)["data"]
        assert event["properties"] == _EXPECTED

    def test_the_void_answer_shows_each_number_as_sent(self, tenant: Tenant) -> None:
        metric(tenant, "calls")
        event_id = _post_batch(tenant, cus=customer(tenant), metric_code="calls", properties=_PROPERTIES)

        r = tenant.post(f"/v1/usage_events/{event_id}/void")

        assert r.status_code == 200, r.text
        for number in _NUMBERS:
            assert number in r.text, r.text
        answer = decode_json(r.content)
        assert (answer["status"], answer["properties"]) == ("voided", _EXPECTED)

    def test_the_rest_of_an_event_keeps_its_shape(self, tenant: Tenant) -> None:
        metric(tenant, "gb", "sum", property="gb")
        cus = customer(tenant)
        _post_batch(tenant, cus=cus, metric_code="gb", properties='{"gb": 2.5, "region": "eu"}')

        r = tenant.get("/v1/usage_events")

        [event] = r.json()["data"]
        assert r.json()["object"] == "list" and r.json()["has_more"] is False
        assert r.json()["url"] == "/v1/usage_events"
        assert event["value"] == "2.5"  # the metric's value stays a decimal string, as before
        assert event["timestamp"] == "2024-06-01T10:00:00Z"
        assert (event["customer_id"], event["status"], event["late"]) == (cus, "billable", None)
        assert '"gb":2.5' in r.text and '"region":"eu"' in r.text


def _void_event(tenant: Tenant) -> str:
    """An event with :data:`_PROPERTIES`, voided; returns the id of its ``usage_event.voided`` event."""
    metric(tenant, "calls")
    event_id = _post_batch(tenant, cus=customer(tenant), metric_code="calls", properties=_PROPERTIES)
    assert tenant.post(f"/v1/usage_events/{event_id}/void").status_code == 200
    [voided] = tenant.get("/v1/events", params={"type": "usage_event.voided"}).json()["data"]
    assert voided["object_id"] == event_id
    return str(voided["id"])


def _deliver(container: Container) -> outbox.DeliveryStats:
    """What the outbox worker does: fan out the queued events and deliver them."""
    return outbox.deliver_due(
        container.sessions, sender=container.webhook_sender, box=container.secret_box, clock=container.clock
    )


class TestExactDomainEvents:
    def test_the_events_listing_shows_a_voided_events_properties_as_sent(self, tenant: Tenant) -> None:
        voided_id = _void_event(tenant)

        r = tenant.get("/v1/events", params={"type": "usage_event.voided"})

        assert r.status_code == 200, r.text
        for number in _NUMBERS:
            assert number in r.text, r.text
        [event] = decode_json(r.content)["data"]
        assert (event["id"], event["object"], event["type"]) == (voided_id, "event", "usage_event.voided")
        assert event["data"]["object"]["properties"] == _EXPECTED
        assert event["data"]["object"]["status"] == "voided"
        assert r.json()["url"] == "/v1/events" and r.json()["has_more"] is False

    def test_a_retrieved_event_shows_its_properties_as_sent(self, tenant: Tenant) -> None:
        voided_id = _void_event(tenant)

        r = tenant.get(f"/v1/events/{voided_id}")

        assert r.status_code == 200, r.text
        for number in _NUMBERS:
            assert number in r.text, r.text
        assert decode_json(r.content)["data"]["object"]["properties"] == _EXPECTED
        assert tenant.get("/v1/events/evt_missing").status_code == 404

    def test_the_webhook_body_carries_each_number_as_sent_and_its_signature_verifies(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        r = tenant.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["usage_event.*"]})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        receiver.secrets.append(secret)
        voided_id = _void_event(tenant)

        stats = _deliver(container)

        assert stats.succeeded == 1
        [received] = receiver.received
        assert received.headers["webhook-id"] == voided_id and received.verified
        for number in _NUMBERS:
            assert number in received.body, received.body
        payload = decode_json(received.body)
        assert payload["data"]["object"]["properties"] == _EXPECTED
        assert Webhook(secret).verify(received.body, received.headers)["id"] == voided_id

    def test_a_replay_sends_the_same_bytes(
        self, tenant: Tenant, container: Container, receiver: Receiver
    ) -> None:
        r = tenant.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["usage_event.*"]})
        receiver.secrets.append(r.json()["secret"])
        voided_id = _void_event(tenant)
        _deliver(container)

        replayed = tenant.post(f"/v1/events/{voided_id}/replay")
        _deliver(container)

        assert replayed.json()["deliveries_scheduled"] == 1, replayed.text

        first, again = receiver.received
        assert first.body == again.body and first.verified and again.verified
        assert '"big":1234567890.1234567890' in again.body

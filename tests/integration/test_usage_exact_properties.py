"""Usage-event properties come back in API answers exactly as sent (ADR 0041): the raw JSON text of each
number, not what a binary double would round it to."""

from __future__ import annotations

from decimal import Decimal

from revflow.storage.types import decode_json
from tests.conftest import Tenant
from tests.integration.usage_helpers import customer, metric

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

    def test_an_unmatched_decimal_is_still_listed_exactly_once_its_metric_reads_it(
        self, tenant: Tenant
    ) -> None:
        cus = customer(tenant)
        body = (
            f'{{"transaction_id": "late", "customer_id": "{cus}", "metric_code": "gb", '
            '"timestamp": "2024-06-01T10:00:00Z", "properties": {"gb": 98765432109.876543}}'
        )
        tenant.post("/v1/usage_events", content=body.encode(), headers={"Content-Type": "application/json"})

        metric(tenant, "gb", "sum", property="gb")
        r = tenant.get("/v1/usage_events")

        [event] = r.json()["data"]
        assert event["status"] == "billable" and event["value"] == "98765432109.876543"
        assert '"gb":98765432109.876543' in r.text

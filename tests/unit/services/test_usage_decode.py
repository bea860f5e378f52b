"""The typed fast path of usage bodies: which bodies it takes, and that it leaves every other to the
generic path (which finds each event's reason)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from revflow.services.usage_ingest import MAX_BATCH, decode_batch, decode_event

_GOOD = {
    "transaction_id": "t1",
    "metric_code": "gb",
    "customer_id": "cus_1",
    "timestamp": "2024-06-01T10:00:00Z",
    "properties": {"gb": 1},
}


class TestDecodeBatch:
    def test_a_well_formed_batch_decodes_with_exact_numbers(self) -> None:
        body = (
            b'{"events": [{"transaction_id": "t1", "metric_code": "gb", "customer_id": "c", '
            b'"properties": {"gb": 0.1}}]}'
        )

        [event] = decode_batch(body) or []

        assert event.transaction_id == "t1" and event.properties == {"gb": Decimal("0.1")}
        assert event.timestamp is None and event.external_customer_id is None

    @pytest.mark.parametrize(
        "event",
        [
            {**_GOOD, "colour": "red"},  # unknown field
            {**_GOOD, "transaction_id": ""},  # empty
            {**_GOOD, "transaction_id": "x" * 256},  # too long
            {**_GOOD, "customer_id": 42},  # not a string
            {**_GOOD, "timestamp": 1717243200},  # epoch seconds: the generic path reads them
            {**_GOOD, "properties": [1, 2]},  # not an object
            {**_GOOD, "properties": {f"p{i}": i for i in range(101)}},  # too many properties
            "not an event",
        ],
    )
    def test_a_batch_with_any_misfit_is_left_to_the_generic_path(self, event: object) -> None:
        body = orjson.dumps({"events": [_GOOD, event]})

        assert decode_batch(body) is None

    @pytest.mark.parametrize(
        "body",
        [
            b'{"events": []}',
            orjson.dumps({"events": [_GOOD] * (MAX_BATCH + 1)}),
            orjson.dumps({"events": [_GOOD], "extra": 1}),
            b"not json",
        ],
    )
    def test_a_misshapen_body_is_left_to_the_generic_path(self, body: bytes) -> None:
        assert decode_batch(body) is None


class TestDecodeEvent:
    def test_one_event_decodes_and_a_misfit_does_not(self) -> None:
        assert decode_event(orjson.dumps(_GOOD)) is not None
        assert decode_event(orjson.dumps({**_GOOD, "metric_code": None})) is None

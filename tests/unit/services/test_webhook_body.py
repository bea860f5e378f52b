"""The webhook body of an event: its exact numbers, and the same bytes as before for everything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from revflow.services.webhooks import event_body, new_secret, sign
from revflow.storage.models import Event
from revflow.storage.types import decode_json

_AT = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def _event(data: dict[str, Any]) -> Event:
    return Event(
        id="evt_1",
        org_id="org_1",
        type="usage_event.voided",
        object_type="usage_event",
        object_id="ue_1",
        data=data,
        created_at=_AT,
    )


def _json_dumps_body(event: Event) -> str:
    """The body as ``json.dumps`` wrote it before Decimals could reach it."""
    return json.dumps(
        {
            "id": event.id,
            "object": "event",
            "type": event.type,
            "timestamp": "2024-06-01T10:00:00Z",
            "object_type": event.object_type,
            "object_id": event.object_id,
            "data": event.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


#: Any text a JSON column can hold (no lone surrogates), every integer orjson writes, and nesting.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


class TestEventBody:
    def test_a_decimal_is_written_as_the_exact_number_it_is(self) -> None:
        event = _event({"object": {"properties": {"big": Decimal("1234567890.1234567890"), "n": 3}}})

        body = event_body(event)

        assert '"properties":{"big":1234567890.1234567890,"n":3}' in body
        assert decode_json(body)["data"]["object"]["properties"]["big"] == Decimal("1234567890.1234567890")

    def test_keys_are_sorted_and_non_ascii_text_is_escaped(self) -> None:
        event = _event({"object": {"name": "Müller \U0001f600", "amount": "12.50", "z": None, "a": [1]}})

        body = event_body(event)

        assert body == (
            '{"data":{"object":{"a":[1],"amount":"12.50","name":"M\\u00fcller \\ud83d\\ude00","z":null}},'
            '"id":"evt_1","object":"event","object_id":"ue_1","object_type":"usage_event",'
            '"timestamp":"2024-06-01T10:00:00Z","type":"usage_event.voided"}'
        )

    @given(data=st.dictionaries(_TEXT, _JSON, max_size=6))
    def test_without_decimals_the_body_is_what_json_dumps_wrote(self, data: dict[str, Any]) -> None:
        event = _event(data)

        assert event_body(event) == _json_dumps_body(event)

    def test_the_same_event_gives_the_same_bytes_and_its_signature_verifies(self) -> None:
        secret = new_secret()
        event = _event({"object": {"properties": {"gb": Decimal("0.000001"), "é": Decimal("-1E+3")}}})

        first, again = event_body(event), event_body(_event(decode_json(event_body(event))["data"]))
        headers = sign([secret], msg_id=event.id, body=first, at=datetime.now(UTC))

        assert first == again
        assert '"gb":0.000001' in first and '"\\u00e9":-1E+3' in first
        assert Webhook(secret).verify(first, headers)["id"] == "evt_1"

"""Inbound HubSpot webhooks: verify the v3 signature first, then parse the batch of events.

HubSpot signs each request with ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(app client secret,
method + URI + body + timestamp)) and ``X-HubSpot-Request-Timestamp`` (Unix milliseconds); requests older than
5 minutes are refused. https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from hubspot.utils.signature import Signature

from revflow.adapters.crm.hubspot.consts import (
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_TOLERANCE_SECONDS,
)
from revflow.adapters.crm.hubspot.mapping import revflow_property_name
from revflow.services.ports import CrmChange, WebhookSignatureError

__all__ = ["normalise_uri", "parse_webhook", "verify_signature"]

#: HubSpot signs the URI with these characters decoded (its "validating requests" guide lists them).
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
    "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip

_OBJECTS: dict[str, tuple[Literal["company", "deal"], str]] = {
    "company": ("company", "companies"),
    "deal": ("deal", "deals"),
}
_CHANGES: dict[str, Literal["created", "updated", "deleted"]] = {
    "creation": "created",
    "propertyChange": "updated",
    "restore": "updated",
    "merge": "updated",
    "associationChange": "updated",
    "deletion": "deleted",
    "privacyDeletion": "deleted",
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def normalise_uri(url: str) -> str:
    for encoded, char in _DECODED.items():
        url = url.replace(encoded, char).replace(encoded.lower(), char)
    return url


def verify_signature(
    payload: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    url: str,
    secret: str | None,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    now: Callable[[], float] = time.time,
) -> None:
    """Raise WebhookSignatureError unless ``payload`` carries a valid v3 signature made within ``tolerance``
    seconds (either way) of ``now()``. ``url`` is the full URL HubSpot posted to (scheme, host, path,
    query)."""
    if not secret:
        raise WebhookSignatureError("no HubSpot client secret is configured")
    signature = _header(headers, SIGNATURE_V3_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookSignatureError(f"missing {SIGNATURE_V3_HEADER} or {TIMESTAMP_HEADER} header")
    try:
        sent_ms = int(timestamp)
    except ValueError as exc:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not a number: {timestamp!r}") from exc
    if abs(now() * 1000 - sent_ms) > tolerance * 1000:
        raise WebhookSignatureError(f"webhook timestamp is more than {tolerance} seconds from now")
    try:
        body = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookSignatureError(
            "webhook body is not UTF-8 text, so it cannot carry a valid signature"
        ) from exc
    expected = Signature.get_signature(
        secret, body, "v3", http_uri=normalise_uri(url), http_method=method.upper(), timestamp=timestamp
    )
    if not hmac.compare_digest(expected, signature):
        raise WebhookSignatureError("webhook signature does not match")


def _change(event: Any) -> CrmChange | None:
    if not isinstance(event, dict):
        raise ValueError("a HubSpot webhook event is a JSON object")
    try:
        noun, _, verb = str(event["subscriptionType"]).partition(".")
        event_id = f"{event['portalId']}-{event['objectId']}-{event['eventId']}-{event['occurredAt']}"
        object_id = str(event["objectId"])
        occurred = datetime.fromtimestamp(int(event["occurredAt"]) / 1000, tz=UTC)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"HubSpot webhook event lacks a valid {exc}") from exc
    if noun not in _OBJECTS or verb not in _CHANGES:
        return None  # a subscription Revflow does not use (contacts, tickets, ...): acknowledged, ignored
    object_type, plural = _OBJECTS[noun]
    name = event.get("propertyName")
    value = event.get("propertyValue")
    return CrmChange(
        event_id=event_id,
        object_type=object_type,
        external_id=object_id,
        change=_CHANGES[verb],
        occurred_at=occurred,
        property_name=revflow_property_name(plural, str(name)) if name else None,
        property_value=None if value is None else str(value),
    )


def parse_webhook(
    payload: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    url: str,
    secret: str | None,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    now: Callable[[], float] = time.time,
) -> list[CrmChange]:
    """Verify (WebhookSignatureError), then parse HubSpot's array of events, in the order sent, into
    ``CrmChange``s (ValueError for a malformed body). ``event_id`` is
    ``"{portalId}-{objectId}-{eventId}-{occurredAt}"``: HubSpot does not promise ``eventId`` alone is unique,
    and retries (``attemptNumber`` > 0) repeat all four, so it is the dedupe key. Events of other object
    types are skipped."""
    verify_signature(payload, headers, method=method, url=url, secret=secret, tolerance=tolerance, now=now)
    events = json.loads(payload)  # json.JSONDecodeError is a ValueError
    if not isinstance(events, list):
        raise ValueError("a HubSpot webhook body is a JSON array of events")
    return [c for c in (_change(e) for e in events) if c is not None]

"""Webhook endpoints: create, change, rotate secrets, disable and enable, sign, test-send.

Signing follows the Standard Webhooks specification with the ``standardwebhooks`` package: the message
id is the event id, the timestamp is the wall-clock second of the attempt (receivers check it against
their own clock, so a test clock never moves it), and the signature covers ``id.timestamp.body``. During a
rotation's overlap the body is signed with the new and the previous secret, space-separated.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from standardwebhooks import Webhook

from revflow.domain.delivery import EVENT_PATTERN
from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.services.alerts import raise_alert
from revflow.services.context import Ctx
from revflow.services.ports import SecretBox, UrlNotAllowed, WebhookRequest, WebhookSender
from revflow.services.recorder import diff, record
from revflow.storage.hub_models import WebhookAttempt, WebhookEndpoint
from revflow.storage.models import Event, EventDelivery
from revflow.storage.types import exact_json

__all__ = [
    "UrlNotAllowedError",
    "create_endpoint",
    "delete_endpoint",
    "disable_endpoint",
    "enable_endpoint",
    "event_body",
    "new_secret",
    "record_attempt",
    "rotate_secret",
    "send_test",
    "sign",
    "signing_secrets",
    "update_endpoint",
]

UNFINISHED = ("pending", "retrying")


class UrlNotAllowedError(InvalidInput):
    """The endpoint URL may not be called (422 ``url_not_allowed``)."""

    code = "url_not_allowed"


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64, as Standard Webhooks serializes it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_url(sender: WebhookSender, url: str) -> None:
    try:
        sender.check_url(url)
    except UrlNotAllowed as exc:
        raise UrlNotAllowedError(
            f"The URL '{url}' is not allowed: {exc}.", details=[{"field": "url", "code": "url_not_allowed"}]
        ) from exc


def _check_events(events: list[str]) -> list[str]:
    bad = [e for e in events if not EVENT_PATTERN.match(e)]
    if bad or not events:
        raise InvalidInput(
            "enabled_events must list event types or patterns such as 'invoice.*' or '*' "
            f"(got {bad or events})",
            code="invalid_event_filter",
            details=[{"field": "enabled_events", "code": "invalid_event_filter"}],
        )
    return list(dict.fromkeys(events))


def create_endpoint(
    ctx: Ctx,
    *,
    sender: WebhookSender,
    box: SecretBox,
    url: str,
    enabled_events: list[str],
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an enabled endpoint; returns it and its secret (shown to the caller this once; stored sealed
    by ``box``).

    Raises UrlNotAllowedError (422 ``url_not_allowed``) and InvalidInput (``invalid_event_filter``).
    """
    events = _check_events(enabled_events)
    _check_url(sender, url)
    now = ctx.now()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        org_id=ctx.org_id,
        url=url,
        description=description,
        enabled_events=events,
        status="enabled",
        secret=box.seal(secret),
        metadata_=metadata or {},
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    record(
        ctx,
        action="webhook_endpoint.create",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        changes={"url": url, "enabled_events": events},
    )
    return endpoint, secret


def update_endpoint(
    ctx: Ctx, endpoint_id: str, *, sender: WebhookSender, changes: dict[str, Any]
) -> WebhookEndpoint:
    """Change url, description, enabled_events, metadata and/or ``disabled``; returns the endpoint.

    Enabling a disabled endpoint resumes its paused deliveries. Raises NotFound, UrlNotAllowedError and
    InvalidInput.
    """
    endpoint = ctx.get(WebhookEndpoint, endpoint_id, for_update=True, label="webhook_endpoint")
    before = _audit_fields(endpoint)
    if "url" in changes and changes["url"] != endpoint.url:
        _check_url(sender, changes["url"])
        endpoint.url = changes["url"]
    if "enabled_events" in changes:
        endpoint.enabled_events = _check_events(changes["enabled_events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "metadata" in changes:
        endpoint.metadata_ = changes["metadata"] or {}
    if changes.get("disabled") is True and endpoint.status == "enabled":
        disable_endpoint(ctx, endpoint, reason="manual")
    elif changes.get("disabled") is False and endpoint.status == "disabled":
        enable_endpoint(ctx, endpoint)
    endpoint.updated_at = ctx.now()
    ctx.session.flush()
    record(
        ctx,
        action="webhook_endpoint.update",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        changes=diff(before, _audit_fields(endpoint)),
    )
    return endpoint


def _audit_fields(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": e.url,
        "description": e.description,
        "enabled_events": list(e.enabled_events),
        "status": e.status,
        "metadata": dict(e.metadata_),
    }


def delete_endpoint(ctx: Ctx, endpoint_id: str) -> str:
    """Delete the endpoint and its attempt log; its unfinished deliveries are canceled. Returns its id."""
    endpoint = ctx.get(WebhookEndpoint, endpoint_id, for_update=True, label="webhook_endpoint")
    ctx.session.execute(
        update(EventDelivery)
        .where(
            EventDelivery.subscriber == endpoint.id,
            EventDelivery.status.in_((*UNFINISHED, "paused")),
        )
        .values(status="canceled", locked_until=None)
    )
    ctx.session.query(WebhookAttempt).filter_by(endpoint_id=endpoint.id).delete()
    ctx.session.delete(endpoint)
    ctx.session.flush()
    record(
        ctx,
        action="webhook_endpoint.delete",
        object_type="webhook_endpoint",
        object_id=endpoint_id,
        changes={"url": endpoint.url},
    )
    return endpoint_id


def rotate_secret(
    ctx: Ctx, endpoint_id: str, *, overlap: timedelta, box: SecretBox
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the current one keeps signing (second signature) for ``overlap``.
    Returns the endpoint and the new secret (shown this once). Raises NotFound, InvalidInput."""
    if overlap < timedelta(0) or overlap > timedelta(days=7):
        raise InvalidInput(
            "expires_in_hours must be between 0 and 168",
            details=[{"field": "expires_in_hours", "code": "out_of_range"}],
        )
    endpoint = ctx.get(WebhookEndpoint, endpoint_id, for_update=True, label="webhook_endpoint")
    now = ctx.now()
    secret = new_secret()
    if overlap > timedelta(0):
        endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, now + overlap
    else:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = None, None
    endpoint.secret = box.seal(secret)
    endpoint.updated_at = now
    ctx.session.flush()
    record(
        ctx,
        action="webhook_endpoint.rotate_secret",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        changes={"previous_secret_expires_at": str(endpoint.previous_secret_expires_at)},
    )
    return endpoint, secret


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime, box: SecretBox) -> list[str]:
    """The secrets that sign at ``now``: the current one, and the previous one during the overlap, opened
    by ``box``. Raises SecretUnreadable (sealed with another key)."""
    found = [box.open(endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        found.append(box.open(endpoint.previous_secret))
    return found


def sign(secrets_: list[str], *, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: ``webhook-id``, ``webhook-timestamp`` (``at``, whole
    seconds) and ``webhook-signature`` (one ``v1,…`` per secret, space-separated)."""
    at = at.astimezone(UTC).replace(microsecond=0)
    signatures = " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets_)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def event_body(event: Event) -> str:
    """The JSON sent for ``event``: id, type, timestamp (when it happened) and data, as the API shows it.

    Compact, keys sorted, every character outside printable ASCII escaped (``\\u00fc``), as ``json.dumps``
    wrote it before; a Decimal in ``data`` (a usage event's property) is written as the exact number it is.
    The same event always gives the same text, so a retry or a replay sends the same body.
    """
    doc = exact_json(
        {
            "id": event.id,
            "object": "event",
            "type": event.type,
            "timestamp": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "object_type": event.object_type,
            "object_id": event.object_id,
            "data": event.data,
        },
        sort_keys=True,
    )
    return _NOT_PRINTABLE_ASCII.sub(_escape, doc.decode())


#: Left unescaped by orjson (which escapes only ``"``, ``\`` and control characters), escaped by
#: ``json.dumps``: DEL and every non-ASCII character. Outside strings, compact JSON has none of them.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def _escape(match: re.Match[str]) -> str:
    """``\\u`` and four hex digits (two for a character beyond the BMP), as ``json.dumps`` escapes it."""
    return json.dumps(match.group())[1:-1]


def record_attempt(
    ctx: Ctx,
    *,
    endpoint: WebhookEndpoint,
    delivery_id: int | None,
    event_id: str,
    event_type: str,
    attempt: int,
    body: str,
    response: Any,
) -> WebhookAttempt:
    """Append one row to the endpoint's delivery log."""
    row = WebhookAttempt(
        id=new_id("wha"),
        org_id=endpoint.org_id,
        endpoint_id=endpoint.id,
        delivery_id=delivery_id,
        event_id=event_id,
        event_type=event_type,
        attempt=attempt,
        request_body=body,
        response_status=response.status,
        response_body=response.body,
        latency_ms=response.latency_ms,
        error=response.error,
        succeeded=response.ok,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    return row


def send_test(
    ctx: Ctx, endpoint_id: str, *, sender: WebhookSender, box: SecretBox, wall_clock: datetime
) -> WebhookAttempt:
    """Send a signed ``webhook_endpoint.test`` event to the endpoint now (disabled endpoints too) and log
    the attempt; returns it. The event is not stored and goes to no other endpoint. Raises NotFound."""
    endpoint = ctx.get(WebhookEndpoint, endpoint_id, label="webhook_endpoint")
    now = ctx.now()
    event = Event(
        id=new_id("evt"),
        org_id=ctx.org_id,
        type="webhook_endpoint.test",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        data={"object": {"id": endpoint.id, "object": "webhook_endpoint", "url": endpoint.url}},
        created_at=now,
    )
    body = event_body(event)
    headers = sign(signing_secrets(endpoint, now=now, box=box), msg_id=event.id, body=body, at=wall_clock)
    response = sender.send(WebhookRequest(url=endpoint.url, body=body, headers=headers))
    attempt = record_attempt(
        ctx,
        endpoint=endpoint,
        delivery_id=None,
        event_id=event.id,
        event_type=event.type,
        attempt=1,
        body=body,
        response=response,
    )
    ctx.session.flush()
    return attempt


def disable_endpoint(ctx: Ctx, endpoint: WebhookEndpoint, *, reason: str, message: str | None = None) -> None:
    """Disable ``endpoint`` (``gone``, ``failing`` or ``manual``) and pause its unfinished deliveries;
    the worker's reasons also raise a ``webhook_endpoint_disabled`` alert."""
    now = ctx.now()
    endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = "disabled", reason, now
    endpoint.updated_at = now
    ctx.session.execute(
        update(EventDelivery)
        .where(EventDelivery.subscriber == endpoint.id, EventDelivery.status.in_(UNFINISHED))
        .values(status="paused", locked_until=None)
    )
    if reason != "manual":
        raise_alert(
            ctx.session,
            org_id=endpoint.org_id,
            type="webhook_endpoint_disabled",
            message=message or f"Webhook endpoint {endpoint.url} was disabled ({reason}).",
            dedupe_key=f"webhook_endpoint_disabled:{endpoint.id}",
            now=now,
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            details={"reason": reason, "url": endpoint.url},
            severity="error",
        )
        record(
            ctx,
            action="webhook_endpoint.disable",
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            changes={"status": {"before": "enabled", "after": "disabled"}, "reason": reason},
        )


def enable_endpoint(ctx: Ctx, endpoint: WebhookEndpoint) -> None:
    """Enable ``endpoint`` again: its paused deliveries are due at once, with a fresh retry window."""
    now = ctx.now()
    endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = "enabled", None, None
    endpoint.failing_since = None
    paused = list(
        ctx.session.scalars(
            select(EventDelivery).where(
                EventDelivery.subscriber == endpoint.id, EventDelivery.status == "paused"
            )
        )
    )
    for d in paused:
        d.status = "retrying" if d.attempts else "pending"
        d.next_attempt_at, d.first_attempt_at, d.locked_until = now, None, None

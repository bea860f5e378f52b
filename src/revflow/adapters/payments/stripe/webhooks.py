"""Inbound Stripe webhooks: verify ``Stripe-Signature`` with the SDK first, then parse and normalise."""

from __future__ import annotations

import json
from collections.abc import Mapping

import stripe

from revflow.adapters.payments.stripe.consts import WEBHOOK_TOLERANCE_SECONDS
from revflow.adapters.payments.stripe.mapping import gateway_event
from revflow.services.ports import GatewayEvent, WebhookSignatureError

__all__ = ["SIGNATURE_HEADER", "parse_webhook"]

SIGNATURE_HEADER = "Stripe-Signature"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def parse_webhook(
    payload: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | None,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> GatewayEvent:
    """Verify the signature over the raw body (HMAC-SHA256 with the endpoint secret, timestamp within
    ``tolerance`` seconds), then normalise the event.

    Raises WebhookSignatureError (missing, wrong or stale signature; no secret configured) before
    looking at the body, and ValueError when a correctly signed body is not a Stripe event (malformed JSON
    included)."""
    if not secret:
        raise WebhookSignatureError("no Stripe webhook signing secret is configured")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookSignatureError(
            "webhook body is not UTF-8 text, so it cannot carry a valid signature"
        ) from exc
    try:
        stripe.WebhookSignature.verify_header(text, _header(headers, SIGNATURE_HEADER), secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc.user_message or exc)) from exc
    event = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(event, dict) or event.get("object") != "event":
        raise ValueError("webhook body is not a Stripe event object")
    return gateway_event(event)

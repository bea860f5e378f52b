"""Stripe objects ↔ the port's dataclasses.

Every function takes a plain mapping: the SDK's ``StripeObject`` is a ``dict``, and webhook payloads are
parsed JSON, so one mapping serves both. Currencies leave Stripe lower-case and reach Revflow upper-case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from revflow.adapters.payments.stripe.consts import EVENT_TYPES, HARD_DECLINE_CODES
from revflow.services.ports import (
    ChargeResult,
    ChargeStatus,
    GatewayEvent,
    GatewayPayment,
    PaymentMethodInfo,
    RefundResult,
)

__all__ = [
    "charge_result",
    "gateway_event",
    "gateway_payment",
    "payment_method_info",
    "refund_result",
]

Obj = Mapping[str, Any]


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _str_dict(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _id(value: Any) -> str | None:
    """An expandable field: the id whether it is expanded (an object) or not (a string)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return str(value["id"])
    return str(value)


def payment_method_info(pm: Obj) -> PaymentMethodInfo:
    """A PaymentMethod as Revflow keeps it: token, type, and what a person recognises it by."""
    customer = _id(pm.get("customer"))
    if pm["type"] == "us_bank_account":
        bank = pm.get("us_bank_account") or {}
        return PaymentMethodInfo(
            token=str(pm["id"]),
            type="us_bank_account",
            customer_ref=customer,
            last4=bank.get("last4"),
            bank_name=bank.get("bank_name"),
        )
    if pm["type"] != "card":
        raise ValueError(f"unsupported payment method type {pm['type']!r}")
    card = pm.get("card") or {}
    return PaymentMethodInfo(
        token=str(pm["id"]),
        type="card",
        customer_ref=customer,
        brand=card.get("brand"),
        last4=card.get("last4"),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
    )


def _pm_type(pi: Obj) -> str | None:
    for source in (pi.get("payment_method"), (pi.get("last_payment_error") or {}).get("payment_method")):
        if isinstance(source, Mapping) and source.get("type"):
            return str(source["type"])
    charge = pi.get("latest_charge")
    if isinstance(charge, Mapping):
        details = charge.get("payment_method_details") or {}
        if details.get("type"):
            return str(details["type"])
    types = pi.get("payment_method_types") or []
    return str(types[0]) if len(types) == 1 else None


def charge_status(pi: Obj) -> ChargeStatus:
    """PaymentIntent status → the port's. A confirmed intent back at ``requires_payment_method`` has failed;
    ``authentication_required`` asks for the customer (``requires_action``)."""
    status = pi["status"]
    error = pi.get("last_payment_error") or {}
    if status == "succeeded":
        return "succeeded"
    if status == "canceled":
        return "failed"
    if status in ("processing", "requires_capture"):
        return "processing"
    if status == "requires_action" or error.get("code") == "authentication_required":
        return "requires_action"
    return "failed"  # requires_payment_method (declined), canceled, requires_confirmation (never confirmed)


def charge_result(pi: Obj) -> ChargeResult:
    """A PaymentIntent (``latest_charge`` expanded or not) as a charge outcome."""
    status = charge_status(pi)
    error = pi.get("last_payment_error") or {}
    failure_code = decline_code = message = None
    if pi["status"] == "canceled":
        failure_code = "canceled"
        message = f"The PaymentIntent was canceled ({pi.get('cancellation_reason') or 'no reason given'})."
    elif status in ("failed", "requires_action"):
        failure_code = error.get("code")
        decline_code = error.get("decline_code")
        message = error.get("message")
        if failure_code is None and pi["status"] != "requires_action":
            failure_code = "payment_intent_" + str(pi["status"])
    return ChargeResult(
        status=status,
        gateway_ref=str(pi["id"]),
        amount=int(pi["amount"]),
        currency=str(pi["currency"]).upper(),
        failure_code=failure_code,
        decline_code=decline_code,
        failure_message=message,
        hard_decline=status == "failed" and is_hard_decline(failure_code, decline_code),
        payment_method_type=_pm_type(pi),
    )


def is_hard_decline(failure_code: str | None, decline_code: str | None) -> bool:
    return (decline_code in HARD_DECLINE_CODES) or (failure_code in HARD_DECLINE_CODES)


def refund_result(refund: Obj) -> RefundResult:
    raw = refund.get("status")
    status: Literal["succeeded", "pending", "failed"]
    if raw == "succeeded":
        status = "succeeded"
    elif raw in ("failed", "canceled"):
        status = "failed"
    else:  # pending, requires_action
        status = "pending"
    return RefundResult(
        gateway_ref=str(refund["id"]),
        status=status,
        amount=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
    )


def gateway_payment(pi: Obj) -> GatewayPayment:
    """A PaymentIntent as reconciliation sees it (expand ``latest_charge`` for ``amount_refunded``)."""
    charge = pi.get("latest_charge")
    refunded = int(charge.get("amount_refunded") or 0) if isinstance(charge, Mapping) else 0
    return GatewayPayment(
        gateway_ref=str(pi["id"]),
        amount=int(pi["amount"]),
        amount_refunded=refunded,
        currency=str(pi["currency"]).upper(),
        status=charge_status(pi),
        created=_ts(pi["created"]),
        metadata=_str_dict(pi.get("metadata")),
    )


def gateway_event(event: Obj) -> GatewayEvent:
    """A verified Stripe event, normalised. Raises ValueError when it lacks what its type promises."""
    try:
        raw_type = str(event["type"])
        obj: Obj = event["data"]["object"]
        event_id = str(event["id"])
        created = _ts(event["created"])
        object_ref = str(obj["id"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a Stripe event: missing {exc}") from exc
    kind = EVENT_TYPES.get(raw_type, "other")
    common: dict[str, Any] = {
        "id": event_id,
        "type": kind,
        "raw_type": raw_type,
        "created": created,
        "object_ref": object_ref,
        "metadata": _str_dict(obj.get("metadata")),
        "data": dict(obj),
    }
    try:
        if kind.startswith("payment.") and obj.get("object") == "payment_intent":
            return GatewayEvent(**common, charge=charge_result(obj))
        if kind.startswith("payment_method.") and obj.get("object") == "payment_method":
            return GatewayEvent(**common, payment_method=payment_method_info(obj))
        if kind == "charge.refunded" and obj.get("object") == "charge":
            refunds = (obj.get("refunds") or {}).get("data") or []
            return GatewayEvent(
                **common,
                refund=refund_result(refunds[0]) if refunds else None,
                amount_refunded=int(obj["amount_refunded"]),
                payment_ref=_id(obj.get("payment_intent")),
            )
        if kind == "refund.updated" and obj.get("object") == "refund":
            return GatewayEvent(
                **common, refund=refund_result(obj), payment_ref=_id(obj.get("payment_intent"))
            )
        if kind.startswith("dispute.") and obj.get("object") == "dispute":
            return GatewayEvent(
                **common,
                payment_ref=_id(obj.get("payment_intent")),
                dispute_reason=obj.get("reason"),
                dispute_amount=int(obj["amount"]),
                dispute_status=obj.get("status"),
            )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{raw_type} event {event_id} lacks {exc}") from exc
    if kind != "other":
        raise ValueError(
            f"{raw_type} event {event_id} carries a {obj.get('object')!r}, not the expected object"
        )
    return GatewayEvent(**common)

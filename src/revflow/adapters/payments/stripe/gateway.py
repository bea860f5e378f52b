"""``StripeGateway``: the ``PaymentGateway`` port over Stripe's Customers, SetupIntents, PaymentMethods,
off-session PaymentIntents, Refunds and webhooks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from revflow.adapters.payments.stripe.client import StripeApi, translate_errors
from revflow.adapters.payments.stripe.consts import (
    CUSTOMER_METADATA_KEY,
    IDEMPOTENCY_METADATA_KEY,
    REFUND_REASONS,
    WEBHOOK_TOLERANCE_SECONDS,
)
from revflow.adapters.payments.stripe.mapping import (
    charge_result,
    gateway_payment,
    is_hard_decline,
    payment_method_info,
    refund_result,
)
from revflow.adapters.payments.stripe.webhooks import parse_webhook
from revflow.services.ports import (
    ChargeRequest,
    ChargeResult,
    GatewayError,
    GatewayEvent,
    GatewayPayment,
    PaymentGateway,
    PaymentMethodInfo,
    RefundResult,
    SetupSession,
)

__all__ = ["StripeGateway"]

#: Off-session charges may use a saved card or a saved US bank account; Stripe picks by the method's type.
_CHARGE_METHOD_TYPES = ["card", "us_bank_account"]


class StripeGateway:
    """Stripe behind Revflow's ``PaymentGateway`` port.

    ``api_base`` points the SDK at another address (the tests' fake); ``timeout`` bounds every request in
    seconds; ``max_network_retries`` lets the SDK retry connection errors and 5xx with the same
    Idempotency-Key (0 by default: Revflow resolves unknown outcomes itself with ``find_charge``)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        timeout: float = 30.0,
        *,
        webhook_tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
        max_network_retries: int = 0,
    ):
        self._api = StripeApi(
            api_key, api_base=api_base, timeout=timeout, max_network_retries=max_network_retries
        )
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance

    def __repr__(self) -> str:
        return "StripeGateway(...)"

    # ------------------------------------------------------------------------------------------ customers
    def ensure_customer(
        self, *, customer_id: str, email: str | None, name: str | None, existing_ref: str | None
    ) -> str:
        """The Stripe customer for Revflow's ``customer_id``: ``existing_ref`` when given, else created
        with an Idempotency-Key derived from ``customer_id`` (a retry within Stripe's 24 h replays the same
        customer). When the key was used with other details, the customer is found by its
        ``revflow_customer_id``."""
        if existing_ref:
            return existing_ref
        key = f"revflow-customer-{customer_id}"
        try:
            with translate_errors("create customer"):
                customer = self._api.create_customer(
                    {
                        **({"email": email} if email else {}),
                        **({"name": name} if name else {}),
                        "metadata": {CUSTOMER_METADATA_KEY: customer_id},
                    },
                    idempotency_key=key,
                )
                return str(customer.id)
        except GatewayError as exc:
            if not isinstance(exc.__cause__, stripe.IdempotencyError):
                raise
        found = self._api.call(
            "search customers",
            lambda: self._api.search_customers(f"metadata['{CUSTOMER_METADATA_KEY}']:'{customer_id}'"),
        )
        if not found:
            raise GatewayError(
                f"Stripe customer for {customer_id} could not be created or found", code="not_found"
            )
        return str(found[0].id)

    # ------------------------------------------------------------------------------------ payment methods
    def create_setup_session(self, *, customer_ref: str, method_types: Sequence[str]) -> SetupSession:
        """A SetupIntent for off-session use: the front end confirms it with ``client_secret`` (Stripe.js), so
        card numbers never reach Revflow."""
        si = self._api.call(
            "create setup intent",
            lambda: self._api.create_setup_intent(
                {
                    "customer": customer_ref,
                    "allowed_payment_method_types": list(method_types),
                    "usage": "off_session",
                }
            ),
        )
        return SetupSession(id=str(si.id), client_secret=si.client_secret, status=str(si.status))

    def attach_payment_method(self, *, customer_ref: str, token: str) -> PaymentMethodInfo:
        """Attach ``token`` to the customer and return its details. A method already on this customer (a
        SetupIntent attaches it) is returned as is."""
        pm = self._api.call("retrieve payment method", lambda: self._api.retrieve_payment_method(token))
        if pm.customer == customer_ref:
            return payment_method_info(pm.to_dict())
        pm = self._api.call(
            "attach payment method", lambda: self._api.attach_payment_method(token, customer_ref)
        )
        return payment_method_info(pm.to_dict())

    def get_payment_method(self, token: str) -> PaymentMethodInfo:
        pm = self._api.call("retrieve payment method", lambda: self._api.retrieve_payment_method(token))
        return payment_method_info(pm.to_dict())

    def detach_payment_method(self, token: str) -> None:
        self._api.call("detach payment method", lambda: self._api.detach_payment_method(token))

    # ------------------------------------------------------------------------------------------- payments
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """An off-session PaymentIntent, confirmed at once, carrying ``request.idempotency_key`` both as
        Stripe's Idempotency-Key and as metadata (for ``find_charge``). Declines are results; a timeout, a
        broken connection, a 5xx or a garbled answer is ``unknown``; a 429 is ``unknown`` too (nothing was
        done, and ``find_charge`` will say so)."""
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "customer": request.customer_ref,
            "payment_method": request.payment_method,
            # The saved method's own type when known: then every event of the PaymentIntent (ACH
            # settlement days later included) says which kind of payment it was.
            "allowed_payment_method_types": [request.payment_method_type]
            if request.payment_method_type in _CHARGE_METHOD_TYPES
            else list(_CHARGE_METHOD_TYPES),
            "confirm": True,
            "off_session": True,
            "metadata": {**request.metadata, IDEMPOTENCY_METADATA_KEY: request.idempotency_key},
            "expand": ["latest_charge", "payment_method"],
        }
        if request.description:
            params["description"] = request.description
        try:
            pi = self._api.create_payment_intent(params, idempotency_key=request.idempotency_key)
        except stripe.CardError as exc:
            return _declined(exc, request)
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            return ChargeResult(
                status="unknown",
                gateway_ref=None,
                amount=request.amount,
                currency=request.currency.upper(),
                failure_code="timeout"
                if isinstance(exc, stripe.APIConnectionError)
                else exc.code or "api_error",
                failure_message=str(exc.user_message or exc),
            )
        except stripe.StripeError as exc:
            raise GatewayError(
                f"Stripe refused the charge: {exc.user_message or exc}", code=exc.code, status=exc.http_status
            ) from exc
        return charge_result(pi.to_dict())

    def find_charge(
        self, *, idempotency_key: str, customer_ref: str, metadata: Mapping[str, str]
    ) -> ChargeResult | None:
        """What became of a charge whose answer was lost: the customer's PaymentIntent whose metadata carries
        ``idempotency_key``, or None when Stripe never received it.

        Lists the customer's PaymentIntents (read-after-write consistent) rather than Search (eventually
        consistent, so a charge made seconds ago may be missing) or replaying the Idempotency-Key (which would
        *make* the charge if it never arrived, and stops working after 24 hours)."""
        wanted = metadata.get(IDEMPOTENCY_METADATA_KEY, idempotency_key)
        with translate_errors("list payment intents"):
            for pi in self._api.customer_payment_intents(customer_ref):
                if (pi.metadata.to_dict() if pi.metadata else {}).get(IDEMPOTENCY_METADATA_KEY) == wanted:
                    return self.retrieve_charge(str(pi.id))
        return None

    def retrieve_charge(self, gateway_ref: str) -> ChargeResult:
        pi = self._api.call("retrieve payment intent", lambda: self._api.retrieve_payment_intent(gateway_ref))
        return charge_result(pi.to_dict())

    def refund(
        self, *, gateway_ref: str, amount: int, idempotency_key: str, reason: str | None = None
    ) -> RefundResult:
        """Refund ``amount`` of the PaymentIntent ``gateway_ref``. Over-refunding raises GatewayError with
        Stripe's code (``amount_too_large``, ``charge_already_refunded``); other reasons than Stripe's go in
        metadata."""
        params: RefundCreateParams = {"payment_intent": gateway_ref, "amount": amount}
        if reason in REFUND_REASONS:
            params["reason"] = reason
        elif reason:
            params["metadata"] = {"revflow_reason": reason[:500]}
        refund = self._api.call(
            "create refund", lambda: self._api.create_refund(params, idempotency_key=idempotency_key)
        )
        return refund_result(refund.to_dict())

    def list_payments(self, *, since: datetime) -> Iterator[GatewayPayment]:
        """Every PaymentIntent created at or after ``since``, newest first, 100 a page."""
        with translate_errors("list payment intents"):
            for pi in self._api.payment_intents_since(int(since.timestamp())):
                yield gateway_payment(pi.to_dict())

    # ------------------------------------------------------------------------------------------- webhooks
    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        return parse_webhook(payload, headers, secret=self._webhook_secret, tolerance=self._webhook_tolerance)


def _declined(exc: stripe.CardError, request: ChargeRequest) -> ChargeResult:
    """A 402: the PaymentIntent in the error body says what was declined and why."""
    body: Any = exc.json_body if isinstance(exc.json_body, dict) else {}
    error: dict[str, Any] = body.get("error") or {}
    pi = error.get("payment_intent")
    if isinstance(pi, dict):
        result = charge_result(pi)
        if result.status in ("failed", "requires_action"):
            return result
    code, decline = exc.code or error.get("code"), error.get("decline_code")
    return ChargeResult(
        status="requires_action" if code == "authentication_required" else "failed",
        gateway_ref=pi.get("id") if isinstance(pi, dict) else None,
        amount=request.amount,
        currency=request.currency.upper(),
        failure_code=code,
        decline_code=decline,
        failure_message=str(exc.user_message or error.get("message") or ""),
        hard_decline=is_hard_decline(code, decline),
        payment_method_type=(error.get("payment_method") or {}).get("type"),
    )


if TYPE_CHECKING:  # mypy --strict proves the adapter satisfies the port
    _port_check: PaymentGateway = StripeGateway("sk_test_typecheck")

"""Thin calls to Stripe through the official SDK.

One ``StripeClient`` per gateway (no global ``stripe.api_key``), a timeout on every request, an
Idempotency-Key on every POST, and SDK errors translated at this boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import stripe
from stripe._base_address import BaseAddresses
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
    SetupIntentCreateParams,
)

from revflow.services.ports import GatewayError, GatewayUnavailable

__all__ = ["StripeApi", "translate_errors"]

T = TypeVar("T")


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """SDK errors → the port's: unreachable, timed out, rate limited or 5xx → GatewayUnavailable; any other
    refusal → GatewayError with Stripe's ``code`` and HTTP status."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise GatewayUnavailable(
            f"Stripe {action}: {exc.user_message or exc}", code=exc.code, status=exc.http_status
        ) from exc
    except stripe.APIError as exc:
        raise GatewayUnavailable(
            f"Stripe {action}: {exc.user_message or exc}", code=exc.code, status=exc.http_status
        ) from exc
    except stripe.StripeError as exc:
        raise GatewayError(
            f"Stripe {action}: {exc.user_message or exc}", code=exc.code, status=exc.http_status
        ) from exc


class StripeApi:
    """The few Stripe endpoints Revflow uses. ``api_base`` points the SDK elsewhere (the tests' fake)."""

    def __init__(self, api_key: str, *, api_base: str | None, timeout: float, max_network_retries: int = 0):
        base: BaseAddresses = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    def call(self, action: str, fn: Callable[[], T]) -> T:
        with translate_errors(action):
            return fn()

    # Customers
    def create_customer(self, params: CustomerCreateParams, *, idempotency_key: str) -> stripe.Customer:
        return self.client.v1.customers.create(params, {"idempotency_key": idempotency_key})

    def search_customers(self, query: str) -> list[stripe.Customer]:
        return list(self.client.v1.customers.search({"query": query, "limit": 10}).data)

    # Payment methods
    def create_setup_intent(
        self, params: SetupIntentCreateParams, *, idempotency_key: str | None = None
    ) -> stripe.SetupIntent:
        return self.client.v1.setup_intents.create(
            params, {"idempotency_key": idempotency_key} if idempotency_key else None
        )

    def attach_payment_method(self, token: str, customer: str) -> stripe.PaymentMethod:
        return self.client.v1.payment_methods.attach(token, {"customer": customer})

    def retrieve_payment_method(self, token: str) -> stripe.PaymentMethod:
        return self.client.v1.payment_methods.retrieve(token)

    def detach_payment_method(self, token: str) -> stripe.PaymentMethod:
        return self.client.v1.payment_methods.detach(token)

    # Payments
    def create_payment_intent(
        self, params: PaymentIntentCreateParams, *, idempotency_key: str
    ) -> stripe.PaymentIntent:
        return self.client.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})

    def retrieve_payment_intent(self, ref: str) -> stripe.PaymentIntent:
        return self.client.v1.payment_intents.retrieve(ref, {"expand": ["latest_charge", "payment_method"]})

    def customer_payment_intents(self, customer: str) -> Iterator[stripe.PaymentIntent]:
        page = self.client.v1.payment_intents.list({"customer": customer, "limit": 100})
        return iter(page.auto_paging_iter())

    def payment_intents_since(self, created_gte: int) -> Iterator[stripe.PaymentIntent]:
        page = self.client.v1.payment_intents.list(
            {"created": {"gte": created_gte}, "limit": 100, "expand": ["data.latest_charge"]}
        )
        return iter(page.auto_paging_iter())

    def create_refund(self, params: RefundCreateParams, *, idempotency_key: str) -> stripe.Refund:
        return self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key})

    def __repr__(self) -> str:  # never print the key
        return "StripeApi(...)"

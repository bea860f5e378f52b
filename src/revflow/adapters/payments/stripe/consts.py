"""Stripe constants Revflow relies on: metadata keys, hard declines, and the webhook events it handles."""

from __future__ import annotations

from typing import Final

from revflow.services.ports import GatewayEventType

__all__ = [
    "CUSTOMER_METADATA_KEY",
    "EVENT_TYPES",
    "HARD_DECLINE_CODES",
    "IDEMPOTENCY_METADATA_KEY",
    "REFUND_REASONS",
    "WEBHOOK_TOLERANCE_SECONDS",
]

#: Every PaymentIntent Revflow creates carries its Idempotency-Key in this metadata key, so ``find_charge``
#: can find it after a timeout (Stripe forgets Idempotency-Keys after 24 hours; metadata stays).
IDEMPOTENCY_METADATA_KEY: Final = "revflow_idempotency_key"
CUSTOMER_METADATA_KEY: Final = "revflow_customer_id"

#: Decline and bank-failure codes after which retrying the same payment method cannot succeed: the issuer
#: or bank has said the card or account must not be charged again (https://docs.stripe.com/declines/codes
#: and the ACH failure codes, https://docs.stripe.com/payments/ach-direct-debit). Dunning skips retries.
HARD_DECLINE_CODES: Final = frozenset(
    {
        # cards
        "stolen_card",
        "lost_card",
        "pickup_card",
        "fraudulent",
        "restricted_card",
        "merchant_blacklist",
        "security_violation",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "stop_payment_order",
        "do_not_try_again",
        "invalid_account",
        "incorrect_number",
        "invalid_number",
        # bank debits (us_bank_account)
        "account_closed",
        "no_account",
        "account_frozen",
        "bank_account_restricted",
        "debit_not_authorized",
        "invalid_account_number",
    }
)

#: The refund reasons Stripe accepts; others are passed as metadata instead.
REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

#: Stripe's own default: a signature older than five minutes is refused (replay protection).
WEBHOOK_TOLERANCE_SECONDS: Final = 300

#: Stripe event type → Revflow's normalised type. Everything else is "other" (acknowledged, recorded).
EVENT_TYPES: Final[dict[str, GatewayEventType]] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.processing": "payment.processing",
    "payment_intent.canceled": "payment.failed",  # canceled at Stripe: this attempt has failed (ADR 0035)
    "charge.refunded": "charge.refunded",
    "charge.refund.updated": "refund.updated",
    "charge.dispute.created": "dispute.created",
    "charge.dispute.updated": "dispute.updated",
    "charge.dispute.closed": "dispute.closed",
    "payment_method.attached": "payment_method.attached",
    "payment_method.detached": "payment_method.detached",
    "payment_method.updated": "payment_method.updated",
    "payment_method.automatically_updated": "payment_method.updated",
}

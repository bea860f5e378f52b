"""Stripe, through the official ``stripe`` SDK: ``StripeGateway`` implements ``PaymentGateway``.

``client`` holds the SDK calls, ``mapping`` turns Stripe objects into the port's dataclasses, ``webhooks``
verifies and normalises inbound events, ``consts`` lists hard declines and event types.
"""

from revflow.adapters.payments.stripe.gateway import StripeGateway

__all__ = ["StripeGateway"]

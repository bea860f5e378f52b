"""A faithful fake of Stripe's API for tests: ``FakeStripe`` serves the official SDK over local HTTP.

    with FakeStripe() as fake:
        client = stripe.StripeClient(fake.secret_key, base_addresses={"api": fake.url})
        customer = client.v1.customers.create({"email": "a@example.com"})

See ``server.FakeStripe`` for the test-mode controls (ACH settlement, disputes, faults, webhooks).
"""

from .server import Delivery, FakeStripe, FaultKind, RecordedRequest, running_fake, sign_headers
from .state import WebhookEndpoint
from .testcards import TEST_TOKENS, TestToken

__all__ = [
    "TEST_TOKENS",
    "Delivery",
    "FakeStripe",
    "FaultKind",
    "RecordedRequest",
    "TestToken",
    "WebhookEndpoint",
    "running_fake",
    "sign_headers",
]

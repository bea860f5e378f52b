"""A faithful fake of HubSpot's CRM v3 API for tests: ``FakeHubSpot`` serves the official
``hubspot-api-client``.

    with FakeHubSpot() as fake:
        client = fake.sdk()  # hubspot.HubSpot(access_token=fake.access_token, host=fake.url)
        client.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={"name": "Acme"}))

See ``server.FakeHubSpot`` for the controls (user edits that emit webhooks, faults, rate limits, clock).
"""

from .server import (
    FakeHubSpot,
    FaultKind,
    RecordedRequest,
    Subscription,
    WebhookDelivery,
    running_fake,
    sign_v3,
)
from .state import DEAL_STAGES, HubSpotError

__all__ = [
    "DEAL_STAGES",
    "FakeHubSpot",
    "FaultKind",
    "HubSpotError",
    "RecordedRequest",
    "Subscription",
    "WebhookDelivery",
    "running_fake",
    "sign_v3",
]

"""HubSpot, through the official ``hubspot-api-client`` SDK: ``HubSpotConnector`` implements ``CrmConnector``
and ``CrmWebhookSource``.

``client`` holds the SDK calls and error translation, ``mapping`` turns Revflow's CRM dataclasses into HubSpot
properties and back, ``webhooks`` verifies v3 signatures and parses events, ``consts`` names properties,
headers and limits.
"""

from revflow.adapters.crm.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]

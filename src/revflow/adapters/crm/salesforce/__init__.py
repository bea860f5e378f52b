"""Salesforce, through ``simple-salesforce``: ``SalesforceConnector`` implements ``CrmConnector``.

``client`` holds the SDK calls (login, re-login, errors), ``mapping`` turns Revflow's CRM dataclasses into
Account / Opportunity fields and back, ``consts`` names the custom fields and limits. No webhooks: inbound
changes are polled (``changes_since``).
"""

from revflow.adapters.crm.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]

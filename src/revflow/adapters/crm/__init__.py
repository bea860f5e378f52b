"""CRM connectors, one package per vendor; each implements ``CrmConnector`` (and ``CrmWebhookSource`` where
the vendor pushes changes) from ``revflow.services.ports``."""

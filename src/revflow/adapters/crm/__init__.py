"""CRM connectors, one package per vendor, each implementing ``services.ports.CrmConnector``."""

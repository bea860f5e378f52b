"""Payment gateway adapters, one package per vendor; each implements
``revflow.services.ports.PaymentGateway``."""

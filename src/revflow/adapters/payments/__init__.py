"""Payment gateways: ``sandbox`` (embedded default, test tokens) and ``stripe`` (official SDK)."""

from revflow.adapters.payments.sandbox import SandboxGateway

__all__ = ["SandboxGateway"]

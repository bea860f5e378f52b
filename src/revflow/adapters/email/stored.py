"""The stored email adapter: delivers nothing. The outbox row is the email; ``GET /v1/emails`` lists it."""

from __future__ import annotations

from revflow.services.ports import EmailMessage

__all__ = ["StoredEmailSender"]


class StoredEmailSender:
    delivered_status = "stored"

    def send(self, message: EmailMessage) -> None:
        return None

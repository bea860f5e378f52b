"""SMTP delivery with the standard library's smtplib."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage as MimeMessage

from revflow.services.ports import EmailMessage

__all__ = ["SmtpEmailSender"]


class SmtpEmailSender:
    delivered_status = "sent"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 30.0,
    ):
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.starttls = username, password, starttls

    def send(self, message: EmailMessage) -> None:
        """Send one message; raises ``smtplib.SMTPException`` or ``OSError`` when the server refuses."""
        mime = MimeMessage()
        mime["From"] = message.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Message-ID"] = f"<{message.message_id}@revflow>"
        mime.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(mime)

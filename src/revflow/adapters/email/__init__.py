"""Email adapters: SMTP (stdlib smtplib) and stored (kept for the API; the embedded default)."""

from revflow.adapters.email.smtp import SmtpEmailSender
from revflow.adapters.email.stored import StoredEmailSender

__all__ = ["SmtpEmailSender", "StoredEmailSender"]

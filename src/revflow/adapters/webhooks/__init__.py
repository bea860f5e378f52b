"""Outbound webhooks over HTTP."""

from revflow.adapters.webhooks.http_sender import HttpWebhookSender

__all__ = ["HttpWebhookSender"]

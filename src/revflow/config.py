"""Configuration from environment variables (``REVFLOW_*``) and an optional ``.env``-style file.

The file is ``./revflow.env`` by default, or the path in ``REVFLOW_CONFIG_FILE``. Environment variables
win over the file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REVFLOW_",
        env_file=os.environ.get("REVFLOW_CONFIG_FILE", "revflow.env"),
        extra="ignore",
    )

    database_url: str = "sqlite:///./revflow.db"
    secret_key: str = Field(
        default="dev-insecure-secret-change-me",
        description="Signs and encrypts secrets at rest; set a long random value in production.",
    )
    #: Earlier secret keys, comma-separated: secrets sealed with them can still be opened (key rotation).
    secret_key_previous: str = ""
    log_level: str = "INFO"
    log_json: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: Seconds between worker cycles.
    worker_interval: float = 5.0
    #: Hours an Idempotency-Key and its stored response are kept (Stripe keeps 24 h; we keep at least that).
    idempotency_ttl_hours: int = 48
    #: Customers billed per transaction by the billing run.
    billing_batch_size: int = 200
    #: Largest request body the API accepts, in bytes.
    max_body_bytes: int = 1_048_576
    # --- payments (issue 5): see docs/payments.md ---
    #: ``sandbox`` (test tokens, the embedded default) or ``stripe``.
    payment_gateway: Literal["sandbox", "stripe"] = "sandbox"
    stripe_api_key: str = ""
    stripe_webhook_secret: str = ""
    #: Override Stripe's API address (a local fake in tests); empty: Stripe's own.
    stripe_api_base: str = ""
    #: Where the sandbox keeps its books; empty: ``<database>.sandbox.db`` on SQLite, the same database on
    #: PostgreSQL.
    sandbox_database_url: str = ""
    #: Seconds a worker holds a claimed charge before another may resolve it (with ``find_charge``).
    payment_lease_seconds: int = 120
    #: Hours between payment reconciliations run by the worker.
    reconciliation_interval_hours: float = 24.0
    #: ``stored`` (kept and listed at /v1/emails, the embedded default) or ``smtp``.
    email_backend: Literal["stored", "smtp"] = "stored"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    email_from: str = "billing@revflow.local"
    #: Let webhook endpoints resolve to private, loopback or link-local addresses (development, tests).
    webhook_allow_private: bool = False
    #: Seconds to connect to, and to wait for, a webhook receiver.
    webhook_connect_timeout: float = 5.0
    webhook_read_timeout: float = 15.0
    #: Hours a failing delivery is retried (from its first attempt) before it is dead-lettered.
    webhook_retry_window_hours: int = 72
    #: Days an endpoint may fail without a single success before it is disabled.
    webhook_disable_after_days: int = 5
    #: Hours the previous secret keeps signing after a rotation, unless the rotation says otherwise.
    webhook_rotation_overlap_hours: int = 24
    #: Deliveries claimed per round by one worker, and how long a claim lasts (seconds).
    outbox_batch_size: int = 50
    outbox_lease_seconds: int = 120


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

"""Configuration from environment variables (``REVFLOW_*``) and an optional ``.env``-style file.

The file is ``./revflow.env`` by default, or the path in ``REVFLOW_CONFIG_FILE``. Environment variables
win over the file.
"""

from __future__ import annotations

import os
from functools import lru_cache

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

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

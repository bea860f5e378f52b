"""The public shape of integrations and sync jobs (credentials never leave)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from revflow.services.views import _View
from revflow.storage.connector_models import Integration, SyncJob

__all__ = ["IntegrationView", "SyncJobView"]


class IntegrationView(_View):
    id: str
    object: Literal["integration"] = "integration"
    system: str
    description: str
    owner: str
    enabled: bool
    settings: dict[str, Any]
    #: Credentials are write-only: this says only that they are stored (sealed).
    has_credentials: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: Integration) -> IntegrationView:
        fields = {k: getattr(i, k) for k in cls.model_fields if k not in ("object", "has_credentials")}
        return cls(**fields, has_credentials=bool(i.credentials))


class SyncJobView(_View):
    id: str
    object: Literal["sync_job"] = "sync_job"
    integration_id: str
    kind: str
    direction: str
    object_type: str | None
    object_id: str | None
    status: str
    attempts: int
    last_error: str | None
    error_code: str | None
    next_run_at: datetime
    cursor: str | None
    result: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, j: SyncJob) -> SyncJobView:
        return cls(**{k: getattr(j, k) for k in cls.model_fields if k != "object"})

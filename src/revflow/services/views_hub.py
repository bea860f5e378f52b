"""The public shape of webhook endpoints, their attempt log and event deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from revflow.services.views import _View
from revflow.storage.hub_models import EntityMapping, WebhookAttempt, WebhookEndpoint
from revflow.storage.models import EventDelivery

__all__ = ["EntityMappingView", "EventDeliveryView", "WebhookAttemptView", "WebhookEndpointView"]


class WebhookEndpointView(_View):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    enabled_events: list[str]
    #: ``enabled`` or ``disabled``.
    status: str
    #: Why it was disabled: ``gone`` (answered 410), ``failing`` (failed for days) or ``manual``.
    disabled_reason: str | None
    disabled_at: datetime | None
    #: Until when the secret before the last rotation still signs (a second ``v1,`` signature).
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> WebhookEndpointView:
        fields = {k: getattr(e, k) for k in cls.model_fields if k not in ("object", "metadata")}
        return cls(**fields, metadata=e.metadata_)


class WebhookAttemptView(_View):
    id: str
    object: Literal["webhook_attempt"] = "webhook_attempt"
    endpoint_id: str
    event_id: str
    event_type: str
    #: 1 for the first attempt of a delivery; test-sends are attempt 1 of their own.
    attempt: int
    test: bool
    request_body: str
    response_status: int | None
    #: The first 1 KB of what the endpoint answered.
    response_body: str | None
    latency_ms: int
    error: str | None
    succeeded: bool
    created_at: datetime

    @classmethod
    def of(cls, a: WebhookAttempt) -> WebhookAttemptView:
        fields = {k: getattr(a, k) for k in cls.model_fields if k not in ("object", "test")}
        return cls(**fields, test=a.delivery_id is None)


class EventDeliveryView(_View):
    object: Literal["event_delivery"] = "event_delivery"
    event_id: str
    subscriber_type: str
    subscriber: str
    #: ``pending``, ``retrying``, ``succeeded``, ``dead_lettered``, ``paused`` or ``canceled``.
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    dead_lettered_at: datetime | None

    @classmethod
    def of(cls, d: EventDelivery) -> EventDeliveryView:
        return cls(**{k: getattr(d, k) for k in cls.model_fields if k != "object"})

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class EntityMappingView(_View):
    id: str
    object: Literal["entity_mapping"] = "entity_mapping"
    object_type: str
    object_id: str
    system: str
    external_type: str
    external_id: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: EntityMapping) -> EntityMappingView:
        fields = {k: getattr(e, k) for k in cls.model_fields if k not in ("object", "metadata")}
        return cls(**fields, metadata=e.metadata_)

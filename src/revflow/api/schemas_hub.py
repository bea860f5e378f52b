"""Request bodies of webhook endpoints and event replay."""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyHttpUrl, AwareDatetime, Field, StrictBool, StrictStr

from revflow.api.schemas import Metadata, _In

__all__ = [
    "EntityMappingCreate",
    "EntityMappingUpdate",
    "EventReplay",
    "RangeReplay",
    "SecretRotation",
    "WebhookEndpointCreate",
    "WebhookEndpointUpdate",
]

EventTypes = Annotated[list[Annotated[StrictStr, Field(max_length=80)]], Field(min_length=1, max_length=100)]
Url = Annotated[AnyHttpUrl, Field(examples=["https://example.com/revflow/webhooks"])]


class WebhookEndpointCreate(_In):
    url: Url
    #: Event types or patterns: ``invoice.paid``, ``invoice.*``, ``*``.
    enabled_events: EventTypes
    description: Annotated[StrictStr | None, Field(max_length=500)] = None
    metadata: Metadata = Field(default_factory=dict)


class WebhookEndpointUpdate(_In):
    url: Url | None = None
    enabled_events: EventTypes | None = None
    description: Annotated[StrictStr | None, Field(max_length=500)] = None
    metadata: Metadata | None = None
    #: ``true`` disables the endpoint (its deliveries wait); ``false`` enables it and resumes them.
    disabled: StrictBool | None = None


class SecretRotation(_In):
    #: Hours the current secret keeps signing beside the new one
    #: (default REVFLOW_WEBHOOK_ROTATION_OVERLAP_HOURS).
    expires_in_hours: Annotated[int | None, Field(ge=0, le=168)] = None


class EventReplay(_In):
    #: Only to this endpoint (even if its filter does not match); default every matching enabled endpoint.
    endpoint_id: Annotated[StrictStr | None, Field(max_length=40)] = None


class RangeReplay(_In):
    created_gte: AwareDatetime
    created_lt: AwareDatetime
    type: Annotated[StrictStr | None, Field(max_length=80)] = None
    endpoint_id: Annotated[StrictStr | None, Field(max_length=40)] = None


Name = Annotated[StrictStr, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]


class EntityMappingCreate(_In):
    #: customer, subscription, invoice, plan, price, product, credit_note or payment.
    object_type: Name
    object_id: Annotated[StrictStr, Field(min_length=1, max_length=40)]
    #: hubspot, salesforce, stripe, xero…
    system: Name
    #: The vendor's object type (company, deal, account…); default: the system's customer type for
    #: customers, else the object type.
    external_type: Name | None = None
    external_id: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    metadata: Metadata = Field(default_factory=dict)


class EntityMappingUpdate(_In):
    external_id: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    metadata: Metadata | None = None

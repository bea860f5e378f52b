"""/v1/webhook_endpoints and event replay"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from revflow.api.routers._common import ContainerDep, CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_hub import (
    EventReplay,
    RangeReplay,
    SecretRotation,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from revflow.domain.clock import SystemClock
from revflow.domain.errors import InvalidInput
from revflow.services import outbox
from revflow.services import webhooks as svc
from revflow.services.pagination import paginate
from revflow.services.views_hub import EventDeliveryView, WebhookAttemptView, WebhookEndpointView
from revflow.storage.hub_models import WebhookAttempt, WebhookEndpoint
from revflow.storage.models import Event, EventDelivery

api = router("webhooks")


@api.post(
    "/webhook_endpoints",
    status_code=201,
    summary="Create a webhook endpoint (its secret is shown only in this response)",
)
def create_endpoint(body: WebhookEndpointCreate, ctx: CtxDep, container: ContainerDep) -> dict[str, Any]:
    endpoint, secret = svc.create_endpoint(
        ctx,
        sender=container.webhook_sender,
        box=container.secret_box,
        url=str(body.url),
        enabled_events=body.enabled_events,
        description=body.description,
        metadata=body.metadata,
    )
    return {**WebhookEndpointView.of(endpoint).payload(), "secret": secret}


@api.get("/webhook_endpoints", response_model=ListOf[WebhookEndpointView], summary="List webhook endpoints")
def list_endpoints(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.org_id == ctx.org_id)
    result = paginate(
        ctx,
        stmt,
        WebhookEndpoint,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope(
        "/v1/webhook_endpoints", [WebhookEndpointView.of(e) for e in result.items], result.has_more
    )


@api.get(
    "/webhook_endpoints/{endpoint_id}",
    response_model=WebhookEndpointView,
    summary="Retrieve a webhook endpoint",
)
def get_endpoint(endpoint_id: str, ctx: CtxDep) -> WebhookEndpointView:
    return WebhookEndpointView.of(ctx.get(WebhookEndpoint, endpoint_id, label="webhook_endpoint"))


@api.patch(
    "/webhook_endpoints/{endpoint_id}",
    response_model=WebhookEndpointView,
    summary="Update, disable or enable a webhook endpoint",
)
def update_endpoint(
    endpoint_id: str, body: WebhookEndpointUpdate, ctx: CtxDep, container: ContainerDep
) -> WebhookEndpointView:
    changes = body.model_dump(exclude_unset=True)
    if body.url is not None:
        changes["url"] = str(body.url)
    for key in ("url", "enabled_events", "disabled"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} cannot be null", details=[{"field": key, "code": "null_not_allowed"}])
    endpoint = svc.update_endpoint(ctx, endpoint_id, sender=container.webhook_sender, changes=changes)
    return WebhookEndpointView.of(endpoint)


@api.delete("/webhook_endpoints/{endpoint_id}", summary="Delete a webhook endpoint")
def delete_endpoint(endpoint_id: str, ctx: CtxDep) -> dict[str, Any]:
    return {"id": svc.delete_endpoint(ctx, endpoint_id), "object": "webhook_endpoint", "deleted": True}


@api.post(
    "/webhook_endpoints/{endpoint_id}/rotate_secret",
    summary="Rotate the signing secret (the old one keeps signing during the overlap)",
)
def rotate_secret(
    endpoint_id: str, ctx: CtxDep, container: ContainerDep, body: SecretRotation | None = None
) -> dict[str, Any]:
    hours = body.expires_in_hours if body and body.expires_in_hours is not None else None
    overlap = timedelta(hours=container.settings.webhook_rotation_overlap_hours if hours is None else hours)
    endpoint, secret = svc.rotate_secret(ctx, endpoint_id, overlap=overlap, box=container.secret_box)
    return {**WebhookEndpointView.of(endpoint).payload(), "secret": secret}


@api.get(
    "/webhook_endpoints/{endpoint_id}/deliveries",
    response_model=ListOf[WebhookAttemptView],
    summary="The endpoint's delivery log: one entry per attempt, newest first",
)
def list_attempts(
    endpoint_id: str, ctx: CtxDep, page: ListParamsDep, event_id: str | None = None
) -> dict[str, object]:
    ctx.get(WebhookEndpoint, endpoint_id, label="webhook_endpoint")
    stmt = select(WebhookAttempt).where(
        WebhookAttempt.org_id == ctx.org_id, WebhookAttempt.endpoint_id == endpoint_id
    )
    if event_id is not None:
        stmt = stmt.where(WebhookAttempt.event_id == event_id)
    result = paginate(
        ctx,
        stmt,
        WebhookAttempt,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
        [WebhookAttemptView.of(a) for a in result.items],
        result.has_more,
    )


@api.post(
    "/webhook_endpoints/{endpoint_id}/test",
    response_model=WebhookAttemptView,
    summary="Send a signed webhook_endpoint.test event now and return the attempt",
)
def test_endpoint(endpoint_id: str, ctx: CtxDep, container: ContainerDep) -> WebhookAttemptView:
    attempt = svc.send_test(
        ctx,
        endpoint_id,
        sender=container.webhook_sender,
        box=container.secret_box,
        wall_clock=SystemClock().now(),
    )
    return WebhookAttemptView.of(attempt)


@api.get(
    "/events/{event_id}/deliveries",
    response_model=ListOf[EventDeliveryView],
    summary="Where an event was delivered: one entry per subscriber",
)
def event_deliveries(event_id: str, ctx: CtxDep) -> dict[str, object]:
    ctx.get(Event, event_id, label="event")
    rows = ctx.session.scalars(
        select(EventDelivery)
        .where(EventDelivery.org_id == ctx.org_id, EventDelivery.event_id == event_id)
        .order_by(EventDelivery.id)
    )
    return envelope(f"/v1/events/{event_id}/deliveries", [EventDeliveryView.of(d) for d in rows], False)


def _endpoint_of(ctx: CtxDep, endpoint_id: str | None) -> None:
    if endpoint_id is not None:
        ctx.get(WebhookEndpoint, endpoint_id, label="webhook_endpoint")


@api.post("/events/{event_id}/replay", summary="Deliver an event again")
def replay_event(event_id: str, ctx: CtxDep, body: EventReplay | None = None) -> dict[str, Any]:
    ctx.get(Event, event_id, label="event")
    endpoint_id = body.endpoint_id if body else None
    _endpoint_of(ctx, endpoint_id)
    n = outbox.replay(
        ctx.session, now=ctx.now(), org_id=ctx.org_id, event_id=event_id, endpoint_id=endpoint_id
    )
    return {"object": "event_replay", "event_id": event_id, "deliveries_scheduled": n}


@api.post("/events/replay", summary="Deliver every event of a time range again")
def replay_range(body: RangeReplay, ctx: CtxDep) -> dict[str, Any]:
    if body.created_lt <= body.created_gte:
        raise InvalidInput(
            "created_lt must be after created_gte",
            code="invalid_range",
            details=[{"field": "created_lt", "code": "invalid_range"}],
        )
    _endpoint_of(ctx, body.endpoint_id)
    n = outbox.replay(
        ctx.session,
        now=ctx.now(),
        org_id=ctx.org_id,
        created_gte=body.created_gte,
        created_lt=body.created_lt,
        type=body.type,
        endpoint_id=body.endpoint_id,
    )
    return {"object": "event_replay", "deliveries_scheduled": n}

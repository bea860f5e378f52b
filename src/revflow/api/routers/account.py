"""/v1/api_keys, /v1/audit_events, /v1/events, /v1/payments"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response
from pydantic import AwareDatetime
from sqlalchemy import select

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, exact_response, router
from revflow.api.schemas import ApiKeyCreate, ListOf
from revflow.services import orgs
from revflow.services.pagination import filtered, paginate
from revflow.services.views import ApiKeyView, AuditEventView, EventView, PaymentView
from revflow.storage.models import ApiKey, AuditEvent, Event, Payment

api = router("account")


@api.post(
    "/api_keys", status_code=201, summary="Create an API key (the secret is shown only in this response)"
)
def create_api_key(ctx: CtxDep, body: ApiKeyCreate | None = None) -> dict[str, Any]:
    key, secret = orgs.create_api_key(ctx, name=body.name if body else "default")
    return {**ApiKeyView.model_validate(key).model_dump(mode="json"), "secret": secret}


@api.get("/api_keys", response_model=ListOf[ApiKeyView], summary="List API keys (prefix only)")
def list_api_keys(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    stmt = select(ApiKey).where(ApiKey.org_id == ctx.org_id)
    result = paginate(
        ctx,
        stmt,
        ApiKey,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/api_keys", [ApiKeyView.model_validate(k) for k in result.items], result.has_more)


@api.post("/api_keys/{key_id}/revoke", response_model=ApiKeyView, summary="Revoke an API key")
def revoke_api_key(key_id: str, ctx: CtxDep) -> ApiKeyView:
    return ApiKeyView.model_validate(orgs.revoke_api_key(ctx, key_id))


@api.get("/audit_events", response_model=ListOf[AuditEventView], summary="List the audit trail")
def list_audit_events(
    ctx: CtxDep,
    page: ListParamsDep,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    actor_id: Annotated[str | None, Query(max_length=40)] = None,
    created_gte: AwareDatetime | None = None,
    created_lt: AwareDatetime | None = None,
) -> dict[str, object]:
    stmt = filtered(
        select(AuditEvent).where(AuditEvent.org_id == ctx.org_id),
        (AuditEvent.object_type, object_type),
        (AuditEvent.object_id, object_id),
        (AuditEvent.action, action),
        (AuditEvent.actor_id, actor_id),
    )
    if created_gte is not None:
        stmt = stmt.where(AuditEvent.created_at >= created_gte)
    if created_lt is not None:
        stmt = stmt.where(AuditEvent.created_at < created_lt)
    result = paginate(
        ctx,
        stmt,
        AuditEvent,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope(
        "/v1/audit_events", [AuditEventView.model_validate(a) for a in result.items], result.has_more
    )


@api.get("/events", response_model=ListOf[EventView], summary="List domain events")
def list_events(
    ctx: CtxDep,
    page: ListParamsDep,
    type: Annotated[str | None, Query(max_length=80, description="e.g. invoice.finalized")] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    stmt = filtered(
        select(Event).where(Event.org_id == ctx.org_id), (Event.type, type), (Event.object_id, object_id)
    )
    result = paginate(
        ctx,
        stmt,
        Event,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    views = [EventView.model_validate(e).payload() for e in result.items]
    return exact_response(envelope("/v1/events", views, result.has_more))


@api.get("/events/{event_id}", response_model=EventView, summary="Retrieve an event")
def get_event(event_id: str, ctx: CtxDep) -> Response:
    return exact_response(EventView.model_validate(ctx.get(Event, event_id, label="event")).payload())


@api.get("/payments", response_model=ListOf[PaymentView], summary="List payments")
def list_payments(
    ctx: CtxDep,
    page: ListParamsDep,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, object]:
    stmt = filtered(select(Payment).where(Payment.org_id == ctx.org_id), (Payment.invoice_id, invoice_id))
    result = paginate(
        ctx,
        stmt,
        Payment,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/payments", [PaymentView.of(p) for p in result.items], result.has_more)

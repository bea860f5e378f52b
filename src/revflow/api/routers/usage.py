"""/v1/billable_metrics, /v1/usage_events, /v1/customers/{id}/usage"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, exact_response, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_usage import MetricCreate, ThresholdCreate
from revflow.api.usage_groups import SingleEventGroups
from revflow.domain.errors import InvalidInput
from revflow.services import usage_ingest, usage_live, usage_metrics, usage_thresholds, usage_void
from revflow.services.context import Ctx
from revflow.services.pagination import paginate
from revflow.services.views_usage import (
    BillableMetricView,
    CustomerUsageView,
    UsageEventView,
    UsageThresholdView,
)
from revflow.storage.types import decode_json
from revflow.storage.usage_models import UsageEvent, UsageLateEvent

api = router("usage")

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["transaction_id", "metric_code"],
    "properties": {
        "transaction_id": {
            "type": "string",
            "maxLength": 255,
            "description": "Idempotency key of the event.",
        },
        "metric_code": {"type": "string", "maxLength": 100},
        "customer_id": {"type": "string"},
        "external_customer_id": {"type": "string"},
        "subscription_id": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time", "description": "Default: now."},
        "properties": {"type": "object"},
    },
}


class BadJson(InvalidInput):
    code = "invalid_json"
    status = 400


def _body(raw: bytes) -> Any:
    try:
        return decode_json(raw)
    except ValueError:
        raise BadJson("The request body is not valid JSON.") from None


def _json(payload: Any, status: int) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


@api.post("/billable_metrics", status_code=201, response_model=BillableMetricView, summary="Create a metric")
def create_metric(body: MetricCreate, ctx: CtxDep) -> BillableMetricView:
    return BillableMetricView.of(usage_metrics.create_metric(ctx, **body.model_dump()))


@api.get("/billable_metrics", response_model=ListOf[BillableMetricView], summary="List metrics")
def list_metrics(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    result = usage_metrics.list_metrics(
        ctx, limit=page.limit, starting_after=page.starting_after, ending_before=page.ending_before
    )
    return envelope("/v1/billable_metrics", [BillableMetricView.of(m) for m in result.items], result.has_more)


@api.get("/billable_metrics/{metric_id}", response_model=BillableMetricView, summary="Retrieve a metric")
def get_metric(metric_id: str, ctx: CtxDep) -> BillableMetricView:
    return BillableMetricView.of(usage_metrics.get_metric(ctx, metric_id))


def _event(raw: bytes) -> Any:
    event = usage_ingest.decode_event(raw)
    return _body(raw) if event is None else event


def _answer(outcome: usage_ingest.Outcome) -> Response:
    if outcome.status == "rejected":
        raise InvalidInput(outcome.message or "rejected", code=outcome.code)
    return _json(outcome.payload(), 201 if outcome.status == "accepted" else 200)


def _ingest_one(ctx: Ctx, raw: bytes) -> Response:
    [outcome] = usage_ingest.ingest(ctx, [_event(raw)])
    return _answer(outcome)


def _groups(request: Request) -> SingleEventGroups:
    state = request.app.state
    groups: SingleEventGroups | None = getattr(state, "usage_groups", None)
    if groups is None:
        groups = state.usage_groups = SingleEventGroups(state.container)
    return groups


@api.post(
    "/usage_events",
    summary="Record one usage event",
    description="201 accepted, 200 duplicate (same transaction_id), 422 rejected with a reason code. "
    "Concurrent single events of one key are stored together (group commit); the answer comes after the "
    "event is stored.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT_SCHEMA}}}
    },
)
async def create_event(request: Request, ctx: CtxDep) -> Response:
    raw = await request.body()
    if request.headers.get("idempotency-key") is not None:  # its answer is stored with the effect
        return await run_in_threadpool(_ingest_one, ctx, raw)
    event = _event(raw)
    # The request's own transaction (authentication) ends here, so that its pooled connection is free
    # while the event is stored with the concurrent ones (group commit, ADR 0039).
    await run_in_threadpool(ctx.session.commit)
    return _answer(await _groups(request).submit(ctx, event))


def _ingest_batch(ctx: Ctx, raw: bytes) -> Response:
    events = usage_ingest.decode_batch(raw)
    if events is None:  # some event (or the body) is not well-formed: find out what, event by event
        body = _body(raw)
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or set(body) != {"events"}:
            raise InvalidInput('The body must be {"events": [...]}.', code="invalid_batch")
        if not 1 <= len(events) <= usage_ingest.MAX_BATCH:
            raise InvalidInput(
                f"A batch holds 1 to {usage_ingest.MAX_BATCH} events, got {len(events)}.",
                code="batch_too_large",
            )
    outcomes = usage_ingest.ingest(ctx, events)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for o in outcomes:
        counts[o.status] += 1
    payload = {"object": "usage_event_batch", **counts, "data": [o.payload() for o in outcomes]}
    return _json(payload, 200)


@api.post(
    "/usage_events/batch",
    summary="Record up to 1,000 usage events",
    description="Each event is accepted, duplicate or rejected on its own; the good events are stored.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "maxItems": 1000, "items": _EVENT_SCHEMA}},
                    }
                }
            },
        }
    },
)
async def create_events(request: Request, ctx: CtxDep) -> Response:
    raw = await request.body()
    return await run_in_threadpool(_ingest_batch, ctx, raw)


EventStatus = Literal["billable", "unmatched", "filtered", "voided", "invalid", "late"]


@api.get("/usage_events", response_model=ListOf[UsageEventView], summary="List usage events")
def list_events(
    ctx: CtxDep,
    page: ListParamsDep,
    status: EventStatus | None = None,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    metric_code: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    stmt = select(UsageEvent).where(UsageEvent.org_id == ctx.org_id)
    if status == "late":  # accepted after their period was invoiced (ADR 0034)
        late = select(UsageLateEvent.event_id).where(UsageLateEvent.org_id == ctx.org_id)
        stmt = stmt.where(UsageEvent.id.in_(late))
    elif status is not None:
        stmt = stmt.where(UsageEvent.status == status)
    if customer_id is not None:
        stmt = stmt.where(UsageEvent.customer_id == customer_id)
    if metric_code is not None:
        stmt = stmt.where(UsageEvent.metric_code == metric_code)
    result = paginate(
        ctx,
        stmt,
        UsageEvent,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    lates = {
        row.event_id: row
        for row in ctx.session.scalars(
            select(UsageLateEvent).where(
                UsageLateEvent.org_id == ctx.org_id,
                UsageLateEvent.event_id.in_([e.id for e in result.items]),
            )
        )
    }
    views = [UsageEventView.of(e, late=lates.get(e.id)).payload() for e in result.items]
    return exact_response(envelope("/v1/usage_events", views, result.has_more))


@api.get(
    "/customers/{customer_id}/usage",
    response_model=CustomerUsageView,
    summary="Current usage of a customer",
    description="Per usage price of each live subscription: units and amount so far in the current period "
    "and a projection for the whole period. The invoice bills the same amount once the period closes.",
)
def customer_usage(customer_id: str, ctx: CtxDep) -> CustomerUsageView:
    now, subs = usage_live.customer_usage(ctx, customer_id)
    return CustomerUsageView.model_validate(
        {"customer_id": customer_id, "as_of": now, "subscriptions": [s.payload() for s in subs]}
    )


@api.post("/usage_events/{usage_event_id}/void", response_model=UsageEventView, summary="Void a usage event")
def void_event(usage_event_id: str, ctx: CtxDep) -> Response:
    """Only before the event's period is invoiced (409 ``period_invoiced`` after: use a credit note)."""
    return exact_response(UsageEventView.of(usage_void.void_event(ctx, usage_event_id)).payload())


@api.post(
    "/usage_thresholds",
    status_code=201,
    response_model=UsageThresholdView,
    summary="Create a usage threshold",
)
def create_threshold(body: ThresholdCreate, ctx: CtxDep) -> UsageThresholdView:
    return UsageThresholdView.of(usage_thresholds.create_threshold(ctx, **body.model_dump()))


@api.get("/usage_thresholds", response_model=ListOf[UsageThresholdView], summary="List usage thresholds")
def list_thresholds(
    ctx: CtxDep, page: ListParamsDep, subscription_id: Annotated[str | None, Query(max_length=40)] = None
) -> dict[str, object]:
    result = usage_thresholds.list_thresholds(
        ctx,
        subscription_id=subscription_id,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/usage_thresholds", [UsageThresholdView.of(t) for t in result.items], result.has_more)

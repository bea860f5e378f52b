"""/v1/alerts"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.services import alert_triage as svc
from revflow.services.views_quotes import AlertView
from revflow.storage.models import Alert

api = router("alerts")

Status = Literal["open", "acknowledged", "resolved"]


@api.get("/alerts", response_model=ListOf[AlertView], summary="List alerts")
def list_alerts(
    ctx: CtxDep,
    page: ListParamsDep,
    type: Annotated[str | None, Query(max_length=60, examples=["quote_discrepancy"])] = None,
    status: Status | None = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, object]:
    result = svc.list_alerts(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        type=type,
        status=status,
        object_id=object_id,
    )
    return envelope("/v1/alerts", [AlertView.of(a) for a in result.items], result.has_more)


@api.get("/alerts/{alert_id}", response_model=AlertView, summary="Retrieve an alert")
def get_alert(alert_id: str, ctx: CtxDep) -> AlertView:
    return AlertView.of(ctx.get(Alert, alert_id, label="alert"))


@api.post("/alerts/{alert_id}/acknowledge", response_model=AlertView, summary="Acknowledge an alert")
def acknowledge_alert(alert_id: str, ctx: CtxDep) -> AlertView:
    return AlertView.of(svc.acknowledge_alert(ctx, alert_id))


@api.post("/alerts/{alert_id}/resolve", response_model=AlertView, summary="Resolve an alert")
def resolve_alert(alert_id: str, ctx: CtxDep) -> AlertView:
    return AlertView.of(svc.resolve_alert(ctx, alert_id))

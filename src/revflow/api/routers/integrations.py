"""/v1/integrations and /v1/sync_jobs"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import select

from revflow.api.routers._common import ContainerDep, CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_integrations import IntegrationCreate, IntegrationUpdate
from revflow.services import flows
from revflow.services import integrations as svc
from revflow.services.pagination import filtered, paginate
from revflow.services.views_integrations import IntegrationView, SyncJobView
from revflow.storage.connector_models import Integration, SyncJob

api = router("integrations")


@api.post("/integrations", status_code=201, response_model=IntegrationView, summary="Connect a CRM")
def create_integration(body: IntegrationCreate, ctx: CtxDep, container: ContainerDep) -> IntegrationView:
    integration = svc.create_integration(
        ctx,
        box=container.secret_box,
        system=body.system,
        credentials=body.credentials,
        owner=body.owner,
        description=body.description,
        enabled=body.enabled,
        settings=body.settings.given(),
    )
    return IntegrationView.of(integration)


@api.get("/integrations", response_model=ListOf[IntegrationView], summary="List integrations")
def list_integrations(
    ctx: CtxDep,
    page: ListParamsDep,
    system: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, object]:
    stmt = filtered(select(Integration).where(Integration.org_id == ctx.org_id), (Integration.system, system))
    result = paginate(
        ctx,
        stmt,
        Integration,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/integrations", [IntegrationView.of(i) for i in result.items], result.has_more)


@api.get("/integrations/flows", summary="The data-flow map: objects, direction, trigger, owner, last success")
def integration_flows(ctx: CtxDep) -> dict[str, Any]:
    data = flows.integration_flows(ctx.session, org_id=ctx.org_id, now=ctx.now())
    return {"object": "list", "url": "/v1/integrations/flows", "has_more": False, "data": data}


@api.get("/integrations/{integration_id}", response_model=IntegrationView, summary="Retrieve an integration")
def get_integration(integration_id: str, ctx: CtxDep) -> IntegrationView:
    return IntegrationView.of(ctx.get(Integration, integration_id, label="integration"))


@api.patch(
    "/integrations/{integration_id}",
    response_model=IntegrationView,
    summary="Change an integration's owner, description, settings, credentials or enabled flag",
)
def update_integration(
    integration_id: str, body: IntegrationUpdate, ctx: CtxDep, container: ContainerDep
) -> IntegrationView:
    changes = body.model_dump(exclude_unset=True)
    if body.settings is not None:
        changes["settings"] = body.settings.given()
    return IntegrationView.of(
        svc.update_integration(ctx, integration_id, box=container.secret_box, changes=changes)
    )


@api.delete("/integrations/{integration_id}", summary="Disconnect a CRM (entity mappings stay)")
def delete_integration(integration_id: str, ctx: CtxDep) -> dict[str, Any]:
    return {"id": svc.delete_integration(ctx, integration_id), "object": "integration", "deleted": True}


@api.get("/sync_jobs", response_model=ListOf[SyncJobView], summary="List sync jobs")
def list_sync_jobs(
    ctx: CtxDep,
    page: ListParamsDep,
    integration_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=30)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, object]:
    stmt = filtered(
        select(SyncJob).where(SyncJob.org_id == ctx.org_id),
        (SyncJob.integration_id, integration_id),
        (SyncJob.status, status),
        (SyncJob.kind, kind),
        (SyncJob.object_id, object_id),
    )
    result = paginate(
        ctx,
        stmt,
        SyncJob,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/sync_jobs", [SyncJobView.of(j) for j in result.items], result.has_more)


@api.get("/sync_jobs/{job_id}", response_model=SyncJobView, summary="Retrieve a sync job")
def get_sync_job(job_id: str, ctx: CtxDep) -> SyncJobView:
    return SyncJobView.of(ctx.get(SyncJob, job_id, label="sync_job"))

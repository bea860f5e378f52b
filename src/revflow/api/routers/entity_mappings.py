"""/v1/entity_mappings"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import select

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_hub import EntityMappingCreate, EntityMappingUpdate
from revflow.services import entity_mappings as svc
from revflow.services.pagination import filtered, paginate
from revflow.services.views_hub import EntityMappingView
from revflow.storage.hub_models import EntityMapping

api = router("entity mappings")


@api.post(
    "/entity_mappings",
    status_code=201,
    response_model=EntityMappingView,
    summary="Link a Revflow object to its counterpart in a connected system",
)
def create_mapping(body: EntityMappingCreate, ctx: CtxDep) -> EntityMappingView:
    return EntityMappingView.of(svc.create_mapping(ctx, **body.model_dump()))


@api.get("/entity_mappings", response_model=ListOf[EntityMappingView], summary="List entity mappings")
def list_mappings(
    ctx: CtxDep,
    page: ListParamsDep,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
    system: Annotated[str | None, Query(max_length=40)] = None,
    external_type: Annotated[str | None, Query(max_length=40)] = None,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, object]:
    stmt = filtered(
        select(EntityMapping).where(EntityMapping.org_id == ctx.org_id),
        (EntityMapping.object_type, object_type),
        (EntityMapping.object_id, object_id),
        (EntityMapping.system, system),
        (EntityMapping.external_type, external_type),
        (EntityMapping.external_id, external_id),
    )
    result = paginate(
        ctx,
        stmt,
        EntityMapping,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope("/v1/entity_mappings", [EntityMappingView.of(e) for e in result.items], result.has_more)


@api.get("/entity_mappings/{mapping_id}", response_model=EntityMappingView, summary="Retrieve a mapping")
def get_mapping(mapping_id: str, ctx: CtxDep) -> EntityMappingView:
    return EntityMappingView.of(ctx.get(EntityMapping, mapping_id, label="entity_mapping"))


@api.patch(
    "/entity_mappings/{mapping_id}",
    response_model=EntityMappingView,
    summary="Point a mapping at another external id, or change its metadata",
)
def update_mapping(mapping_id: str, body: EntityMappingUpdate, ctx: CtxDep) -> EntityMappingView:
    changes = body.model_dump(exclude_unset=True)
    return EntityMappingView.of(svc.update_mapping(ctx, mapping_id, changes=changes))


@api.delete("/entity_mappings/{mapping_id}", summary="Unlink")
def delete_mapping(mapping_id: str, ctx: CtxDep) -> dict[str, Any]:
    return {"id": svc.delete_mapping(ctx, mapping_id), "object": "entity_mapping", "deleted": True}

"""/v1/products, /v1/prices, /v1/plans"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Path, Query

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_catalog import (
    PlanCreate,
    PlanItemIn,
    PlanUpdate,
    PlanVersionCreate,
    PriceCreate,
    PriceUpdate,
    ProductCreate,
    ProductUpdate,
)
from revflow.services import catalog as svc
from revflow.services.catalog import PlanItem, PriceType
from revflow.services.views_catalog import PlanVersionView, PlanView, PriceView, ProductView
from revflow.storage.models import Plan, Price, Product

api = router("catalog")


def _items(items: list[PlanItemIn]) -> list[PlanItem]:
    return [PlanItem(price_id=i.price_id, quantity=Decimal(i.quantity)) for i in items]


# --- products ---------------------------------------------------------------------------------------


@api.post("/products", status_code=201, response_model=ProductView, summary="Create a product")
def create_product(body: ProductCreate, ctx: CtxDep) -> ProductView:
    return ProductView.of(svc.create_product(ctx, **body.model_dump()))


@api.get("/products", response_model=ListOf[ProductView], summary="List products")
def list_products(ctx: CtxDep, page: ListParamsDep, active: bool | None = None) -> dict[str, object]:
    result = svc.list_products(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        active=active,
    )
    return envelope("/v1/products", [ProductView.of(p) for p in result.items], result.has_more)


@api.get("/products/{product_id}", response_model=ProductView, summary="Retrieve a product")
def get_product(product_id: str, ctx: CtxDep) -> ProductView:
    return ProductView.of(ctx.get(Product, product_id, label="product"))


@api.patch("/products/{product_id}", response_model=ProductView, summary="Update or archive a product")
def update_product(product_id: str, body: ProductUpdate, ctx: CtxDep) -> ProductView:
    return ProductView.of(svc.update_product(ctx, product_id, changes=body.model_dump(exclude_unset=True)))


# --- prices -----------------------------------------------------------------------------------------


@api.post("/prices", status_code=201, response_model=PriceView, summary="Create a price")
def create_price(body: PriceCreate, ctx: CtxDep) -> PriceView:
    data = body.model_dump(exclude_none=True, exclude={"tiers"})
    tiers = None if body.tiers is None else [t.model_dump() for t in body.tiers]
    return PriceView.of(svc.create_price(ctx, **data, tiers=tiers))


@api.get("/prices", response_model=ListOf[PriceView], summary="List prices")
def list_prices(
    ctx: CtxDep,
    page: ListParamsDep,
    product_id: Annotated[str | None, Query(max_length=40)] = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    active: bool | None = None,
    type: PriceType | None = None,
) -> dict[str, object]:
    result = svc.list_prices(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        product_id=product_id,
        currency=currency,
        active=active,
        type=type,
    )
    return envelope("/v1/prices", [PriceView.of(p) for p in result.items], result.has_more)


@api.get("/prices/{price_id}", response_model=PriceView, summary="Retrieve a price")
def get_price(price_id: str, ctx: CtxDep) -> PriceView:
    return PriceView.of(ctx.get(Price, price_id, label="price"))


@api.patch(
    "/prices/{price_id}",
    response_model=PriceView,
    summary="Update a price's nickname or metadata, or archive it",
)
def update_price(price_id: str, body: PriceUpdate, ctx: CtxDep) -> PriceView:
    return PriceView.of(svc.update_price(ctx, price_id, changes=body.model_dump(exclude_unset=True)))


# --- plans ------------------------------------------------------------------------------------------


@api.post("/plans", status_code=201, response_model=PlanView, summary="Create a plan (version 1)")
def create_plan(body: PlanCreate, ctx: CtxDep) -> PlanView:
    plan = svc.create_plan(
        ctx,
        code=body.code,
        name=body.name,
        description=body.description,
        items=_items(body.items),
        metadata=body.metadata,
    )
    return svc.plan_view(ctx, plan)


@api.get("/plans", response_model=ListOf[PlanView], summary="List plans")
def list_plans(
    ctx: CtxDep,
    page: ListParamsDep,
    active: bool | None = None,
    code: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, object]:
    result = svc.list_plans(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        active=active,
        code=code,
    )
    return envelope("/v1/plans", [svc.plan_view(ctx, p) for p in result.items], result.has_more)


@api.get("/plans/{plan_id}", response_model=PlanView, summary="Retrieve a plan (its current version)")
def get_plan(plan_id: str, ctx: CtxDep) -> PlanView:
    return svc.plan_view(ctx, ctx.get(Plan, plan_id, label="plan"))


@api.patch("/plans/{plan_id}", response_model=PlanView, summary="Update or archive a plan")
def update_plan(plan_id: str, body: PlanUpdate, ctx: CtxDep) -> PlanView:
    return svc.plan_view(ctx, svc.update_plan(ctx, plan_id, changes=body.model_dump(exclude_unset=True)))


@api.post(
    "/plans/{plan_id}/versions",
    status_code=201,
    response_model=PlanVersionView,
    summary="Replace a plan's prices as a new version",
)
def create_plan_version(plan_id: str, body: PlanVersionCreate, ctx: CtxDep) -> PlanVersionView:
    version = svc.create_plan_version(ctx, plan_id, items=_items(body.items))
    return svc.plan_version_view(ctx, version)


@api.get(
    "/plans/{plan_id}/versions", response_model=ListOf[PlanVersionView], summary="List a plan's versions"
)
def list_plan_versions(plan_id: str, ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    result = svc.list_plan_versions(
        ctx, plan_id, limit=page.limit, starting_after=page.starting_after, ending_before=page.ending_before
    )
    return envelope(
        f"/v1/plans/{plan_id}/versions",
        [svc.plan_version_view(ctx, v) for v in result.items],
        result.has_more,
    )


@api.get(
    "/plans/{plan_id}/versions/{version}",
    response_model=PlanVersionView,
    summary="Retrieve one version of a plan",
)
def get_plan_version(
    plan_id: str, version: Annotated[int, Path(ge=1, le=1_000_000)], ctx: CtxDep
) -> PlanVersionView:
    return svc.plan_version_view(ctx, svc.get_plan_version(ctx, plan_id, version=version))

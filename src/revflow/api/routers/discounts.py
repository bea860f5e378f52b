"""/v1/coupons, /v1/promotion_codes and the discounts of customers and subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from revflow.api.routers._common import CtxDep, ListParams, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_discounts import (
    CouponCreate,
    CouponUpdate,
    DiscountCreate,
    PromotionCodeCreate,
    PromotionCodeUpdate,
)
from revflow.services import coupons as svc
from revflow.services.context import Ctx
from revflow.services.views_discounts import CouponView, DiscountView, PromotionCodeView
from revflow.storage.models import Coupon, Customer, Discount, PromotionCode, Subscription

api = router("discounts")


@api.post("/coupons", status_code=201, response_model=CouponView, summary="Create a coupon")
def create_coupon(body: CouponCreate, ctx: CtxDep) -> CouponView:
    return svc.coupon_view(ctx, svc.create_coupon(ctx, **body.model_dump(exclude_none=True)))


@api.get("/coupons", response_model=ListOf[CouponView], summary="List coupons")
def list_coupons(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    result = svc.list_coupons(
        ctx, limit=page.limit, starting_after=page.starting_after, ending_before=page.ending_before
    )
    return envelope("/v1/coupons", [svc.coupon_view(ctx, c) for c in result.items], result.has_more)


@api.get("/coupons/{coupon_id}", response_model=CouponView, summary="Retrieve a coupon")
def get_coupon(coupon_id: str, ctx: CtxDep) -> CouponView:
    return svc.coupon_view(ctx, ctx.get(Coupon, coupon_id, label="coupon"))


@api.patch("/coupons/{coupon_id}", response_model=CouponView, summary="Rename a coupon or edit its metadata")
def update_coupon(coupon_id: str, body: CouponUpdate, ctx: CtxDep) -> CouponView:
    changes = body.model_dump(exclude_unset=True)
    return svc.coupon_view(ctx, svc.update_coupon(ctx, coupon_id, changes=changes))


@api.delete(
    "/coupons/{coupon_id}",
    response_model=CouponView,
    summary="Delete a coupon: no new redemptions; discounts already applied keep applying",
)
def delete_coupon(coupon_id: str, ctx: CtxDep) -> CouponView:
    return svc.coupon_view(ctx, svc.delete_coupon(ctx, coupon_id))


@api.post(
    "/promotion_codes", status_code=201, response_model=PromotionCodeView, summary="Create a promotion code"
)
def create_promotion_code(body: PromotionCodeCreate, ctx: CtxDep) -> PromotionCodeView:
    promo = svc.create_promotion_code(ctx, **body.model_dump(exclude_none=True))
    return PromotionCodeView.model_validate(promo)


@api.get("/promotion_codes", response_model=ListOf[PromotionCodeView], summary="List promotion codes")
def list_promotion_codes(
    ctx: CtxDep,
    page: ListParamsDep,
    coupon_id: Annotated[str | None, Query(max_length=40)] = None,
    code: Annotated[str | None, Query(max_length=100, description="Case-insensitive")] = None,
    active: bool | None = None,
) -> dict[str, object]:
    result = svc.list_promotion_codes(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        coupon_id=coupon_id,
        code=code,
        active=active,
    )
    data = [PromotionCodeView.model_validate(p) for p in result.items]
    return envelope("/v1/promotion_codes", data, result.has_more)


@api.get(
    "/promotion_codes/{promotion_code_id}",
    response_model=PromotionCodeView,
    summary="Retrieve a promotion code",
)
def get_promotion_code(promotion_code_id: str, ctx: CtxDep) -> PromotionCodeView:
    return PromotionCodeView.model_validate(ctx.get(PromotionCode, promotion_code_id, label="promotion code"))


@api.patch(
    "/promotion_codes/{promotion_code_id}",
    response_model=PromotionCodeView,
    summary="Activate or deactivate a promotion code",
)
def update_promotion_code(
    promotion_code_id: str, body: PromotionCodeUpdate, ctx: CtxDep
) -> PromotionCodeView:
    promo = svc.update_promotion_code(ctx, promotion_code_id, active=body.active)
    return PromotionCodeView.model_validate(promo)


def _discounts(
    ctx: Ctx, url: str, page: ListParams, *, customer_id: str | None, subscription_id: str | None
) -> dict[str, object]:
    result = svc.list_discounts(
        ctx,
        customer_id=customer_id,
        subscription_id=subscription_id,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope(url, [svc.discount_view(ctx, d) for d in result.items], result.has_more)


@api.post(
    "/customers/{customer_id}/discounts",
    status_code=201,
    response_model=DiscountView,
    summary="Apply a coupon or promotion code to a customer",
)
def apply_to_customer(customer_id: str, body: DiscountCreate, ctx: CtxDep) -> DiscountView:
    discount = svc.apply_discount(ctx, customer_id=customer_id, **body.model_dump(exclude_none=True))
    return svc.discount_view(ctx, discount)


@api.get(
    "/customers/{customer_id}/discounts",
    response_model=ListOf[DiscountView],
    summary="List the discounts in force on a customer (not those of its subscriptions)",
)
def list_customer_discounts(customer_id: str, ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    ctx.get(Customer, customer_id, label="customer")
    url = f"/v1/customers/{customer_id}/discounts"
    return _discounts(ctx, url, page, customer_id=customer_id, subscription_id=None)


@api.post(
    "/subscriptions/{subscription_id}/discounts",
    status_code=201,
    response_model=DiscountView,
    summary="Apply a coupon or promotion code to a subscription",
)
def apply_to_subscription(subscription_id: str, body: DiscountCreate, ctx: CtxDep) -> DiscountView:
    discount = svc.apply_discount(ctx, subscription_id=subscription_id, **body.model_dump(exclude_none=True))
    return svc.discount_view(ctx, discount)


@api.get(
    "/subscriptions/{subscription_id}/discounts",
    response_model=ListOf[DiscountView],
    summary="List the discounts in force on a subscription",
)
def list_subscription_discounts(subscription_id: str, ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    ctx.get(Subscription, subscription_id, label="subscription")
    url = f"/v1/subscriptions/{subscription_id}/discounts"
    return _discounts(ctx, url, page, customer_id=None, subscription_id=subscription_id)


@api.get("/discounts/{discount_id}", response_model=DiscountView, summary="Retrieve a discount")
def get_discount(discount_id: str, ctx: CtxDep) -> DiscountView:
    return svc.discount_view(ctx, ctx.get(Discount, discount_id, label="discount"))


@api.delete("/discounts/{discount_id}", response_model=DiscountView, summary="Remove a discount")
def remove_discount(discount_id: str, ctx: CtxDep) -> DiscountView:
    return svc.discount_view(ctx, svc.remove_discount(ctx, discount_id))

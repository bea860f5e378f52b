"""/v1/subscriptions"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_subscriptions import SubscriptionCancel, SubscriptionChange, SubscriptionCreate
from revflow.services import subscriptions as svc
from revflow.services.views_subscriptions import SubscriptionView
from revflow.storage.models import Subscription

api = router("subscriptions")


def _view(ctx: Any, sub: Subscription) -> SubscriptionView:
    return SubscriptionView.of(sub, at=svc.now_for(ctx, sub.test_clock_id))


@api.post("/subscriptions", status_code=201, response_model=SubscriptionView, summary="Create a subscription")
def create_subscription(body: SubscriptionCreate, ctx: CtxDep) -> SubscriptionView:
    data = body.model_dump(exclude={"coupon_id", "promotion_code"}, exclude_none=True)
    if body.items is not None:
        data["items"] = [i.model_dump() for i in body.items]
    if body.quantity is not None:
        data["quantity"] = Decimal(body.quantity)
    sub = svc.create_subscription(ctx, **data, coupon_id=body.coupon_id, promotion_code=body.promotion_code)
    return _view(ctx, sub)


@api.get("/subscriptions", response_model=ListOf[SubscriptionView], summary="List subscriptions")
def list_subscriptions(
    ctx: CtxDep,
    page: ListParamsDep,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    plan_id: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, object]:
    result = svc.list_subscriptions(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        customer_id=customer_id,
        status=status,
        plan_id=plan_id,
    )
    return envelope("/v1/subscriptions", [_view(ctx, s) for s in result.items], result.has_more)


@api.get(
    "/subscriptions/{subscription_id}", response_model=SubscriptionView, summary="Retrieve a subscription"
)
def get_subscription(subscription_id: str, ctx: CtxDep) -> SubscriptionView:
    return _view(ctx, ctx.get(Subscription, subscription_id, label="subscription"))


@api.post(
    "/subscriptions/{subscription_id}/change",
    response_model=SubscriptionView,
    summary="Change plan, prices or quantity",
)
def change_subscription(subscription_id: str, body: SubscriptionChange, ctx: CtxDep) -> SubscriptionView:
    items = [i.model_dump() for i in body.items] if body.items is not None else None
    sub = svc.change_subscription(
        ctx,
        subscription_id,
        plan_id=body.plan_id,
        plan_version=body.plan_version,
        items=items,
        quantity=None if body.quantity is None else Decimal(body.quantity),
        proration_behavior=body.proration_behavior,
        effective=body.effective,
    )
    return _view(ctx, sub)


@api.post(
    "/subscriptions/{subscription_id}/cancel",
    response_model=SubscriptionView,
    summary="Cancel now or at the period end",
)
def cancel_subscription(
    subscription_id: str, ctx: CtxDep, body: SubscriptionCancel | None = None
) -> SubscriptionView:
    body = body or SubscriptionCancel()
    return _view(ctx, svc.cancel_subscription(ctx, subscription_id, at=body.at, prorate=body.prorate))


@api.post(
    "/subscriptions/{subscription_id}/reactivate",
    response_model=SubscriptionView,
    summary="Undo a cancellation at the period end",
)
def reactivate_subscription(subscription_id: str, ctx: CtxDep) -> SubscriptionView:
    return _view(ctx, svc.reactivate_subscription(ctx, subscription_id))


@api.post("/subscriptions/{subscription_id}/pause", response_model=SubscriptionView, summary="Pause")
def pause_subscription(subscription_id: str, ctx: CtxDep) -> SubscriptionView:
    return _view(ctx, svc.pause_subscription(ctx, subscription_id))


@api.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionView, summary="Resume")
def resume_subscription(subscription_id: str, ctx: CtxDep) -> SubscriptionView:
    return _view(ctx, svc.resume_subscription(ctx, subscription_id))

"""The public shape of coupons, promotion codes and discounts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from revflow.services.views import _View
from revflow.storage import models as m

__all__ = ["CouponView", "DiscountView", "PromotionCodeView"]


class CouponView(_View):
    id: str
    object: Literal["coupon"] = "coupon"
    name: str
    percent_off: str | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    max_redemptions: int | None
    times_redeemed: int
    redeem_by: datetime | None
    applies_to_products: list[str]
    applies_to_plans: list[str]
    #: Whether the coupon can still be redeemed (not past ``redeem_by`` nor its redemption limit).
    valid: bool
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, c: m.Coupon, *, now: datetime) -> CouponView:
        expired = c.redeem_by is not None and c.redeem_by <= now
        exhausted = c.max_redemptions is not None and c.times_redeemed >= c.max_redemptions
        return cls(
            id=c.id,
            name=c.name,
            percent_off=None if c.percent_off is None else format(c.percent_off.normalize(), "f"),
            amount_off=c.amount_off,
            currency=c.currency,
            duration=c.duration,
            duration_in_months=c.duration_in_months,
            max_redemptions=c.max_redemptions,
            times_redeemed=c.times_redeemed,
            redeem_by=c.redeem_by,
            applies_to_products=list(c.applies_to_products),
            applies_to_plans=list(c.applies_to_plans),
            valid=not (expired or exhausted),
            metadata=c.metadata_,
            created_at=c.created_at,
        )


class PromotionCodeView(_View):
    id: str
    object: Literal["promotion_code"] = "promotion_code"
    code: str
    coupon_id: str
    active: bool
    max_redemptions: int | None
    times_redeemed: int
    expires_at: datetime | None
    created_at: datetime


class DiscountView(_View):
    id: str
    object: Literal["discount"] = "discount"
    coupon: CouponView
    promotion_code_id: str | None
    customer_id: str | None
    subscription_id: str | None
    start: datetime
    end: datetime | None
    #: For ``once`` coupons: the billing period start the discount was used on (None until then).
    applied_period_start: datetime | None
    removed_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, d: m.Discount, *, coupon: m.Coupon, now: datetime) -> DiscountView:
        return cls(
            id=d.id,
            coupon=CouponView.of(coupon, now=now),
            promotion_code_id=d.promotion_code_id,
            customer_id=d.customer_id,
            subscription_id=d.subscription_id,
            start=d.start,
            end=d.end,
            applied_period_start=d.applied_period_start,
            removed_at=d.removed_at,
            created_at=d.created_at,
        )

"""Request bodies for coupons, promotion codes and discounts.

Shapes only (strict types, lengths); the business rules and their stable codes live in
:mod:`revflow.services.coupons`, so direct callers of the service get the same answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic_core import PydanticCustomError

from revflow.api.schemas import Amount, CurrencyCode, DecimalStr, Instant, Metadata, MetadataPatch, Name

__all__ = [
    "CouponCreate",
    "CouponUpdate",
    "DiscountCreate",
    "PromotionCodeCreate",
    "PromotionCodeUpdate",
]

ObjectId = Annotated[StrictStr, Field(min_length=1, max_length=40)]
Code = Annotated[StrictStr, Field(min_length=1, max_length=100, examples=["SPRING24"])]
Count = Annotated[StrictInt, Field(ge=-(10**9), le=10**9)]


def _exact_number(value: Any) -> Any:
    """An integer becomes its decimal string; a JSON float is refused (it is not exact)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise PydanticCustomError("decimal_string", 'give an integer or a decimal string such as "12.5"')
    return value


Percent = Annotated[DecimalStr, BeforeValidator(_exact_number)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponCreate(_In):
    name: Name
    percent_off: Percent | None = Field(
        default=None, description='Above 0 and at most 100, up to 4 decimals: 20 or "12.5".'
    )
    amount_off: Amount | None = Field(default=None, description="Minor units off each invoice.")
    currency: CurrencyCode | None = Field(default=None, description="Required with amount_off.")
    duration: Literal["once", "repeating", "forever"]
    duration_in_months: Count | None = Field(default=None, description="Required with repeating.")
    max_redemptions: Count | None = None
    redeem_by: Instant | None = None
    applies_to_products: Annotated[list[ObjectId], Field(max_length=100)] = Field(
        default_factory=list, description="Product ids; empty: every product."
    )
    applies_to_plans: Annotated[list[ObjectId], Field(max_length=100)] = Field(
        default_factory=list, description="Plan ids; empty: every plan."
    )
    metadata: Metadata = Field(default_factory=dict)


class CouponUpdate(_In):
    name: Name | None = None
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    @field_validator("name", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class PromotionCodeCreate(_In):
    coupon_id: ObjectId
    code: Code = Field(description="Letters, digits, '-' and '_'; unique case-insensitively.")
    active: StrictBool = True
    max_redemptions: Count | None = None
    expires_at: Instant | None = None


class PromotionCodeUpdate(_In):
    active: StrictBool | None = None


class DiscountCreate(_In):
    coupon_id: ObjectId | None = Field(default=None, description="Give this or promotion_code.")
    promotion_code: Code | None = Field(default=None, description="The customer-facing code, any case.")
    start: Instant | None = Field(
        default=None,
        description="Defaults to the subscription's current period start, or now for a customer.",
    )

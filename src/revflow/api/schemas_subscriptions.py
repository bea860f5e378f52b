"""Request bodies for subscriptions and test clocks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from revflow.api.schemas import CurrencyCode, Instant, Metadata, _In

__all__ = [
    "ClockAdvance",
    "ClockCreate",
    "SubscriptionCancel",
    "SubscriptionChange",
    "SubscriptionCreate",
    "SubscriptionItemIn",
]

Id = Annotated[StrictStr, Field(max_length=40)]
Quantity = Annotated[StrictInt, Field(ge=0, le=10**9)]
ProrationBehavior = Literal["create_prorations", "always_invoice", "none"]


class SubscriptionItemIn(_In):
    price_id: Id
    quantity: Quantity = 1


class SubscriptionCreate(_In):
    customer_id: Id
    plan_id: Id | None = None
    items: Annotated[list[SubscriptionItemIn], Field(max_length=20)] | None = None
    quantity: Quantity | None = Field(default=None, description="With plan_id: seats of its licensed price.")
    currency: CurrencyCode | None = None
    start_at: Instant | None = Field(default=None, description="Default now; may be in the past or future.")
    trial_days: Annotated[StrictInt, Field(ge=1, le=730)] | None = None
    trial_end: Instant | None = None
    trial_amount: Annotated[StrictInt, Field(ge=0, le=10**15)] = Field(
        default=0, description="Fee for the trial period (0: a free trial)."
    )
    billing_cycle_day: Annotated[StrictInt, Field(ge=1, le=31)] | None = Field(
        default=None, description="Renew on this day of the month (first period prorated)."
    )
    collection_method: Literal["charge_automatically", "send_invoice"] = "charge_automatically"
    days_until_due: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    term_months: Annotated[StrictInt, Field(ge=1, le=120)] | None = None
    auto_renew: StrictBool = True
    coupon_id: Id | None = None
    promotion_code: Annotated[StrictStr, Field(max_length=100)] | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> SubscriptionCreate:
        if (self.plan_id is None) == (not self.items):
            raise ValueError("give either plan_id or items")
        if self.quantity is not None and self.plan_id is None:
            raise ValueError("quantity goes with plan_id; with items, give each item's quantity")
        if self.trial_days is not None and self.trial_end is not None:
            raise ValueError("give trial_days or trial_end, not both")
        return self


class SubscriptionChange(_In):
    plan_id: Id | None = None
    plan_version: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None, description="Move to this version of the plan (default: its current version)."
    )
    items: Annotated[list[SubscriptionItemIn], Field(min_length=1, max_length=20)] | None = None
    quantity: Quantity | None = None
    proration_behavior: ProrationBehavior = "create_prorations"
    effective: Literal["now", "period_end"] | None = Field(
        default=None, description="Default: upgrades now, downgrades at the period end."
    )

    @model_validator(mode="after")
    def _one_change(self) -> SubscriptionChange:
        if (self.plan_id is not None) + (self.items is not None) != 1 and not (
            self.plan_id is None and self.items is None and self.quantity is not None
        ):
            raise ValueError("give plan_id (optionally with quantity), items, or quantity alone")
        return self


class SubscriptionCancel(_In):
    at: Literal["now", "period_end"] = "period_end"
    prorate: StrictBool = Field(default=False, description="Credit the unused time (with at=now).")


class ClockCreate(_In):
    frozen_time: Instant
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)] = "Test clock"


class ClockAdvance(_In):
    frozen_time: Instant

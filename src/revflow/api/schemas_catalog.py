"""Request bodies of the catalog: products, prices, plans and plan versions.

Amounts are decimal strings in minor units (``"0.04"``: four hundredths of a cent). Pricing terms are
checked by the domain, so inconsistent terms answer 422 ``invalid_pricing`` rather than a schema error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StrictStr, field_validator

from revflow.api.schemas import (
    CurrencyCode,
    DecimalStr,
    Metadata,
    MetadataPatch,
    Name,
    Text,
    _In,
)
from revflow.domain.cycles import Interval
from revflow.domain.pricing import PackageRounding, PricingModel
from revflow.services.catalog import BillingTiming, PriceType

__all__ = [
    "PlanCreate",
    "PlanItemIn",
    "PlanUpdate",
    "PlanVersionCreate",
    "PriceCreate",
    "PriceUpdate",
    "ProductCreate",
    "ProductUpdate",
    "TierIn",
]

Id = Annotated[StrictStr, Field(min_length=1, max_length=40)]
Code = Annotated[
    StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", examples=["pro"])
]
Nickname = Annotated[StrictStr, Field(max_length=200)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be omitted but not null")
    return value


class ProductCreate(_In):
    name: Name
    description: Text | None = None
    active: StrictBool = True
    metadata: Metadata = Field(default_factory=dict)


class ProductUpdate(_In):
    name: Name | None = None
    description: Text | None = None
    active: StrictBool | None = Field(default=None, description="false archives the product.")
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    _required = field_validator("name", "active", mode="before")(_not_null)


class TierIn(_In):
    up_to: Annotated[StrictInt, Field(le=10**15)] | None = Field(
        description="Inclusive upper bound in units; null for the last, open-ended tier."
    )
    unit_amount: DecimalStr = Field(default="0", description="Minor units per unit, up to 12 decimals.")
    flat_amount: DecimalStr = Field(default="0", description="Minor units once the tier is reached.")


class PriceCreate(_In):
    product_id: Id
    currency: CurrencyCode
    type: PriceType
    model: PricingModel = Field(
        description="flat, per_unit, graduated, volume, package, flat_per_unit (flat fee + per unit) or "
        "percentage (usage prices: unit_amount percent of each event's amount + flat_amount, per event)."
    )
    unit_amount: DecimalStr | None = Field(default=None, description="Minor units, up to 12 decimals.")
    flat_amount: DecimalStr | None = Field(default=None, description="Minor units, up to 12 decimals.")
    tiers: Annotated[list[TierIn], Field(max_length=50)] | None = None
    package_size: Annotated[StrictInt, Field(le=10**12)] | None = None
    package_rounding: PackageRounding | None = Field(default=None, description="Defaults to up.")
    interval: Interval | None = Field(default=None, description="Required for recurring prices.")
    interval_count: Annotated[StrictInt, Field(le=10_000)] | None = Field(
        default=None, description="Default 1."
    )
    billing_timing: BillingTiming | None = Field(
        default=None, description="Defaults to in_advance (in_arrears for usage prices)."
    )
    metric_code: Code | None = Field(default=None, description="Billable metric of a usage price.")
    event_min_amount: DecimalStr | None = Field(
        default=None, description="percentage prices: the least fee of one event (minor units)."
    )
    event_max_amount: DecimalStr | None = Field(
        default=None, description="percentage prices: the largest fee of one event (minor units)."
    )
    nickname: Nickname | None = None
    metadata: Metadata = Field(default_factory=dict)


class PriceUpdate(_In):
    """Only these fields of a price change; new terms need a new price."""

    active: StrictBool | None = Field(default=None, description="false archives the price.")
    nickname: Nickname | None = None
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    _required = field_validator("active", mode="before")(_not_null)


class PlanItemIn(_In):
    price_id: Id
    quantity: Annotated[StrictInt, Field(ge=0, le=10**9)] = 1


PlanItems = Annotated[list[PlanItemIn], Field(max_length=100)]


class PlanCreate(_In):
    code: Code = Field(description="Unique in the organization.")
    name: Name
    description: Text | None = None
    items: PlanItems
    metadata: Metadata = Field(default_factory=dict)


class PlanUpdate(_In):
    name: Name | None = None
    description: Text | None = None
    active: StrictBool | None = Field(default=None, description="false archives the plan.")
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    _required = field_validator("name", "active", mode="before")(_not_null)


class PlanVersionCreate(_In):
    items: PlanItems

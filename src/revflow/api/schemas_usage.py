"""Request bodies of usage metering."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from revflow.api.schemas import Metadata, _In

__all__ = ["MetricCreate", "ThresholdCreate"]

Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
PropertyName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class MetricCreate(_In):
    code: Code = Field(description="What usage events name in `metric_code`.", examples=["api_calls"])
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    aggregation: Literal["count", "sum", "max", "min", "unique_count", "latest", "weighted_sum"]
    property: PropertyName | None = Field(default=None, description="The property read (all but count).")
    filters: dict[PropertyName, list[Annotated[str, StringConstraints(max_length=200)]]] = Field(
        default_factory=dict, description='Only events whose properties match, e.g. {"region": ["eu"]}.'
    )
    group_by: PropertyName | None = Field(
        default=None, description="Price each value of this property apart."
    )
    recurring: bool = Field(default=False, description="Carry over from one period to the next (seats).")
    metadata: Metadata = Field(default_factory=dict)


class ThresholdCreate(_In):
    subscription_id: Annotated[str, StringConstraints(max_length=40)]
    kind: Literal["units", "amount"]
    metric_code: Code | None = Field(default=None, description="Required for a units threshold.")
    value: Annotated[Decimal, Field(gt=0, max_digits=30)]
    invoice: bool = Field(default=False, description="Progressive billing: invoice when crossed (amount).")
    recurring: bool = Field(
        default=False, description="Fire at every multiple of value, not once per period."
    )

"""The public shape of catalog objects: products, prices, plans and plan versions.

Amounts are minor units written as exact decimal strings (``"0.04"`` is four hundredths of a cent);
quantities are decimal strings too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from revflow.storage import models as m

__all__ = [
    "PlanItemView",
    "PlanVersionView",
    "PlanView",
    "PriceView",
    "ProductView",
    "RecurringView",
    "TierView",
]


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    def payload(self) -> dict[str, Any]:
        """JSON-ready dict (for event payloads)."""
        return self.model_dump(mode="json")


def _dec(value: Decimal | str) -> str:
    return format(Decimal(value), "f")


class ProductView(_View):
    id: str
    object: Literal["product"] = "product"
    name: str
    description: str | None
    active: bool
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: m.Product) -> ProductView:
        fields = {k: getattr(p, k) for k in cls.model_fields if k not in {"object", "metadata"}}
        return cls(**fields, metadata=p.metadata_)


class TierView(_View):
    up_to: int | None
    unit_amount: str
    flat_amount: str


class RecurringView(_View):
    interval: str
    interval_count: int


class PriceView(_View):
    id: str
    object: Literal["price"] = "price"
    product_id: str
    nickname: str | None
    currency: str
    type: str
    model: str
    unit_amount: str
    flat_amount: str
    tiers: list[TierView]
    package_size: int | None
    package_rounding: str | None
    recurring: RecurringView | None
    billing_timing: str
    metric_code: str | None
    event_min_amount: str | None = None
    event_max_amount: str | None = None
    custom: bool
    active: bool
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, p: m.Price) -> PriceView:
        return cls(
            id=p.id,
            product_id=p.product_id,
            nickname=p.nickname,
            currency=p.currency,
            type=p.type,
            model=p.model,
            unit_amount=_dec(p.unit_amount),
            flat_amount=_dec(p.flat_amount),
            tiers=[
                TierView(
                    up_to=None if t.get("up_to") is None else int(Decimal(str(t["up_to"]))),
                    unit_amount=_dec(str(t.get("unit_amount", "0"))),
                    flat_amount=_dec(str(t.get("flat_amount", "0"))),
                )
                for t in p.tiers
            ],
            package_size=p.package_size,
            package_rounding=p.package_rounding if p.model == "package" else None,
            recurring=(
                RecurringView(interval=p.interval, interval_count=p.interval_count)
                if p.interval is not None
                else None
            ),
            billing_timing=p.billing_timing,
            metric_code=p.metric_code,
            event_min_amount=None if p.event_min_amount is None else _dec(p.event_min_amount),
            event_max_amount=None if p.event_max_amount is None else _dec(p.event_max_amount),
            custom=p.custom,
            active=p.active,
            metadata=p.metadata_,
            created_at=p.created_at,
        )


class PlanItemView(_View):
    price: PriceView
    quantity: str


def _items(version: m.PlanVersion, prices: Mapping[str, m.Price]) -> list[PlanItemView]:
    return [
        PlanItemView(price=PriceView.of(prices[i.price_id]), quantity=_dec(i.quantity)) for i in version.items
    ]


def _currencies(version: m.PlanVersion, prices: Mapping[str, m.Price]) -> list[str]:
    return sorted({prices[i.price_id].currency for i in version.items})


class PlanVersionView(_View):
    id: str
    object: Literal["plan_version"] = "plan_version"
    plan_id: str
    version: int
    currencies: list[str]
    items: list[PlanItemView]
    created_at: datetime

    @classmethod
    def of(cls, v: m.PlanVersion, *, prices: Mapping[str, m.Price]) -> PlanVersionView:
        """``prices`` maps every price id of the version's items to its price."""
        return cls(
            id=v.id,
            plan_id=v.plan_id,
            version=v.version,
            currencies=_currencies(v, prices),
            items=_items(v, prices),
            created_at=v.created_at,
        )


class PlanView(_View):
    id: str
    object: Literal["plan"] = "plan"
    code: str
    name: str
    description: str | None
    active: bool
    current_version: int
    current_version_id: str
    currencies: list[str]
    items: list[PlanItemView]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: m.Plan, *, version: m.PlanVersion, prices: Mapping[str, m.Price]) -> PlanView:
        """``version`` is the plan's current version; ``prices`` maps its items' price ids to prices."""
        return cls(
            id=p.id,
            code=p.code,
            name=p.name,
            description=p.description,
            active=p.active,
            current_version=p.current_version,
            current_version_id=version.id,
            currencies=_currencies(version, prices),
            items=_items(version, prices),
            metadata=p.metadata_,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )

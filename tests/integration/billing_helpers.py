"""Catalog rows for billing tests, written straight to the database (the catalog API has its own tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from revflow.bootstrap import Container
from revflow.domain.ids import new_id
from revflow.storage.models import Plan, PlanVersion, PlanVersionItem, Price, Product

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def make_price(
    container: Container,
    org_id: str,
    *,
    name: str = "Pro",
    currency: str = "USD",
    model: str = "flat",
    flat: int = 0,
    unit: str | int = 0,
    tiers: list[dict[str, Any]] | None = None,
    interval: str | None = "month",
    count: int = 1,
    timing: str | None = None,
    type: str = "recurring",
    package_size: int | None = None,
    metric: str | None = None,
) -> str:
    """Create a product and one price for it; returns the price id."""
    with container.sessions() as s:
        product = Product(
            id=new_id("prod"),
            org_id=org_id,
            name=name,
            description=None,
            active=True,
            metadata_={},
            created_at=T0,
            updated_at=T0,
        )
        s.add(product)
        s.flush()
        price = Price(
            id=new_id("price"),
            org_id=org_id,
            product_id=product.id,
            nickname=None,
            currency=currency,
            type=type,
            model=model,
            unit_amount=Decimal(str(unit)),
            flat_amount=Decimal(flat),
            tiers=tiers or [],
            package_size=package_size,
            package_rounding="up",
            interval=interval if type == "recurring" else None,
            interval_count=count,
            billing_timing=timing or ("in_arrears" if metric else "in_advance"),
            metric_code=metric,
            custom=False,
            active=True,
            metadata_={},
            created_at=T0,
        )
        s.add(price)
        s.commit()
        return price.id


def make_plan(container: Container, org_id: str, code: str, price_ids: list[str]) -> str:
    """Create a plan whose version 1 holds ``price_ids`` (quantity 1 each); returns the plan id."""
    with container.sessions() as s:
        plan = Plan(
            id=new_id("plan"),
            org_id=org_id,
            code=code,
            name=code.title(),
            description=None,
            current_version=1,
            active=True,
            metadata_={},
            created_at=T0,
            updated_at=T0,
        )
        s.add(plan)
        s.flush()
        version = PlanVersion(id=new_id("planv"), org_id=org_id, plan_id=plan.id, version=1, created_at=T0)
        version.items = [
            PlanVersionItem(org_id=org_id, price_id=p, quantity=Decimal(1), position=i)
            for i, p in enumerate(price_ids)
        ]
        s.add(version)
        s.commit()
        return plan.id

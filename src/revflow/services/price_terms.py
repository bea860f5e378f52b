"""Turn a stored price into the domain's pricing terms."""

from __future__ import annotations

from decimal import Decimal

from revflow.domain.pricing import PackageRounding, PriceTerms, PricingModel, Tier
from revflow.storage.models import Price

__all__ = ["price_terms"]


def price_terms(price: Price) -> PriceTerms:
    """The pricing terms of ``price`` (raises InvalidPricing if the stored terms are inconsistent)."""
    tiers = tuple(
        Tier(
            up_to=None if t.get("up_to") is None else Decimal(str(t["up_to"])),
            unit_amount=Decimal(str(t.get("unit_amount", "0"))),
            flat_amount=Decimal(str(t.get("flat_amount", "0"))),
        )
        for t in price.tiers
    )
    return PriceTerms(
        model=PricingModel(price.model),
        unit_amount=price.unit_amount,
        flat_amount=price.flat_amount,
        tiers=tiers,
        package_size=price.package_size,
        package_rounding=PackageRounding(price.package_rounding),
        event_min=price.event_min_amount,
        event_max=price.event_max_amount,
    )

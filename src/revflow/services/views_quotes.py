"""Public shapes of quotes and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from revflow.services.views import _View
from revflow.storage.models import Alert, Quote

__all__ = ["AlertView", "QuoteLineView", "QuoteView"]


class QuoteLineView(_View):
    price_id: str
    quantity: str
    #: The negotiated price in minor units (the unit amount, or the flat amount of a flat price); None:
    #: the catalog price.
    unit_amount: str | None
    #: The price made for this line when the quote was accepted (overridden lines only).
    custom_price_id: str | None

    @classmethod
    def of(cls, line: dict[str, Any]) -> QuoteLineView:
        return cls(
            price_id=line["price_id"],
            quantity=str(line["quantity"]),
            unit_amount=line.get("unit_amount"),
            custom_price_id=line.get("custom_price_id"),
        )


class QuoteView(_View):
    id: str
    object: Literal["quote"] = "quote"
    customer_id: str
    number: str | None
    status: str
    plan_id: str | None
    currency: str
    lines: list[QuoteLineView]
    coupon_id: str | None
    term_months: int | None
    auto_renew: bool
    start_at: datetime | None
    trial_days: int | None
    collection_method: str
    days_until_due: int | None
    expires_at: datetime | None
    finalized_at: datetime | None
    accepted_at: datetime | None
    acceptor_name: str | None
    acceptor_email: str | None
    canceled_at: datetime | None
    subscription_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, q: Quote) -> QuoteView:
        skip = {"object", "lines", "metadata"}
        fields = {k: getattr(q, k) for k in cls.model_fields if k not in skip}
        return cls(**fields, lines=[QuoteLineView.of(li) for li in q.lines], metadata=q.metadata_)


class AlertView(_View):
    id: str
    object: Literal["alert"] = "alert"
    type: str
    severity: str
    #: ``open``, ``acknowledged`` or ``resolved``.
    status: str
    object_type: str | None
    object_id: str | None
    message: str
    details: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, a: Alert) -> AlertView:
        return cls.model_validate(a)

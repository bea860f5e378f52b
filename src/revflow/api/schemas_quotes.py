"""Request bodies for quotes.

Shapes only (strict types, lengths); the business rules and their stable codes live in
:mod:`revflow.services.quotes`, so direct callers of the service get the same answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from revflow.api.schemas import CurrencyCode, Email, Instant, Metadata, MetadataPatch, Name, _In

__all__ = ["QuoteAccept", "QuoteCreate", "QuoteLineIn", "QuoteUpdate"]

Id = Annotated[StrictStr, Field(min_length=1, max_length=40)]
Quantity = Annotated[StrictInt, Field(ge=0, le=10**9)]


def _exact_number(value: Any) -> Any:
    """An integer becomes its decimal string; a JSON float is refused (it is not exact)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise PydanticCustomError("decimal_string", 'give an integer or a decimal string such as "800"')
    return value


MinorAmount = Annotated[
    StrictStr,
    BeforeValidator(_exact_number),
    Field(pattern=r"^\d{1,15}(\.\d{1,12})?$", examples=["800"]),
]


class QuoteLineIn(_In):
    price_id: Id
    quantity: Quantity = 1
    unit_amount: MinorAmount | None = Field(
        default=None,
        description="Negotiated price in minor units: the unit amount of a per_unit price or the flat "
        "amount of a flat price. Omit for the catalog price.",
    )


CollectionMethod = Literal["charge_automatically", "send_invoice"]
TermMonths = Annotated[StrictInt, Field(ge=1, le=120)]
TrialDays = Annotated[StrictInt, Field(ge=1, le=730)]
DaysUntilDue = Annotated[StrictInt, Field(ge=0, le=365)]
Lines = Annotated[list[QuoteLineIn], Field(min_length=1, max_length=20)]


class QuoteCreate(_In):
    customer_id: Id
    plan_id: Id | None = Field(default=None, description="Give this or lines.")
    lines: Lines | None = None
    currency: CurrencyCode | None = None
    coupon_id: Id | None = None
    term_months: TermMonths | None = None
    auto_renew: StrictBool = True
    start_at: Instant | None = Field(default=None, description="Default: when the quote is accepted.")
    trial_days: TrialDays | None = None
    collection_method: CollectionMethod = "send_invoice"
    days_until_due: DaysUntilDue | None = None
    expires_at: Instant | None = None
    metadata: Metadata = Field(default_factory=dict)


class QuoteUpdate(_In):
    plan_id: Id | None = None
    lines: Lines | None = None
    currency: CurrencyCode | None = None
    coupon_id: Id | None = None
    term_months: TermMonths | None = None
    auto_renew: StrictBool | None = None
    start_at: Instant | None = None
    trial_days: TrialDays | None = None
    collection_method: CollectionMethod | None = None
    days_until_due: DaysUntilDue | None = None
    expires_at: Instant | None = None
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    @field_validator("auto_renew", "collection_method", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class QuoteAccept(_In):
    acceptor_name: Name
    acceptor_email: Email

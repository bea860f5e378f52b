"""Request bodies and shared field types. Unknown fields are refused; amounts and strings are strict."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from revflow.domain.metadata import MAX_METADATA_KEYS
from revflow.domain.money import MAX_AMOUNT, Currency

__all__ = [
    "Address",
    "Amount",
    "CreditNoteCreate",
    "CustomerCreate",
    "CustomerUpdate",
    "InvoiceCreate",
    "InvoiceItem",
    "InvoiceUpdate",
    "ListOf",
    "Metadata",
    "PaymentCreate",
]

T = TypeVar("T")


#: Validation error types that are also the problem's top-level ``code`` when they are the only ones.
DOMAIN_VALIDATION_CODES = frozenset({"unknown_currency", "metadata_too_large"})


def _currency(value: str) -> str:
    if not Currency.is_known(value):
        raise PydanticCustomError("unknown_currency", "'{code}' is not an ISO 4217 currency", {"code": value})
    return Currency.of(value).code


def _str_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string")
    return value


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_METADATA_KEYS:
        raise PydanticCustomError("metadata_too_large", f"metadata holds at most {MAX_METADATA_KEYS} keys")
    for k, v in value.items():
        if not 1 <= len(k) <= 40:
            raise PydanticCustomError("metadata_too_large", "metadata keys must be 1 to 40 characters")
        if v is not None and len(v) > 500:
            raise PydanticCustomError("metadata_too_large", "metadata values must be at most 500 characters")
    return value


def _metadata_patch(value: dict[str, str | None]) -> dict[str, str | None]:
    _metadata(value)  # null removes a key; the other limits still hold
    return value


Amount = Annotated[StrictInt, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="Minor units (cents).")]
PositiveAmount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="Minor units (cents).")]
CurrencyCode = Annotated[
    StrictStr, Field(min_length=3, max_length=3, examples=["USD"]), AfterValidator(_currency)
]
Metadata = Annotated[dict[StrictStr, StrictStr], AfterValidator(_metadata)]
#: Metadata in an update: merged into the stored map; null or "" removes a key.
MetadataPatch = Annotated[dict[StrictStr, StrictStr | None], AfterValidator(_metadata_patch)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Text = Annotated[StrictStr, Field(max_length=5000)]
Email = Annotated[StrictStr, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Day = Annotated[date, BeforeValidator(_str_only)]
Instant = Annotated[AwareDatetime, BeforeValidator(_str_only)]
DecimalStr = Annotated[StrictStr, Field(pattern=r"^-?\d{1,15}(\.\d{1,12})?$", examples=["0.04"])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(_In):
    line1: Annotated[StrictStr, Field(max_length=200)] | None = None
    line2: Annotated[StrictStr, Field(max_length=200)] | None = None
    city: Annotated[StrictStr, Field(max_length=100)] | None = None
    state: Annotated[StrictStr, Field(max_length=100)] | None = None
    postal_code: Annotated[StrictStr, Field(max_length=20)] | None = None
    country: (
        Annotated[StrictStr, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")] | None
    ) = None


class TaxId(_In):
    type: Annotated[StrictStr, Field(max_length=20, examples=["eu_vat"])]
    value: Annotated[StrictStr, Field(min_length=1, max_length=64)]


ExternalIds = dict[
    Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
    Annotated[StrictStr, Field(min_length=1, max_length=200)],
]


class CustomerCreate(_In):
    name: Name
    email: Email | None = None
    address: Address | None = None
    currency: CurrencyCode | None = None
    timezone: Annotated[StrictStr, Field(max_length=64)] = "UTC"
    locale: Annotated[StrictStr, Field(max_length=35)] = "en_US"
    tax_ids: Annotated[list[TaxId], Field(max_length=10)] = []
    external_ids: ExternalIds = Field(default_factory=dict, description='e.g. {"hubspot": "1234"}')
    metadata: Metadata = Field(default_factory=dict)
    test_clock_id: Annotated[StrictStr, Field(max_length=40)] | None = Field(
        default=None, description="Put the customer on a test clock (simulated time)."
    )


class CustomerUpdate(_In):
    name: Name | None = None
    email: Email | None = None
    address: Address | None = None
    currency: CurrencyCode | None = None
    timezone: Annotated[StrictStr, Field(max_length=64)] | None = None
    locale: Annotated[StrictStr, Field(max_length=35)] | None = None
    tax_ids: Annotated[list[TaxId], Field(max_length=10)] | None = None
    external_ids: (
        dict[
            Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
            Annotated[StrictStr, Field(min_length=1, max_length=200)] | None,
        ]
        | None
    ) = Field(default=None, description="Merged per system; null unlinks a system.")
    metadata: MetadataPatch | None = Field(default=None, description="Merged; null or '' removes a key.")

    @field_validator("name", "timezone", "locale", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class InvoiceItem(_In):
    description: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    amount: Amount | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=10**9)] | None = None
    unit_amount: Amount | None = None
    unit_amount_decimal: DecimalStr | None = Field(
        default=None, description="Minor units, up to 12 decimals."
    )
    currency: CurrencyCode | None = None
    period_start: Instant | None = None
    period_end: Instant | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_price(self) -> InvoiceItem:
        given = [x is not None for x in (self.amount, self.unit_amount, self.unit_amount_decimal)]
        if sum(given) != 1:
            raise ValueError("give exactly one of amount, unit_amount or unit_amount_decimal")
        if self.amount is not None and self.quantity is not None:
            raise ValueError("quantity goes with unit_amount or unit_amount_decimal, not with amount")
        if (self.period_start is None) != (self.period_end is None):
            raise ValueError("give both period_start and period_end, or neither")
        if self.period_start and self.period_end and self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        return self


CollectionMethod = Literal["send_invoice", "charge_automatically"]


class InvoiceCreate(_In):
    customer_id: Annotated[StrictStr, Field(max_length=40)]
    items: Annotated[list[InvoiceItem], Field(min_length=0, max_length=250)] = []
    currency: CurrencyCode | None = None
    due_date: Day | None = None
    description: Text | None = None
    footer: Text | None = None
    collection_method: CollectionMethod = "send_invoice"
    metadata: Metadata = Field(default_factory=dict)


class InvoiceUpdate(_In):
    due_date: Day | None = None
    description: Text | None = None
    footer: Text | None = None
    collection_method: CollectionMethod | None = None
    metadata: MetadataPatch | None = None

    @field_validator("collection_method", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class InvoiceLinesAdd(_In):
    items: Annotated[list[InvoiceItem], Field(min_length=1, max_length=250)]


class PaymentCreate(_In):
    amount: PositiveAmount | None = Field(default=None, description="Defaults to the amount remaining.")
    method: Literal["bank_transfer", "check", "cash", "other"] = "bank_transfer"
    reference: Annotated[StrictStr, Field(max_length=200)] | None = None
    paid_at: Instant | None = None
    metadata: Metadata = Field(default_factory=dict)


class CreditNoteLineIn(_In):
    invoice_line_id: Annotated[StrictStr, Field(max_length=40)]
    amount: PositiveAmount | None = Field(default=None, description="Defaults to what remains on the line.")


class CreditNoteCreate(_In):
    invoice_id: Annotated[StrictStr, Field(max_length=40)]
    amount: PositiveAmount | None = None
    lines: Annotated[list[CreditNoteLineIn], Field(max_length=250)] | None = None
    reason: Literal["duplicate", "fraudulent", "order_change", "product_unsatisfactory"] | None = None
    memo: Text | None = None
    metadata: Metadata = Field(default_factory=dict)


class ApiKeyCreate(_In):
    name: Name = "default"


class ListOf(BaseModel, Generic[T]):
    """A page of objects, newest first. Pass the last id as ``starting_after`` to get the next page."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    url: str

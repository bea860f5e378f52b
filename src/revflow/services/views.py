"""The public shape of each object: what the API returns and what domain events carry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from revflow.storage import models as m

__all__ = [
    "AddressView",
    "ApiKeyView",
    "AuditEventView",
    "BalanceTransactionView",
    "CreditNoteView",
    "CustomerView",
    "EventView",
    "InvoiceView",
    "PaymentView",
    "TaxIdView",
]


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    #: Fields holding a customer's numbers as exact Decimals, which :meth:`payload` keeps as they are.
    exact_fields: ClassVar[tuple[str, ...]] = ()

    def payload(self) -> dict[str, Any]:
        """JSON-ready dict (for event payloads and :func:`~revflow.storage.types.exact_json`), except that
        the :attr:`exact_fields` keep their Decimals: pydantic's JSON mode would write them as strings, and
        ``exact_json`` writes them as the numbers they are."""
        out = self.model_dump(mode="json")
        for name in self.exact_fields:
            out[name] = getattr(self, name)
        return out


class AddressView(_View):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class TaxIdView(_View):
    type: str
    value: str
    country: str | None = None


class CustomerView(_View):
    id: str
    object: Literal["customer"] = "customer"
    name: str
    email: str | None
    address: AddressView
    currency: str | None
    timezone: str
    locale: str
    tax_ids: list[TaxIdView]
    external_ids: dict[str, str]
    balance: int
    metadata: dict[str, str]
    archived: bool
    test_clock_id: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: m.Customer, *, balance: int) -> CustomerView:
        return cls(
            id=c.id,
            name=c.name,
            email=c.email,
            address=AddressView(**c.address),
            currency=c.currency,
            timezone=c.timezone,
            locale=c.locale,
            tax_ids=[TaxIdView(**t) for t in c.tax_ids],
            external_ids={e.system: e.external_id for e in c.external_ids},
            balance=balance,
            metadata=c.metadata_,
            archived=c.archived_at is not None,
            test_clock_id=c.test_clock_id,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class InvoiceLineView(_View):
    id: str
    object: Literal["line_item"] = "line_item"
    description: str
    quantity: str
    unit_amount_decimal: str
    amount: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    #: ``one_off``, ``recurring``, ``proration``, ``usage``, ``one_time`` or ``trial``.
    kind: str
    subscription_id: str | None
    price_id: str | None
    discount_amount: int
    #: ``[{"discount_id", "coupon_id", "amount"}]``
    discounts: list[dict[str, Any]]
    metadata: dict[str, str]

    @classmethod
    def of(cls, li: m.InvoiceLineItem) -> InvoiceLineView:
        return cls(
            id=li.id,
            description=li.description,
            quantity=format(li.quantity, "f"),
            unit_amount_decimal=format(li.unit_amount_decimal, "f"),
            amount=li.amount,
            currency=li.currency,
            period_start=li.period_start,
            period_end=li.period_end,
            kind=li.kind or "one_off",
            subscription_id=li.subscription_id,
            price_id=li.price_id,
            discount_amount=li.discount_amount or 0,
            discounts=li.discounts or [],
            metadata=li.metadata_,
        )


class InvoiceView(_View):
    id: str
    object: Literal["invoice"] = "invoice"
    customer_id: str
    number: str | None
    status: str
    currency: str
    collection_method: str
    billing_reason: str
    subscription_id: str | None
    auto_finalize_at: datetime | None
    test_clock_id: str | None
    description: str | None
    footer: str | None
    due_date: date | None
    lines: list[InvoiceLineView]
    subtotal: int
    discount: int
    tax: int
    total: int
    applied_balance: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    pre_payment_credit_notes_amount: int
    post_payment_credit_notes_amount: int
    metadata: dict[str, str]
    finalized_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    marked_uncollectible_at: datetime | None
    created_at: datetime
    updated_at: datetime
    #: Status of the latest dispute (chargeback) of a payment of this invoice; None when never disputed.
    dispute_status: str | None = None
    #: True while a dispute is open or was lost (cleared when the dispute is won).
    disputed: bool = False

    @classmethod
    def of(cls, inv: m.Invoice, *, lines: list[InvoiceLineView] | None = None) -> InvoiceView:
        """The view of ``inv``; ``lines`` reuses the views of its lines when the caller built them
        already (lines never change once an invoice is finalized, nor while it finalizes)."""
        skip = {"object", "lines", "metadata", "disputed"}
        fields = {k: getattr(inv, k) for k in cls.model_fields if k not in skip}
        if lines is None:
            lines = [InvoiceLineView.of(li) for li in inv.lines]
        disputed = inv.dispute_status is not None and inv.dispute_status != "won"
        return cls(**fields, lines=lines, metadata=inv.metadata_, disputed=disputed)


class CreditNoteLineView(_View):
    id: str
    invoice_line_id: str | None
    description: str
    amount: int


class CreditNoteView(_View):
    id: str
    object: Literal["credit_note"] = "credit_note"
    invoice_id: str
    customer_id: str
    number: str
    status: str
    type: str
    amount: int
    currency: str
    reason: str | None
    memo: str | None
    lines: list[CreditNoteLineView]
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, cn: m.CreditNote) -> CreditNoteView:
        fields = {k: getattr(cn, k) for k in cls.model_fields if k not in {"object", "lines", "metadata"}}
        return cls(
            **fields, lines=[CreditNoteLineView.model_validate(li) for li in cn.lines], metadata=cn.metadata_
        )


class PaymentView(_View):
    id: str
    object: Literal["payment"] = "payment"
    invoice_id: str
    customer_id: str
    amount: int
    currency: str
    status: str
    method: str
    reference: str | None
    paid_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    gateway: str | None = None
    gateway_ref: str | None = None
    attempt_number: int | None = None
    payment_method_id: str | None = None
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    hard_decline: bool = False
    scheduled_at: datetime | None = None
    amount_refunded: int = 0
    disputed: bool = False

    @classmethod
    def of(cls, p: m.Payment) -> PaymentView:
        fields = {k: getattr(p, k) for k in cls.model_fields if k not in {"object", "metadata"}}
        return cls(**fields, metadata=p.metadata_)


class BalanceTransactionView(_View):
    id: str
    object: Literal["customer_balance_transaction"] = "customer_balance_transaction"
    customer_id: str
    type: str
    amount: int
    currency: str
    invoice_id: str | None
    credit_note_id: str | None
    description: str | None
    created_at: datetime


class ApiKeyView(_View):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AuditEventView(_View):
    id: str
    object: Literal["audit_event"] = "audit_event"
    actor_type: str
    actor_id: str | None
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]
    request_id: str | None
    created_at: datetime


class EventView(_View):
    id: str
    object: Literal["event"] = "event"
    type: str
    object_type: str
    object_id: str
    #: As stored: a voided usage event's properties are exact Decimals (see :meth:`payload`).
    data: dict[str, Any]
    created_at: datetime

    exact_fields = ("data",)

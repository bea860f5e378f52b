"""Protocols that adapters implement, and the plain data they exchange with services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from revflow.domain.clock import Clock

__all__ = ["Clock", "DocumentLine", "DocumentParty", "InvoiceDocument", "PdfRenderer", "QuoteDocument"]


@dataclass(frozen=True, slots=True)
class DocumentParty:
    """Seller or buyer as printed on a document."""

    name: str
    email: str | None = None
    address_lines: tuple[str, ...] = ()  # already formatted: street lines, "postal city", region, country
    tax_ids: tuple[str, ...] = ()  # e.g. "EU VAT DE123456789"


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: Decimal
    unit_amount_decimal: Decimal  # minor units, may be fractional
    amount: int  # minor units
    period: tuple[datetime, datetime] | None = None


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything an invoice PDF shows. Amounts are integer minor units of ``currency``."""

    title: str  # "Invoice" or "Draft invoice"
    number: str | None  # None while draft
    status: str
    currency: str  # ISO 4217 code
    locale: str  # e.g. "en_US", "de_DE"
    issue_date: date | None
    due_date: date | None
    seller: DocumentParty
    buyer: DocumentParty
    lines: tuple[DocumentLine, ...]
    subtotal: int
    discount: int
    tax: int
    total: int
    applied_balance: int
    amount_paid: int
    amount_remaining: int
    memo: str | None = None
    footer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PdfRenderer(Protocol):
    """Renders documents to PDF bytes."""

    def render_invoice(self, doc: InvoiceDocument) -> bytes: ...

    def render_quote(self, doc: QuoteDocument) -> bytes: ...


@dataclass(frozen=True, slots=True)
class QuoteDocument:
    """Everything a quote PDF shows. Amounts are integer minor units of ``currency``; ``lines`` carry the
    negotiated unit prices and the amount of one billing period."""

    title: str  # "Quote" or "Draft quote"
    number: str | None  # None while draft
    status: str
    currency: str  # ISO 4217 code
    locale: str  # e.g. "en_US", "de_DE"
    issue_date: date | None  # when finalized
    valid_until: date | None
    start: date | None  # None: on acceptance
    term: str  # e.g. "12 months, renews automatically"
    seller: DocumentParty
    buyer: DocumentParty
    lines: tuple[DocumentLine, ...]
    discount_description: str | None  # e.g. "20% off for the first 12 months"
    first_invoice_subtotal: int
    first_invoice_discount: int
    first_invoice_total: int
    renewal_total: int | None  # None: nothing renews
    trial: str | None = None  # e.g. "14 days"
    memo: str | None = None
    footer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

"""Build the printable form of an invoice (what the PDF shows) from stored rows."""

from __future__ import annotations

from typing import Any

import pycountry

from revflow.services.context import Ctx
from revflow.services.ports import DocumentLine, DocumentParty, InvoiceDocument
from revflow.storage.models import Customer, Invoice, Organization

__all__ = ["invoice_document"]


def _address_lines(address: dict[str, Any]) -> tuple[str, ...]:
    lines = [address.get("line1"), address.get("line2")]
    lines.append(" ".join(p for p in (address.get("postal_code"), address.get("city")) if p) or None)
    lines.append(address.get("state"))
    country = address.get("country")
    if country:
        found = pycountry.countries.get(alpha_2=country)
        lines.append(found.name if found else country)
    return tuple(line for line in lines if line)


def _party(
    name: str, email: str | None, address: dict[str, Any], tax_ids: list[dict[str, str]]
) -> DocumentParty:
    return DocumentParty(
        name=name,
        email=email,
        address_lines=_address_lines(address),
        tax_ids=tuple(f"{t['type'].replace('_', ' ').upper()} {t['value']}" for t in tax_ids),
    )


def invoice_document(ctx: Ctx, inv: Invoice) -> InvoiceDocument:
    """Return the printable invoice. Finalized invoices show the buyer as frozen at finalization."""
    org = ctx.get(Organization, inv.org_id, label="organization")
    buyer: dict[str, Any]
    if inv.customer_snapshot is not None:
        buyer = inv.customer_snapshot
    else:
        c = ctx.get(Customer, inv.customer_id, label="customer")
        buyer = {
            "name": c.name,
            "email": c.email,
            "address": c.address,
            "tax_ids": c.tax_ids,
            "locale": c.locale,
        }
    return InvoiceDocument(
        title="Invoice" if inv.number else "Draft invoice",
        number=inv.number,
        status=inv.status,
        currency=inv.currency,
        locale=buyer.get("locale") or "en_US",
        issue_date=inv.finalized_at.date() if inv.finalized_at else None,
        due_date=inv.due_date,
        seller=_party(org.name, org.email, org.address, org.tax_ids),
        buyer=_party(
            buyer["name"], buyer.get("email"), buyer.get("address") or {}, buyer.get("tax_ids") or []
        ),
        lines=tuple(
            DocumentLine(
                description=li.description,
                quantity=li.quantity,
                unit_amount_decimal=li.unit_amount_decimal,
                amount=li.amount,
                period=(li.period_start, li.period_end) if li.period_start and li.period_end else None,
            )
            for li in inv.lines
        ),
        subtotal=inv.subtotal,
        discount=inv.discount,
        tax=inv.tax,
        total=inv.total,
        applied_balance=inv.applied_balance,
        amount_paid=inv.amount_paid,
        amount_remaining=inv.amount_remaining,
        memo=inv.description,
        footer=inv.footer,
    )

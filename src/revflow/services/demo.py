"""Demo data: an organization with customers in several currencies and invoices in every state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow.domain.clock import Clock
from revflow.services import credit_notes, customers, invoices, orgs
from revflow.services.context import Actor, Ctx
from revflow.storage.models import Organization

__all__ = ["DEMO_NAME", "load_demo"]

DEMO_NAME = "Revflow Demo Co."


def load_demo(session: Session, *, clock: Clock) -> tuple[Organization, str, bool]:
    """Create the demo organization if it does not exist, and a fresh API key for it.

    Returns (organization, secret key, created). The caller commits.
    """
    org = session.scalar(select(Organization).where(Organization.name == DEMO_NAME))
    created = org is None
    if org is None:
        org = orgs.create_organization(
            session, name=DEMO_NAME, now=clock.now(), email="billing@demo.revflow.dev"
        )
        org.address = {
            "line1": "1 Market St",
            "city": "San Francisco",
            "state": "CA",
            "postal_code": "94105",
            "country": "US",
        }
    ctx = Ctx(session=session, org_id=org.id, actor=Actor("cli"), clock=clock)
    _, secret = orgs.create_api_key(ctx, name="demo")
    if created:
        _populate(ctx)
    return org, secret, created


def _populate(ctx: Ctx) -> None:
    acme = customers.create_customer(
        ctx,
        name="Acme Corp",
        email="ap@acme.example",
        currency="USD",
        timezone="America/Los_Angeles",
        address={
            "line1": "500 Howard St",
            "city": "San Francisco",
            "state": "CA",
            "postal_code": "94105",
            "country": "US",
        },
        external_ids={"hubspot": "1001"},
    )
    berlin = customers.create_customer(
        ctx,
        name="Berliner Software GmbH",
        email="rechnung@berliner.example",
        currency="EUR",
        timezone="Europe/Berlin",
        locale="de_DE",
        address={"line1": "Friedrichstraße 1", "city": "Berlin", "postal_code": "10117", "country": "DE"},
        tax_ids=[{"type": "eu_vat", "value": "DE136695976"}],
    )
    tokyo = customers.create_customer(
        ctx,
        name="Tokyo Apps KK",
        email="keiri@tokyo.example",
        currency="JPY",
        timezone="Asia/Tokyo",
        locale="ja_JP",
        address={"city": "Tokyo", "country": "JP"},
    )
    due = (ctx.now() + timedelta(days=30)).date()
    paid = invoices.create_invoice(
        ctx,
        customer_id=acme.id,
        due_date=due,
        items=[
            {"description": "Enterprise Plan", "amount": 50000, "currency": "USD"},
            {"description": "Extra seats", "quantity": 5, "unit_amount": 2000},
        ],
    )
    invoices.finalize_invoice(ctx, paid.id)
    invoices.pay_out_of_band(ctx, paid.id, reference="WIRE-2024-001")
    credit_notes.create_credit_note(ctx, invoice_id=paid.id, amount=5000, reason="order_change")
    eur = invoices.create_invoice(
        ctx,
        customer_id=berlin.id,
        items=[
            {"description": "Professional Plan (annual)", "amount": 120000},
            {"description": "API calls", "quantity": 250000, "unit_amount_decimal": "0.04"},
        ],
    )
    invoices.finalize_invoice(ctx, eur.id)
    jpy = invoices.create_invoice(
        ctx, customer_id=tokyo.id, items=[{"description": "Starter Plan", "amount": 9800}]
    )
    invoices.finalize_invoice(ctx, jpy.id)
    invoices.create_invoice(
        ctx, customer_id=acme.id, items=[{"description": "Onboarding workshop", "amount": 150000}]
    )

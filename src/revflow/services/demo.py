"""Demo data: an organization with customers in several currencies and invoices in every state."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow.domain.clock import Clock
from revflow.domain.cycles import shift
from revflow.services import (
    catalog,
    coupons,
    credit_notes,
    customers,
    invoices,
    orgs,
    subscriptions,
    test_clocks,
)
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
    _one_off_invoices(ctx)
    _simulate_a_year(ctx)


def _one_off_invoices(ctx: Ctx) -> None:
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


def _plan(ctx: Ctx, code: str, name: str, prices: list[tuple[str, dict[str, Any]]]) -> str:
    product = catalog.create_product(ctx, name=name)
    made = [
        catalog.create_price(
            ctx,
            product_id=product.id,
            currency=currency,
            type="recurring",
            model=terms["model"],
            unit_amount=terms.get("unit_amount"),
            flat_amount=terms.get("flat_amount"),
            tiers=terms.get("tiers"),
            interval=terms.get("interval", "month"),
        )
        for currency, terms in prices
    ]
    plan = catalog.create_plan(
        ctx, code=code, name=name, items=[catalog.PlanItem(price_id=p.id) for p in made]
    )
    return plan.id


def _simulate_a_year(ctx: Ctx) -> None:
    """Twelve months of real invoices on a test clock: flat, per-seat and tiered plans, customers in
    several currencies and time zones, an upgrade, a downgrade, a cancellation and a trial."""
    monthly = {"interval": "month"}
    starter = _plan(
        ctx,
        "starter",
        "Starter",
        [
            ("USD", {"model": "flat", "flat_amount": "2900", **monthly}),
            ("EUR", {"model": "flat", "flat_amount": "2700", **monthly}),
        ],
    )
    team = _plan(
        ctx,
        "team",
        "Team",
        [
            ("USD", {"model": "per_unit", "unit_amount": "1200", **monthly}),
            ("EUR", {"model": "per_unit", "unit_amount": "1100", **monthly}),
            ("JPY", {"model": "per_unit", "unit_amount": "1800", **monthly}),
        ],
    )
    scale = _plan(
        ctx,
        "scale",
        "Scale",
        [
            (
                "USD",
                {
                    "model": "graduated",
                    "tiers": [
                        {"up_to": 10, "unit_amount": "2000"},
                        {"up_to": 50, "unit_amount": "1500"},
                        {"up_to": None, "unit_amount": "1000"},
                    ],
                    **monthly,
                },
            ),
        ],
    )
    enterprise = _plan(
        ctx,
        "enterprise",
        "Enterprise",
        [
            ("USD", {"model": "flat", "flat_amount": "1000000", "interval": "year"}),
        ],
    )
    first_year = coupons.create_coupon(ctx, name="20% off the first year", percent_off="20", duration="once")

    start = (ctx.now() - timedelta(days=365)).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = test_clocks.create_clock(ctx, frozen_time=start, name="Demo: one year")

    def customer(name: str, currency: str, tz: str, locale: str = "en_US") -> str:
        return customers.create_customer(
            ctx,
            name=name,
            currency=currency,
            timezone=tz,
            locale=locale,
            email=f"billing@{name.split()[0].lower()}.example",
            test_clock_id=clock.id,
        ).id

    northwind = customer("Northwind Traders", "USD", "America/Los_Angeles")
    up = subscriptions.create_subscription(
        ctx, customer_id=northwind, plan_id=team, quantity=Decimal(5), collection_method="send_invoice"
    )
    munich = customer("Münchner Daten AG", "EUR", "Europe/Berlin", "de_DE")
    down = subscriptions.create_subscription(ctx, customer_id=munich, plan_id=team, quantity=Decimal(3))
    osaka = customer("Osaka Robotics KK", "JPY", "Asia/Tokyo", "ja_JP")
    subscriptions.create_subscription(
        ctx, customer_id=osaka, plan_id=team, quantity=Decimal(10), billing_cycle_day=1
    )
    globex = customer("Globex Corporation", "USD", "America/New_York")
    subscriptions.create_subscription(
        ctx,
        customer_id=globex,
        plan_id=enterprise,
        coupon_id=first_year.id,
        term_months=12,
        collection_method="send_invoice",
        days_until_due=30,
    )
    initech = customer("Initech", "USD", "America/Chicago")
    leaving = subscriptions.create_subscription(ctx, customer_id=initech, plan_id=starter, trial_days=14)

    for month in range(1, 13):
        at = shift(anchor=start, interval="month", count=1, n=month, tz="UTC")
        if month == 3:  # Northwind upgrades mid-month to the tiered plan with 25 seats
            test_clocks.advance_clock(ctx, clock.id, to=at - timedelta(days=15))
            subscriptions.change_subscription(
                ctx, up.id, plan_id=scale, quantity=Decimal(25), proration_behavior="always_invoice"
            )
        if month == 5:  # Münchner downgrades to Starter at the period end
            test_clocks.advance_clock(ctx, clock.id, to=at - timedelta(days=10))
            subscriptions.change_subscription(ctx, down.id, plan_id=starter)
        if month == 8:  # Initech cancels at the period end
            test_clocks.advance_clock(ctx, clock.id, to=at - timedelta(days=5))
            subscriptions.cancel_subscription(ctx, leaving.id, at="period_end")
        test_clocks.advance_clock(ctx, clock.id, to=at + timedelta(hours=2))

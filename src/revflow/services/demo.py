"""Demo data: an organization with customers in several currencies and invoices in every state, and a
year of subscription billing on a test clock whose charges are collected as the worker collects them.

The year runs in steps: each step is one transaction (the clock moves, customers act), committed, then
``run_jobs`` runs the worker's payment jobs (charges, sandbox ACH settlement, dunning deadlines, emails)
exactly as ``revflow serve`` would, so payments, dunning cases and emails are the real ones."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from revflow.domain.clock import Clock
from revflow.domain.cycles import shift
from revflow.services import (
    catalog,
    coupons,
    credit_notes,
    customers,
    invoices,
    orgs,
    payment_methods,
    subscriptions,
    test_clocks,
    usage_ingest,
    usage_metrics,
)
from revflow.services.context import Actor, Ctx
from revflow.services.ports import PaymentGateway
from revflow.storage.models import Organization, Payment, Subscription

__all__ = ["DEMO_NAME", "load_demo"]

DEMO_NAME = "Revflow Demo Co."


#: ``Organization.metadata["demo"]`` while the year is being simulated, then ``ready``.
_LOADING, _READY = "loading", "ready"


def load_demo(
    sessions: sessionmaker[Session],
    *,
    clock: Clock,
    gateway: PaymentGateway,
    run_jobs: Callable[[], object],
    ach_settlement: timedelta,
) -> tuple[Organization, str, bool]:
    """Create the demo organization if it does not exist, and a fresh API key for it.

    The demo commits step by step and calls ``run_jobs`` (the worker's payment jobs) after each step.
    ``ach_settlement`` is how long the gateway keeps an ACH debit ``processing`` (the sandbox's
    ``ACH_SETTLEMENT``): the simulated year stops just past it so each debit settles on its day.
    A demo left half-built by an interrupted run is renamed "... (incomplete)" and built again. Returns
    (organization, secret key, created).
    """
    with sessions() as session:
        org = session.scalar(
            select(Organization).where(Organization.name == DEMO_NAME).order_by(Organization.created_at)
        )
        if org is not None and (org.metadata_ or {}).get("demo", _READY) != _READY:
            org.name = f"{DEMO_NAME} (incomplete)"
            org = None
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
            org.metadata_ = {"demo": _LOADING}
        ctx = Ctx(session=session, org_id=org.id, actor=Actor("cli"), clock=clock)
        _, secret = orgs.create_api_key(ctx, name="demo")
        session.commit()
        if created:
            _one_off_invoices(ctx)
            session.commit()
            _Year(ctx, gateway, run_jobs, ach_settlement).simulate()
            org.metadata_ = {"demo": _READY}
            session.commit()
    return org, secret, created


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
            metric_code=terms.get("metric_code"),
        )
        for currency, terms in prices
    ]
    plan = catalog.create_plan(
        ctx, code=code, name=name, items=[catalog.PlanItem(price_id=p.id) for p in made]
    )
    return plan.id


class _At:
    """A clock that stands still at one instant (a customer acting at the test clock's time)."""

    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at


#: How long past the gateway's ACH settlement time the demo stops, so a debit in flight has settled.
_SETTLED_MARGIN = timedelta(hours=1)
#: Usage is reported by the customer's API gateway once a day.
_USAGE_EVERY = timedelta(days=1)


class _Year:
    """Twelve months of real invoices on a test clock: flat, per-seat, tiered and usage plans, customers
    in several currencies and time zones, an upgrade, a downgrade, a cancellation, a trial; card, ACH and
    bank-transfer payments; one card that starts declining, its dunning and its recovery."""

    def __init__(
        self, ctx: Ctx, gateway: PaymentGateway, run_jobs: Callable[[], object], ach_settlement: timedelta
    ):
        self.ctx, self.gateway, self.run_jobs = ctx, gateway, run_jobs
        self.ach_settled = ach_settlement + _SETTLED_MARGIN
        self.start = (ctx.now() - timedelta(days=365)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.end = self.month(12) + timedelta(hours=2)
        self.clock_id = ""
        self.now = self.start
        self.usage_customer: str | None = None
        self.usage_from = self.start
        self.usage_sent: list[dict[str, Any]] = []
        self.rng = random.Random(2024)

    # --- time -----------------------------------------------------------------------------------------

    def month(self, n: int) -> datetime:
        return shift(anchor=self.start, interval="month", count=1, n=n, tz="UTC")

    def at(self, when: datetime) -> Ctx:
        ctx = self.ctx
        return Ctx(session=ctx.session, org_id=ctx.org_id, actor=ctx.actor, clock=_At(when))

    def commit(self) -> None:
        """End the step: commit, then let the worker's payment jobs run as ``revflow serve`` would."""
        self.ctx.session.commit()
        self.run_jobs()

    def advance(self, to: datetime) -> None:
        """Move the clock to ``to``, stopping 2 hours after every billing point on the way (its invoice is
        finalized after the 1-hour grace period and charged at once), with usage reported as it happens."""
        while True:
            due = self.ctx.session.scalar(
                select(Subscription.next_billing_at)
                .where(
                    Subscription.test_clock_id == self.clock_id,
                    Subscription.next_billing_at.is_not(None),
                    Subscription.next_billing_at > self.now,
                )
                .order_by(Subscription.next_billing_at)
                .limit(1)
            )
            debit = self.ctx.session.scalar(  # an ACH debit in flight: it settles ach_settlement later
                select(func.min(Payment.scheduled_at)).where(
                    Payment.test_clock_id == self.clock_id, Payment.status == "processing"
                )
            )
            stops = [to]
            if due is not None:
                stops.append(due + timedelta(hours=2))
            if debit is not None and debit + self.ach_settled > self.now:
                stops.append(debit + self.ach_settled)
            stop = min(stops)
            self.report_usage(stop)
            test_clocks.advance_clock(self.ctx, self.clock_id, to=stop)
            self.now = stop
            self.commit()
            if stop >= to:
                return

    # --- the story --------------------------------------------------------------------------------------

    def simulate(self) -> None:
        ctx = self.ctx
        plans = self.catalog()
        first_year = coupons.create_coupon(
            ctx, name="20% off the first year", percent_off="20", duration="once"
        )
        self.clock_id = test_clocks.create_clock(ctx, frozen_time=self.start, name="Demo: one year").id
        start = self.start

        northwind = self.customer("Northwind Traders", "USD", "America/Los_Angeles", card="pm_usBankAccount")
        up = subscriptions.create_subscription(
            ctx, customer_id=northwind, plan_id=plans["team"], quantity=Decimal(5)
        )
        munich = self.customer("Münchner Daten AG", "EUR", "Europe/Berlin", "de_DE", card="pm_card_visa")
        down = subscriptions.create_subscription(
            ctx, customer_id=munich, plan_id=plans["team"], quantity=Decimal(3)
        )
        osaka = self.customer("Osaka Robotics KK", "JPY", "Asia/Tokyo", "ja_JP", card="pm_card_mastercard")
        subscriptions.create_subscription(
            ctx, customer_id=osaka, plan_id=plans["team"], quantity=Decimal(10), billing_cycle_day=1
        )
        globex = self.customer("Globex Corporation", "USD", "America/New_York")
        subscriptions.create_subscription(
            ctx,
            customer_id=globex,
            plan_id=plans["enterprise"],
            coupon_id=first_year.id,
            term_months=12,
            collection_method="send_invoice",
            days_until_due=30,
        )
        initech = self.customer("Initech", "USD", "America/Chicago", card="pm_card_visa")
        leaving = subscriptions.create_subscription(
            ctx, customer_id=initech, plan_id=plans["starter"], trial_days=14
        )
        self.commit()

        self.advance(start + timedelta(days=10))  # Lumen signs up for the usage-based plan
        lumen = self.customer(
            "Lumen Analytics Inc.",
            "USD",
            "America/Denver",
            card="pm_card_amex",
            external_ids={"app": "acct-lumen"},
        )
        subscriptions.create_subscription(ctx, customer_id=lumen, plan_id=plans["api"])
        self.usage_customer = "acct-lumen"
        self.usage_from = start + timedelta(days=10)
        self.commit()

        self.advance(start + timedelta(days=18))  # Globex pays its yearly invoice by wire, net 30
        self.wire(globex, start + timedelta(days=18))

        for n in range(1, 13):
            month = self.month(n)
            if n == 3:  # Northwind upgrades mid-month to the tiered plan with 25 seats
                self.advance(month - timedelta(days=15))
                subscriptions.change_subscription(
                    ctx,
                    up.id,
                    plan_id=plans["scale"],
                    quantity=Decimal(25),
                    proration_behavior="always_invoice",
                )
                self.commit()
            if n == 5:  # Münchner downgrades to Starter at the period end
                self.advance(month - timedelta(days=10))
                subscriptions.change_subscription(ctx, down.id, plan_id=plans["starter"])
                self.commit()
            if n == 7:  # Münchner's new company card starts declining: the July renewal goes to dunning
                self.advance(month - timedelta(days=2))
                self.swap_card(munich, "pm_card_chargeDeclined", month - timedelta(days=2), detach=True)
            if n == 8:  # Initech cancels at the period end
                self.advance(month - timedelta(days=5))
                subscriptions.cancel_subscription(ctx, leaving.id, at="period_end")
                self.commit()
            self.advance(month + timedelta(hours=2))
            if n == 7:  # two dunning retries fail (days 1 and 3), then Münchner adds a working card
                self.advance(month + timedelta(days=1, hours=3))
                self.advance(month + timedelta(days=3, hours=3))
                self.advance(month + timedelta(days=4))
                self.swap_card(munich, "pm_card_mastercard", month + timedelta(days=4), detach=True)
        self.advance(self.end)

    def catalog(self) -> dict[str, str]:
        ctx = self.ctx
        monthly = {"interval": "month"}
        usage_metrics.create_metric(
            ctx, code="api_calls", name="API calls", aggregation="sum", property="calls"
        )
        return {
            "starter": _plan(
                ctx,
                "starter",
                "Starter",
                [
                    ("USD", {"model": "flat", "flat_amount": "2900", **monthly}),
                    ("EUR", {"model": "flat", "flat_amount": "2700", **monthly}),
                ],
            ),
            "team": _plan(
                ctx,
                "team",
                "Team",
                [
                    ("USD", {"model": "per_unit", "unit_amount": "1200", **monthly}),
                    ("EUR", {"model": "per_unit", "unit_amount": "1100", **monthly}),
                    ("JPY", {"model": "per_unit", "unit_amount": "1800", **monthly}),
                ],
            ),
            "scale": _plan(
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
            ),
            "enterprise": _plan(
                ctx,
                "enterprise",
                "Enterprise",
                [("USD", {"model": "flat", "flat_amount": "1000000", "interval": "year"})],
            ),
            # A platform fee in advance, and API calls in arrears: the first 100,000 free, then $0.0005
            # a call up to a million, then $0.0003.
            "api": _plan(
                ctx,
                "api",
                "API",
                [
                    ("USD", {"model": "flat", "flat_amount": "4900", **monthly}),
                    (
                        "USD",
                        {
                            "model": "graduated",
                            "metric_code": "api_calls",
                            "tiers": [
                                {"up_to": 100000, "unit_amount": "0"},
                                {"up_to": 1000000, "unit_amount": "0.05"},
                                {"up_to": None, "unit_amount": "0.03"},
                            ],
                            **monthly,
                        },
                    ),
                ],
            ),
        }

    # --- customers ------------------------------------------------------------------------------------

    def customer(
        self,
        name: str,
        currency: str,
        tz: str,
        locale: str = "en_US",
        *,
        card: str | None = None,
        external_ids: dict[str, str] | None = None,
    ) -> str:
        """Create a customer on the clock, with ``card`` (a sandbox test token) saved as its default."""
        made = customers.create_customer(
            self.ctx,
            name=name,
            currency=currency,
            timezone=tz,
            locale=locale,
            email=f"billing@{name.split()[0].lower()}.example",
            test_clock_id=self.clock_id,
            external_ids=external_ids,
        )
        if card is not None:
            payment_methods.attach(self.at(self.now), made.id, self.gateway, token=card)
        return made.id

    def swap_card(self, customer_id: str, token: str, when: datetime, *, detach: bool = False) -> None:
        """The customer saves a new default card (which retries its dunning cases at once)."""
        ctx = self.at(when)
        old = [pm for pm in payment_methods.list_methods(ctx, customer_id) if pm.status == "active"]
        payment_methods.attach(ctx, customer_id, self.gateway, token=token)
        if detach:
            for pm in old:
                payment_methods.remove(ctx, customer_id, pm.id, self.gateway)
        self.commit()

    def wire(self, customer_id: str, when: datetime) -> None:
        """The customer pays its open invoices by bank transfer, recorded by hand."""
        open_ = invoices.list_invoices(self.ctx, customer_id=customer_id, status="open", limit=10).items
        for inv in open_:
            invoices.pay_out_of_band(
                self.at(when),
                inv.id,
                method="bank_transfer",
                reference=f"WIRE-{inv.number}",
                paid_at=when,
            )
        self.commit()

    # --- usage ----------------------------------------------------------------------------------------

    def report_usage(self, until: datetime) -> None:
        """Send the usage customer's API-call counts up to ``until`` through the ingestion service, one
        event a day; the client resends its last two events of the previous batch (a retry after a
        timeout), which are deduplicated."""
        if self.usage_customer is None or until <= self.usage_from:
            return
        batch: list[dict[str, Any]] = list(self.usage_sent[-2:])
        at = self.usage_from
        year = (self.end - self.start).total_seconds()
        while at + _USAGE_EVERY <= until:
            growth = 6000 + int(24000 * (at - self.start).total_seconds() / year)
            batch.append(
                {
                    "transaction_id": f"acct-lumen:{at:%Y%m%dT%H}",
                    "external_customer_id": self.usage_customer,
                    "metric_code": "api_calls",
                    "timestamp": at.isoformat(),
                    "properties": {"calls": growth + self.rng.randint(0, 2000)},
                }
            )
            at += _USAGE_EVERY
        self.usage_from = at
        if len(batch) > len(self.usage_sent[-2:]):
            usage_ingest.ingest(self.at(until), batch)
            self.usage_sent = batch

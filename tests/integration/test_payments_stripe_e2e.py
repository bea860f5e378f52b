"""The whole payments product through the Stripe adapter and the official SDK, against the fake Stripe.

A container built with ``REVFLOW_PAYMENT_GATEWAY=stripe`` points the SDK at a ``FakeStripe`` started per test;
the fake's webhooks reach ``POST /v1/webhooks/stripe`` signed with the endpoint secret the gateway verifies.
Everything happens through the public API and the worker jobs; charges are counted at the fake.

The Revflow clock is frozen at the real time the test starts and moved together with the fake's clock
(``_advance``), so gateway timestamps and Revflow's agree as they would in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import select

from revflow.adapters.payments.stripe import StripeGateway
from revflow.bootstrap import Container
from revflow.jobs.worker import reconcile_payments
from revflow.services import subscriptions
from revflow.services.context import Actor, Ctx
from revflow.storage.models import Alert, Invoice, Organization, Payment, Subscription
from revflow.storage.payment_models import Dispute, GatewayEventRecord
from tests.conftest import Tenant
from tests.fakes.stripe import FakeStripe, WebhookEndpoint, running_fake
from tests.integration.billing_helpers import make_plan, make_price
from tests.integration.payment_helpers import clock, customer, frozen_container, open_invoice, work


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with running_fake() as f:
        yield f


@pytest.fixture
def endpoint(fake: FakeStripe) -> WebhookEndpoint:
    return fake.add_webhook_endpoint()


@pytest.fixture
def container(db_url: str, fake: FakeStripe, endpoint: WebhookEndpoint) -> Iterator[Container]:
    started = datetime.now(UTC).replace(microsecond=0)
    for c in frozen_container(
        db_url,
        at=started,
        payment_gateway="stripe",
        stripe_api_key=fake.secret_key,
        stripe_webhook_secret=endpoint.secret,
        stripe_api_base=fake.url,
    ):
        assert isinstance(c.gateway, StripeGateway)
        yield c


def _deliver(fake: FakeStripe, client: TestClient) -> list[int | None]:
    """Every queued event, oldest first, to the webhook route; returns the HTTP statuses."""
    done = fake.deliver_webhooks(
        handler=lambda body, headers: (
            client.post("/v1/webhooks/stripe", content=body, headers=headers).status_code
        )
    )
    return [d.status for d in done]


def _cycle(container: Container, fake: FakeStripe, client: TestClient) -> None:
    """One worker cycle, then Stripe's webhooks for whatever it did (all must be acknowledged)."""
    work(container)
    statuses = _deliver(fake, client)
    assert set(statuses) <= {200}, statuses


def _advance(container: Container, fake: FakeStripe, delta: timedelta) -> None:
    clock(container).advance(delta)
    fake.advance_time(int(delta.total_seconds()))


def _intents(fake: FakeStripe) -> list[dict[str, Any]]:
    return fake.objects("payment_intent")


def _intent_posts(fake: FakeStripe) -> int:
    """Requests that create PaymentIntents (retries of a lost answer included)."""
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/v1/payment_intents")


def _payments(tenant: Tenant, inv: str) -> list[dict[str, Any]]:
    return sorted(
        tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"],
        key=lambda p: (p["attempt_number"] or 0, p["created_at"]),
    )


def _events(container: Container) -> list[tuple[str, str]]:
    """(Stripe event type, outcome) of every stored event that is about a payment, in arrival order."""
    with container.sessions() as s:
        rows = s.scalars(select(GatewayEventRecord).order_by(GatewayEventRecord.received_at))
        return [(e.raw_type, e.status) for e in rows if e.raw_type.startswith(("payment_intent.", "charge."))]


def _subscription(
    container: Container, t: Tenant, token: str, *, plan_id: str | None = None
) -> tuple[str, str, str]:
    """A customer saving ``token`` through Stripe and a monthly 30.00 subscription billed at once; returns
    (customer, subscription, first invoice) after the billing run finalized the invoice."""
    cus = customer(t, token=token)
    price = make_price(container, t.org_id, flat=3000) if plan_id is None else None
    with container.sessions() as s:
        s.get_one(Organization, t.org_id).invoice_grace_hours = 0
        ctx = Ctx(session=s, org_id=t.org_id, actor=Actor("cli"), clock=container.clock)
        start = container.clock.now()
        if price is not None:
            sub = subscriptions.create_subscription(
                ctx, customer_id=cus, items=[{"price_id": price}], start_at=start
            )
        else:
            sub = subscriptions.create_subscription(ctx, customer_id=cus, plan_id=plan_id, start_at=start)
        s.commit()
        inv = s.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).one()
    return cus, sub.id, inv.id


def _sub_status(container: Container, sub_id: str) -> str:
    with container.sessions() as s:
        return s.get_one(Subscription, sub_id).status


class TestCardPaidOnFinalization:
    def test_the_worker_charges_the_saved_card_once_and_the_webhooks_change_nothing(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        cus = customer(tenant)
        inv = open_invoice(tenant, cus)

        _cycle(container, fake, client)
        _cycle(container, fake, client)

        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"], invoice["amount_remaining"]) == ("paid", 5000, 0)
        (payment,) = _payments(tenant, inv)
        (pi,) = _intents(fake)
        assert (payment["status"], payment["amount"], payment["method"], payment["gateway"]) == (
            "succeeded",
            5000,
            "card",
            "stripe",
        )
        assert payment["gateway_ref"] == pi["id"]
        assert (pi["status"], pi["amount"], pi["currency"]) == ("succeeded", 5000, "usd")
        assert pi["metadata"]["revflow_invoice_id"] == inv
        assert pi["metadata"]["revflow_payment_id"] == payment["id"]
        (stripe_customer,) = fake.objects("customer")
        assert pi["customer"] == stripe_customer["id"]
        assert stripe_customer["metadata"] == {"revflow_customer_id": cus}
        (pm,) = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        assert (pm["brand"], pm["last4"], pm["token"]) == ("visa", "4242", pi["payment_method"])
        assert _intent_posts(fake) == 1
        assert [c["status"] for c in fake.objects("charge")] == ["succeeded"]
        assert _events(container) == [
            ("payment_intent.created", "ignored"),
            ("charge.succeeded", "ignored"),
            ("payment_intent.succeeded", "ignored"),  # the worker had recorded it already
        ]


class TestDunning:
    def test_a_decline_is_retried_on_schedule_then_recovered_by_a_new_card(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        cus, sub, inv = _subscription(container, tenant, "pm_card_chargeCustomerFail")
        _cycle(container, fake, client)
        first = tenant.get(f"/v1/invoices/{inv}/collection").json()
        past_due = _sub_status(container, sub)
        _advance(container, fake, timedelta(hours=23))
        _cycle(container, fake, client)
        not_yet = len(_intents(fake))
        _advance(container, fake, timedelta(hours=1))
        _cycle(container, fake, client)
        second = tenant.get(f"/v1/invoices/{inv}/collection").json()

        r = tenant.post(f"/v1/customers/{cus}/payment_methods", {"token": "pm_card_visa"})
        _cycle(container, fake, client)

        assert (first["status"], first["attempts"], first["next_action"]) == ("active", 1, "retry")
        assert first["payments"][0]["failure_code"] == "card_declined"
        assert first["payments"][0]["decline_code"] == "generic_decline"
        assert first["payments"][0]["hard_decline"] is False
        assert past_due == "past_due"
        assert not_yet == 1
        day1 = (clock(container).now() - timedelta(hours=24)).date() + timedelta(days=1)
        assert first["schedule"][0][:10] == day1.isoformat()
        assert second["attempts"] == 2
        assert [p["status"] for p in second["payments"]] == ["failed", "failed", "pending"]
        assert r.status_code == 201, r.text
        done = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (done["status"], done["invoice_status"]) == ("recovered", "paid")
        assert [p["status"] for p in done["payments"]] == ["failed", "failed", "succeeded"]
        assert _sub_status(container, sub) == "active"
        intents = _intents(fake)
        assert [(pi["status"], pi["amount"]) for pi in intents] == [
            ("requires_payment_method", 3000),
            ("requires_payment_method", 3000),
            ("succeeded", 3000),
        ]
        assert [p["gateway_ref"] for p in done["payments"]] == [pi["id"] for pi in intents]
        assert len({pi["metadata"]["revflow_idempotency_key"] for pi in intents}) == 3
        assert _intent_posts(fake) == 3
        mails = tenant.get("/v1/emails", params={"object_id": inv, "limit": 100}).json()["data"]
        assert sorted(m["template"] for m in mails) == ["recovered", "retry", "retry"]
        failed_events = [s for t, s in _events(container) if t == "payment_intent.payment_failed"]
        assert failed_events == ["ignored", "ignored"]  # the worker recorded both declines itself

    def test_a_card_renewed_at_stripe_during_dunning_is_retried_at_once(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        cus, _, inv = _subscription(container, tenant, "pm_card_chargeCustomerFail")
        _cycle(container, fake, client)
        (pm,) = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        scheduled = tenant.get(f"/v1/invoices/{inv}/collection").json()["next_action_at"]

        fake.update_card(pm["token"], exp_month=7, exp_year=2036)  # the card account updater
        statuses = _deliver(fake, client)
        brought_forward = tenant.get(f"/v1/invoices/{inv}/collection").json()
        _cycle(container, fake, client)

        assert statuses == [200]
        assert scheduled[:10] == (clock(container).now() + timedelta(days=1)).date().isoformat()
        (renewed,) = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        assert (renewed["exp_month"], renewed["exp_year"], renewed["is_default"]) == (7, 2036, True)
        assert brought_forward["next_action_at"] == clock(container).now().isoformat().replace("+00:00", "Z")
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert view["attempts"] == 2  # retried now, not tomorrow (this test card keeps declining)
        assert [pi["status"] for pi in _intents(fake)] == ["requires_payment_method"] * 2

    def test_authentication_required_is_dunned_like_a_soft_decline(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_authenticationRequired"))

        _cycle(container, fake, client)

        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["attempts"], view["next_action"]) == ("active", 1, "retry")
        first = view["payments"][0]
        assert (first["status"], first["failure_code"], first["hard_decline"]) == (
            "requires_action",
            "authentication_required",
            False,
        )
        assert [p["status"] for p in view["payments"]] == ["requires_action", "pending"]
        (pi,) = _intents(fake)
        assert pi["status"] == "requires_payment_method"
        assert first["gateway_ref"] == pi["id"]


class TestHardDecline:
    def test_a_card_stripe_refuses_to_save_is_refused_and_nothing_is_stored(
        self, tenant: Tenant, fake: FakeStripe
    ) -> None:
        cus = customer(tenant, token=None)

        r = tenant.post(f"/v1/customers/{cus}/payment_methods", {"token": "pm_card_chargeDeclinedStolenCard"})

        assert (r.status_code, r.json()["code"]) == (422, "card_declined")
        assert tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"] == []
        assert [pm["customer"] for pm in fake.objects("payment_method")] == [None] * len(
            fake.objects("payment_method")
        )

    def test_a_closed_bank_account_goes_straight_to_the_final_action(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        price = make_price(container, tenant.org_id, flat=3000)
        plan = make_plan(container, tenant.org_id, "strict", [price])
        policy = tenant.post(
            "/v1/dunning_policies",
            {"name": "Strict", "retry_days": [2, 4, 20], "final_action": "cancel", "plan_ids": [plan]},
        )
        _, sub, inv = _subscription(container, tenant, "pm_usBankAccount", plan_id=plan)
        _cycle(container, fake, client)
        (pi,) = _intents(fake)
        _advance(container, fake, timedelta(days=4))

        fake.settle_ach(
            pi["id"],
            succeed=False,
            failure_code="account_closed",
            failure_message="The customer's bank account has been closed.",
        )
        statuses = _deliver(fake, client)
        _cycle(container, fake, client)

        assert policy.status_code == 201, policy.text
        assert statuses == [200, 200]  # charge.failed, payment_intent.payment_failed
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["final_action"], view["attempts"]) == ("exhausted", "cancel", 1)
        (payment,) = view["payments"]
        assert (payment["status"], payment["failure_code"], payment["hard_decline"]) == (
            "failed",
            "account_closed",
            True,
        )
        assert payment["method"] == "us_bank_account"
        assert _sub_status(container, sub) == "canceled"
        mails = tenant.get("/v1/emails", params={"object_id": inv}).json()["data"]
        assert [m["template"] for m in mails] == ["final"]
        assert _intent_posts(fake) == 1
        assert ("payment_intent.payment_failed", "processed") in _events(container)


class TestSendInvoiceReminders:
    def test_an_overdue_send_invoice_invoice_is_reminded_then_canceled_and_never_charged(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        price = make_price(container, tenant.org_id, flat=3000)
        plan = make_plan(container, tenant.org_id, "net10", [price])
        tenant.post(
            "/v1/dunning_policies",
            {"name": "Net 10", "retry_days": [3, 7], "final_action": "cancel", "plan_ids": [plan]},
        )
        cus = customer(tenant)  # a saved card: still never charged, the customer pays these themselves
        with container.sessions() as s:
            s.get_one(Organization, tenant.org_id).invoice_grace_hours = 0
            ctx = Ctx(session=s, org_id=tenant.org_id, actor=Actor("cli"), clock=container.clock)
            sub = subscriptions.create_subscription(
                ctx,
                customer_id=cus,
                plan_id=plan,
                start_at=container.clock.now(),
                collection_method="send_invoice",
                days_until_due=10,
            )
            s.commit()
            inv = s.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).one().id
        due = datetime.fromisoformat(tenant.get(f"/v1/invoices/{inv}").json()["due_date"])
        overdue_at = datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(days=1)
        _cycle(container, fake, client)

        _advance(container, fake, overdue_at - clock(container).now() - timedelta(seconds=1))
        _cycle(container, fake, client)
        before = tenant.get(f"/v1/invoices/{inv}/collection").json()["status"]
        _advance(container, fake, timedelta(seconds=1))
        _cycle(container, fake, client)
        overdue = tenant.get(f"/v1/invoices/{inv}/collection").json()
        past_due = _sub_status(container, sub.id)
        _advance(container, fake, timedelta(days=3))
        _cycle(container, fake, client)
        _advance(container, fake, timedelta(days=4))
        _cycle(container, fake, client)

        assert before == "none"
        assert (overdue["status"], overdue["mode"], overdue["next_action"]) == (
            "active",
            "send_invoice",
            "remind",
        )
        assert past_due == "past_due"
        done = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (done["status"], done["final_action"], done["attempts"]) == ("exhausted", "cancel", 2)
        assert _sub_status(container, sub.id) == "canceled"
        mails = tenant.get("/v1/emails", params={"object_id": inv, "limit": 100}).json()["data"]
        assert sorted(m["template"] for m in mails) == ["final", "overdue", "overdue"]
        assert (_intent_posts(fake), _intents(fake), done["payments"]) == (0, [], [])


class TestBankDebit:
    def test_an_ach_debit_settles_days_later_through_a_webhook(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_usBankAccount"))
        _cycle(container, fake, client)
        processing = _payments(tenant, inv)
        _advance(container, fake, timedelta(days=3))
        _cycle(container, fake, client)
        still = tenant.get(f"/v1/invoices/{inv}").json()["status"]
        (pi,) = _intents(fake)

        _advance(container, fake, timedelta(days=1))
        fake.settle_ach(pi["id"])
        _deliver(fake, client)  # the webhook comes before the worker's reconciliation would settle it
        _cycle(container, fake, client)

        assert [(p["status"], p["method"]) for p in processing] == [("processing", "us_bank_account")]
        assert still == "open"
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 5000)
        (payment,) = _payments(tenant, inv)
        assert (payment["status"], payment["method"], payment["gateway_ref"]) == (
            "succeeded",
            "us_bank_account",
            pi["id"],
        )
        assert [(p["status"], p["payment_method_types"]) for p in _intents(fake)] == [
            ("succeeded", ["us_bank_account"])
        ]
        assert ("payment_intent.succeeded", "processed") in _events(container)
        assert _intent_posts(fake) == 1


class TestRefunds:
    def test_a_refund_through_revflow_and_one_made_at_stripe_each_produce_one_credit_note(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)

        ours = tenant.post(
            f"/v1/payments/{payment['id']}/refunds", {"amount": 2000, "reason": "requested_by_customer"}
        )
        _deliver(fake, client)
        theirs = fake.client().v1.refunds.create({"payment_intent": payment["gateway_ref"], "amount": 500})
        _deliver(fake, client)
        _deliver(fake, client)
        too_much = tenant.post(f"/v1/payments/{payment['id']}/refunds", {"amount": 2501})

        assert ours.status_code == 201, ours.text
        notes = tenant.get("/v1/credit_notes", params={"invoice_id": inv}).json()["data"]
        assert sorted(n["amount"] for n in notes) == [500, 2000]
        assert ours.json()["credit_note_id"] in {n["id"] for n in notes}
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["amount_refunded"] == 2500
        refunds = fake.objects("refund")
        assert sorted((r["amount"], r["status"]) for r in refunds) == [
            (500, "succeeded"),
            (2000, "succeeded"),
        ]
        assert theirs.id in {r["id"] for r in refunds}
        (charge,) = fake.objects("charge")
        assert charge["amount_refunded"] == 2500
        assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_amount_too_large")
        assert [s for t, s in _events(container) if t == "charge.refunded"] == ["ignored", "processed"]


class TestChangesMadeAtStripe:
    def test_a_dispute_flags_the_invoice_and_a_detached_card_stops_being_the_default(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        cus = customer(tenant)
        inv = open_invoice(tenant, cus)
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)
        (pm,) = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]

        dispute = fake.create_dispute(payment["gateway_ref"], reason="fraudulent")
        fake.client().v1.payment_methods.detach(pm["token"])
        statuses = _deliver(fake, client)

        assert statuses == [200, 200]
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert view["disputed"] is True
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["disputed"] is True
        alerts = tenant.get("/v1/alerts").json()["data"]
        assert [(a["type"], a["object_id"]) for a in alerts] == [("payment_disputed", inv)]
        assert dispute["payment_intent"] == payment["gateway_ref"]
        assert tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"] == []
        with container.sessions() as s:
            stored = {
                e.raw_type: e.status
                for e in s.scalars(select(GatewayEventRecord))
                if e.raw_type in ("charge.dispute.created", "payment_method.detached")
            }
        assert stored == {"charge.dispute.created": "processed", "payment_method.detached": "processed"}


class TestDisputeLifecycle:
    @pytest.mark.parametrize(
        ("evidence", "outcome", "invoice_after", "alerts_after"),
        [
            ("winning_evidence", "won", ("paid", 5000, 0, "won", False), []),
            (
                "losing_evidence",
                "lost",
                ("open", 0, 5000, "lost", True),
                [("payment_dispute_lost", "open", "critical")],
            ),
        ],
    )
    def test_a_dispute_flags_the_invoice_and_its_evidence_decides_the_outcome(
        self,
        tenant: Tenant,
        container: Container,
        fake: FakeStripe,
        client: TestClient,
        evidence: str,
        outcome: str,
        invoice_after: tuple[object, ...],
        alerts_after: list[tuple[str, str, str]],
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)
        dispute = fake.create_dispute(payment["gateway_ref"], reason="fraudulent")
        _deliver(fake, client)
        opened = tenant.get(f"/v1/invoices/{inv}").json()
        listed = [i["id"] for i in tenant.get("/v1/invoices", params={"disputed": "true"}).json()["data"]]

        closed = fake.client().v1.disputes.update(
            dispute["id"], {"evidence": {"uncategorized_text": evidence}, "submit": True}
        )
        statuses = _deliver(fake, client)
        _cycle(container, fake, client)  # nothing is charged again: the customer is asked, not debited

        assert (opened["dispute_status"], opened["disputed"], opened["status"]) == (
            "needs_response",
            True,
            "paid",
        )
        assert listed == [inv]
        assert (closed.status, statuses) == (outcome, [200, 200])
        assert closed.evidence.uncategorized_text == evidence
        after = tenant.get(f"/v1/invoices/{inv}").json()
        assert (
            after["status"],
            after["amount_paid"],
            after["amount_remaining"],
            after["dispute_status"],
            after["disputed"],
        ) == invoice_after
        flagged = [i["id"] for i in tenant.get("/v1/invoices", params={"disputed": "true"}).json()["data"]]
        assert flagged == ([inv] if outcome == "lost" else [])
        assert tenant.get(f"/v1/disputes/{_dispute_id(container)}").json()["status"] == outcome
        alerts = tenant.get("/v1/alerts", params={"status": "open"}).json()["data"]
        assert [(a["type"], a["status"], a["severity"]) for a in alerts] == alerts_after
        assert [e for e in _events(container) if e[0].startswith("charge.dispute.")] == [
            ("charge.dispute.created", "processed"),
            ("charge.dispute.updated", "processed"),
            ("charge.dispute.closed", "processed"),
        ]
        assert (_intent_posts(fake), len(_payments(tenant, inv))) == (1, 1)

    def test_closing_a_dispute_at_stripe_loses_it_once_whatever_the_event_order(
        self,
        tenant: Tenant,
        container: Container,
        fake: FakeStripe,
        endpoint: WebhookEndpoint,
        client: TestClient,
    ) -> None:
        inv = open_invoice(tenant, customer(tenant), amount=8000)
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)
        dispute = fake.create_dispute(payment["gateway_ref"], amount=3000)
        fake.client().v1.disputes.close(dispute["id"])
        queued = [d.event_id for d in fake.deliver_webhooks(handler=lambda body, headers: None)]
        replay = []  # lost on the way, then redelivered newest first, and twice
        for event_id in [*reversed(queued), *queued]:
            body, headers = fake.sign(event_id, secret=endpoint.secret)
            replay.append(client.post("/v1/webhooks/stripe", content=body, headers=headers).status_code)
        refused = fake.client().v1.disputes.close
        with pytest.raises(stripe.InvalidRequestError) as err:
            refused(dispute["id"])

        assert set(replay) == {200}
        after = tenant.get(f"/v1/invoices/{inv}").json()
        assert (
            after["status"],
            after["amount_paid"],
            after["amount_remaining"],
            after["dispute_status"],
        ) == (
            "open",
            5000,
            3000,
            "lost",
        )
        assert err.value.code == "dispute_already_closed"
        assert len(queued) == 2
        assert sorted(e for e in _events(container) if e[0].startswith("charge.dispute.")) == [
            ("charge.dispute.closed", "processed"),
            ("charge.dispute.created", "processed"),
        ]
        assert tenant.get(f"/v1/disputes/{_dispute_id(container)}").json()["amount"] == 3000
        lost = [a for a in tenant.get("/v1/alerts").json()["data"] if a["type"] == "payment_dispute_lost"]
        assert [(a["details"]["amount"], a["object_id"]) for a in lost] == [(3000, inv)]


def _dispute_id(container: Container) -> str:
    with container.sessions() as s:
        (dispute_id,) = s.scalars(select(Dispute.id))
        return str(dispute_id)


class TestCanceledAtStripe:
    def test_an_intent_canceled_at_stripe_fails_its_attempt_once_and_dunning_retries_on_schedule(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_authenticationRequired"))
        _cycle(container, fake, client)
        (before,) = [p for p in _payments(tenant, inv) if p["gateway_ref"]]
        scheduled = tenant.get(f"/v1/invoices/{inv}/collection").json()

        canceled = fake.client().v1.payment_intents.cancel(
            before["gateway_ref"], {"cancellation_reason": "abandoned"}
        )
        statuses = _deliver(fake, client)

        assert before["status"] == "requires_action"
        assert (canceled.status, set(statuses)) == ("canceled", {200})
        (after,) = [p for p in _payments(tenant, inv) if p["gateway_ref"]]
        assert (after["status"], after["failure_code"], after["hard_decline"]) == (
            "failed",
            "canceled",
            False,
        )
        assert after["failure_message"] == "The PaymentIntent was canceled (abandoned)."
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["attempts"], view["next_action_at"]) == (
            "active",
            1,
            scheduled["next_action_at"],
        )
        assert ("payment_intent.canceled", "processed") in _events(container)
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "open"


class TestBankRefunds:
    @pytest.mark.parametrize("succeed", [True, False])
    def test_a_pending_bank_refund_settles_or_fails_days_later_through_a_webhook(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient, succeed: bool
    ) -> None:
        cus = customer(tenant, token="pm_usBankAccount")
        inv = open_invoice(tenant, cus)
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)
        fake.settle_ach(payment["gateway_ref"])
        _cycle(container, fake, client)
        refund = tenant.post(f"/v1/payments/{payment['id']}/refunds", {"amount": 2000}).json()
        _deliver(fake, client)

        fake.settle_refund(refund["gateway_ref"], succeed=succeed, failure_reason="unknown")
        statuses = _deliver(fake, client)

        assert (refund["status"], set(statuses)) == ("pending", {200})
        assert tenant.get(f"/v1/refunds/{refund['id']}").json()["status"] == (
            "succeeded" if succeed else "failed"
        )
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["amount_refunded"] == (
            2000 if succeed else 0
        )
        txns = tenant.get(f"/v1/customers/{cus}/balance_transactions").json()["data"]
        assert sorted((t["type"], t["amount"]) for t in txns if t["type"].startswith("refund")) == (
            [("refund", -2000)] if succeed else [("refund", -2000), ("refund_failed", 2000)]
        )
        alerts = tenant.get("/v1/alerts", params={"status": "open"}).json()["data"]
        assert [a["type"] for a in alerts] == ([] if succeed else ["refund_failed"])
        assert ("charge.refund.updated", "processed") in _events(container)
        assert reconcile_payments(container, force=True) == 0  # Revflow's refunds agree with Stripe's


class TestWebhookDelivery:
    def test_duplicate_and_out_of_order_events_are_processed_once(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_usBankAccount"))
        work(container)  # processing; its webhooks stay queued
        (pi,) = _intents(fake)
        _advance(container, fake, timedelta(days=4))
        fake.settle_ach(pi["id"])
        queued = fake.pending_webhooks()

        answers = []
        for event in [*reversed(queued), *queued]:  # newest first, then every one again
            body, headers = fake.sign(event)
            r = client.post("/v1/webhooks/stripe", content=body, headers=headers)
            answers.append((event["type"], r.status_code, r.json()["status"]))

        n = len(queued)
        by_type = {t: s for t, _, s in answers[:n]}
        assert by_type["payment_intent.succeeded"] == "processed"
        assert by_type["payment_intent.processing"] == "ignored"  # older news than what arrived first
        assert [a[1:] for a in answers[n:]] == [(200, "duplicate")] * n
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 5000)
        (payment,) = _payments(tenant, inv)
        assert payment["status"] == "succeeded"
        balance = tenant.get(f"/v1/customers/{invoice['customer_id']}/balance_transactions").json()["data"]
        assert balance == []
        with container.sessions() as s:
            ids = list(s.scalars(select(GatewayEventRecord.event_id)))
        assert sorted(ids) == sorted(e["id"] for e in queued)

    def test_a_forged_or_stale_signature_is_refused_and_nothing_is_stored(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        work(container)
        event = fake.pending_webhooks()[-1]
        body, wrong_secret = fake.sign(event, secret="whsec_not_the_endpoints")
        _, stale = fake.sign(event, timestamp=int(datetime.now(UTC).timestamp()) - 3600)

        forged = client.post("/v1/webhooks/stripe", content=body, headers=wrong_secret)
        old = client.post("/v1/webhooks/stripe", content=body, headers=stale)

        assert [(r.status_code, r.json()["code"]) for r in (forged, old)] == [(400, "invalid_signature")] * 2
        with container.sessions() as s:
            assert list(s.scalars(select(GatewayEventRecord))) == []
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"


class TestUnknownOutcomes:
    @pytest.mark.parametrize(
        ("fault", "intents_after_fault"),
        [("disconnect", 1), ("timeout_before", 0), ("500", 0), ("malformed", 1)],
    )
    def test_a_lost_answer_is_resolved_by_asking_stripe_and_charges_once(
        self,
        tenant: Tenant,
        container: Container,
        fake: FakeStripe,
        client: TestClient,
        fault: str,
        intents_after_fault: int,
    ) -> None:
        fake.hang_seconds = 0.2
        inv = open_invoice(tenant, customer(tenant))
        fake.fail_next(fault, method="POST", path="/v1/payment_intents")  # type: ignore[arg-type]

        work(container)  # the answer is lost (its webhooks are held back: the janitor alone resolves it)
        after_fault = ([p["status"] for p in _payments(tenant, inv)], len(_intents(fake)))
        work(container)
        resolved = [p["status"] for p in _payments(tenant, inv)]
        _deliver(fake, client)

        assert after_fault == (["unknown"], intents_after_fault)
        assert resolved == ["succeeded"]
        (payment,) = _payments(tenant, inv)
        (pi,) = _intents(fake)
        assert (payment["status"], payment["attempt_number"], payment["gateway_ref"]) == (
            "succeeded",
            1,
            pi["id"],
        )
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"
        assert len(fake.objects("charge")) == 1
        # found by its metadata, or sent again under the same Idempotency-Key when Stripe never did it
        keys = {
            r.idempotency_key for r in fake.requests if r.path == "/v1/payment_intents" and r.method == "POST"
        }
        assert keys == {f"revflow:{tenant.org_id}:{inv}:attempt:1"}
        assert _intent_posts(fake) == 1 + (1 - intents_after_fault)

    def test_a_lost_answer_is_settled_by_stripes_webhook_before_the_janitor_asks(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        fake.fail_next("disconnect", method="POST", path="/v1/payment_intents")

        work(container)
        lost = [(p["status"], p["gateway_ref"]) for p in _payments(tenant, inv)]
        _deliver(fake, client)
        work(container)

        (pi,) = _intents(fake)
        assert lost == [("unknown", None)]
        (payment,) = _payments(tenant, inv)
        assert (payment["status"], payment["gateway_ref"]) == ("succeeded", pi["id"])
        assert ("payment_intent.succeeded", "processed") in _events(container)  # matched by its metadata
        assert _intent_posts(fake) == 1
        janitor = [
            r
            for r in fake.requests
            if r.method == "GET" and r.path == "/v1/payment_intents" and "customer" in r.params
        ]
        assert janitor == []  # find_charge was never needed


def _worker_process(db_url: str, fake: FakeStripe, secret: str, failpoint: str | None) -> Any:
    """One cycle of a real ``revflow worker`` process configured for Stripe at the fake."""
    env = {
        **os.environ,
        "REVFLOW_DATABASE_URL": db_url,
        "REVFLOW_PAYMENT_LEASE_SECONDS": "0",
        "REVFLOW_LOG_LEVEL": "WARNING",
        "REVFLOW_PAYMENT_GATEWAY": "stripe",
        "REVFLOW_STRIPE_API_KEY": fake.secret_key,
        "REVFLOW_STRIPE_WEBHOOK_SECRET": secret,
        "REVFLOW_STRIPE_API_BASE": fake.url,
    }
    env.pop("REVFLOW_FAILPOINT", None)
    if failpoint is not None:
        env["REVFLOW_FAILPOINT"] = failpoint
    cmd = [sys.executable, "-m", "revflow.cli.main", "worker", "--once"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


class TestKillSafeCharging:
    @pytest.mark.parametrize(
        ("failpoint", "intents_at_crash"),
        [("payments.after_gateway_call:1", 1), ("payments.before_gateway_call:1", 0)],
    )
    def test_a_worker_killed_around_the_stripe_call_charges_exactly_once_after_restart(
        self,
        tenant: Tenant,
        container: Container,
        db_url: str,
        fake: FakeStripe,
        endpoint: WebhookEndpoint,
        client: TestClient,
        failpoint: str,
        intents_at_crash: int,
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))

        crash = _worker_process(db_url, fake, endpoint.secret, failpoint)
        with container.sessions() as s:
            at_crash = [p.status for p in s.scalars(select(Payment).where(Payment.invoice_id == inv))]
        intents = len(_intents(fake))
        rerun = _worker_process(db_url, fake, endpoint.secret, None)
        again = _worker_process(db_url, fake, endpoint.secret, None)
        webhooks = _deliver(fake, client)

        assert crash.returncode == 97, crash.stderr  # died at the failpoint, as kill -9 would
        assert (at_crash, intents) == (["sending"], intents_at_crash)
        assert (rerun.returncode, again.returncode) == (0, 0), rerun.stderr + again.stderr
        assert set(webhooks) == {200}
        (payment,) = _payments(tenant, inv)
        (pi,) = _intents(fake)
        assert (payment["status"], payment["attempt_number"], payment["gateway_ref"]) == (
            "succeeded",
            1,
            pi["id"],
        )
        assert (pi["status"], pi["amount"]) == ("succeeded", 5000)
        assert len(fake.objects("charge")) == 1
        assert _intent_posts(fake) == 1
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 5000)


class TestReconciliation:
    def test_planted_discrepancies_become_alerts_and_matching_payments_do_not(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        clean_inv = open_invoice(tenant, customer(tenant))
        tampered_inv = open_invoice(tenant, customer(tenant))
        _cycle(container, fake, client)
        (clean,) = _payments(tenant, clean_inv)
        (tampered,) = _payments(tenant, tampered_inv)
        with container.sessions() as s:  # plant: Revflow's record of one payment disagrees with Stripe
            s.get_one(Payment, tampered["id"]).amount = 4999
            s.commit()
        stripe_sdk = fake.client()  # plant: a charge at Stripe that Revflow never recorded
        stray_customer = stripe_sdk.v1.customers.create({"email": "stray@example.com"})
        planted = stripe_sdk.v1.payment_intents.create(
            {
                "amount": 777,
                "currency": "usd",
                "customer": stray_customer.id,
                "payment_method": "pm_card_visa",
                "confirm": True,
                "payment_method_types": ["card"],
                "metadata": {"revflow_org_id": tenant.org_id},
            }
        )

        found = reconcile_payments(container, force=True)
        again = reconcile_payments(container, force=True)

        assert (found, again) == (2, 2)
        with container.sessions() as s:
            alerts = list(s.scalars(select(Alert).where(Alert.type == "payment_discrepancy")))
        assert sorted((a.details["kind"], a.details["gateway_ref"]) for a in alerts) == sorted(
            [("amount_mismatch", tampered["gateway_ref"]), ("missing_in_revflow", planted.id)]
        )
        assert all(a.object_id != clean["id"] for a in alerts)
        assert {a.details["gateway"] for a in alerts} == {"stripe"}
        assert {a.org_id for a in alerts} == {tenant.org_id}

    @pytest.mark.parametrize(("succeed", "settled"), [(True, "succeeded"), (False, "failed")])
    def test_an_ach_settlement_whose_webhook_is_in_flight_is_applied_once_and_not_alerted(
        self,
        tenant: Tenant,
        container: Container,
        fake: FakeStripe,
        client: TestClient,
        succeed: bool,
        settled: str,
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_usBankAccount"))
        _cycle(container, fake, client)
        (before,) = _payments(tenant, inv)
        _advance(container, fake, timedelta(days=4))
        fake.settle_ach(before["gateway_ref"], succeed=succeed)  # its webhooks are not delivered yet

        found = reconcile_payments(container, force=True)
        (after,) = _payments(tenant, inv)
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        statuses = _deliver(fake, client)

        assert (before["status"], found, after["status"]) == ("processing", 0, settled)
        assert (invoice["status"], invoice["amount_paid"]) == (("paid", 5000) if succeed else ("open", 0))
        assert set(statuses) == {200}
        late = "payment_intent.succeeded" if succeed else "payment_intent.payment_failed"
        assert (late, "ignored") in _events(container)
        again = tenant.get(f"/v1/invoices/{inv}").json()
        assert (again["status"], again["amount_paid"]) == (invoice["status"], invoice["amount_paid"])
        with container.sessions() as s:
            assert not list(s.scalars(select(Alert).where(Alert.type == "payment_discrepancy")))

    def test_a_discrepancy_that_no_longer_holds_is_resolved_on_the_next_run(
        self, tenant: Tenant, container: Container, fake: FakeStripe, client: TestClient
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        _cycle(container, fake, client)
        (payment,) = _payments(tenant, inv)

        def plant(amount: int) -> int:
            with container.sessions() as s:
                s.get_one(Payment, payment["id"]).amount = amount
                s.commit()
            return reconcile_payments(container, force=True)

        def alerts() -> list[tuple[str, str]]:
            with container.sessions() as s:
                rows = s.scalars(select(Alert).where(Alert.type == "payment_discrepancy"))
                return [(a.details["kind"], a.status) for a in rows]

        first = plant(4999)
        opened = alerts()
        cleared = plant(5000)

        assert (first, cleared) == (1, 0)
        assert opened == [("amount_mismatch", "open")]
        assert alerts() == [("amount_mismatch", "resolved")]

"""Collection through the sandbox gateway: charge on finalization, dunning, ACH, unknown outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.services import subscriptions
from revflow.services.context import Actor, Ctx
from revflow.storage.models import Invoice, Organization, Payment, Subscription
from revflow.storage.payment_models import GatewayEventRecord
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_plan, make_price
from tests.integration.payment_helpers import (
    T0,
    clock,
    customer,
    frozen_container,
    open_invoice,
    sandbox_charges,
    work,
)


@pytest.fixture
def container(db_url: str) -> Iterator[Container]:
    yield from frozen_container(db_url)


def _subscription(
    container: Container, t: Tenant, token: str, *, plan_id: str | None = None
) -> tuple[str, str]:
    """A customer with ``token`` and a monthly 30.00 subscription billed now (no grace); returns
    (customer id, subscription id) after the billing run made and finalized its first invoice."""
    cus = customer(t, token=token)
    price = make_price(container, t.org_id, flat=3000) if plan_id is None else None
    with container.sessions() as s:
        s.get_one(Organization, t.org_id).invoice_grace_hours = 0
        ctx = Ctx(session=s, org_id=t.org_id, actor=Actor("cli"), clock=container.clock)
        if price is not None:
            sub = subscriptions.create_subscription(
                ctx, customer_id=cus, items=[{"price_id": price}], start_at=T0
            )
        else:
            sub = subscriptions.create_subscription(ctx, customer_id=cus, plan_id=plan_id, start_at=T0)
        s.commit()
    return cus, sub.id


def _invoice_of(container: Container, sub_id: str) -> Invoice:
    with container.sessions() as s:
        q = select(Invoice).where(Invoice.subscription_id == sub_id).order_by(Invoice.created_at, Invoice.id)
        return s.scalars(q).first()  # type: ignore[return-value]


def _sub_status(container: Container, sub_id: str) -> str:
    with container.sessions() as s:
        return s.get_one(Subscription, sub_id).status


class TestChargeOnFinalization:
    def test_a_card_invoice_is_charged_once_by_the_worker_after_finalization(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        queued = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]

        work(container)
        work(container)

        assert [(p["status"], p["attempt_number"]) for p in queued] == [("pending", 1)]
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"], invoice["amount_remaining"]) == ("paid", 5000, 0)
        (payment,) = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        assert (payment["status"], payment["amount"], payment["method"]) == ("succeeded", 5000, "card")
        assert payment["gateway"] == "sandbox" and payment["gateway_ref"].startswith("pi_sbx_")
        assert sandbox_charges(container) == 1

    def test_a_billing_run_invoice_is_charged_on_the_default_method(
        self, tenant: Tenant, container: Container
    ) -> None:
        _, sub = _subscription(container, tenant, "pm_card_mastercard")

        work(container)

        inv = _invoice_of(container, sub)
        assert (inv.status, inv.amount_paid) == ("paid", 3000)
        assert _sub_status(container, sub) == "active"

    def test_a_send_invoice_invoice_waits_for_its_due_date_and_is_never_charged(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant), method="send_invoice")

        work(container)

        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "open"
        assert tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"] == []
        assert sandbox_charges(container) == 0

    def test_an_invoice_paid_by_hand_before_the_worker_runs_is_not_charged(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        r = tenant.post(f"/v1/invoices/{inv}/payments", {"amount": 5000, "method": "check"})

        work(container)

        assert r.status_code == 201
        statuses = sorted(
            p["status"] for p in tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        )
        assert statuses == ["canceled", "succeeded"]
        assert sandbox_charges(container) == 0

    def test_a_partial_payment_by_hand_leaves_the_rest_to_the_charge(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        tenant.post(f"/v1/invoices/{inv}/payments", {"amount": 1200, "method": "bank_transfer"})

        work(container)

        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 5000)
        amounts = sorted(
            p["amount"] for p in tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        )
        assert amounts == [1200, 3800]


class TestManualCharge:
    def test_charging_queues_a_retry_and_refuses_paid_void_and_draft_invoices(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant, token="pm_card_chargeDeclined")
        inv = open_invoice(tenant, cus)
        work(container)  # the first attempt is declined; dunning schedules a retry in a day
        tenant.post(f"/v1/customers/{cus}/payment_methods", {"token": "pm_card_visa", "set_default": False})
        paid = open_invoice(tenant, customer(tenant))
        work(container)
        void = open_invoice(tenant, customer(tenant, token=None), method="send_invoice")
        tenant.post(f"/v1/invoices/{void}/void")
        draft = tenant.post(
            "/v1/invoices", {"customer_id": cus, "items": [{"description": "x", "amount": 10}]}
        ).json()["id"]

        r = tenant.post(f"/v1/invoices/{inv}/charge")

        assert r.status_code == 202, r.text
        assert (r.json()["status"], r.json()["attempt_number"]) == ("pending", 2)
        for other in (paid, void, draft):
            refused = tenant.post(f"/v1/invoices/{other}/charge")
            assert (refused.status_code, refused.json()["code"]) == (409, "invalid_state"), refused.text

    def test_charging_without_a_payment_method_answers_422(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token=None), method="send_invoice")

        r = tenant.post(f"/v1/invoices/{inv}/charge")

        assert (r.status_code, r.json()["code"]) == (422, "no_payment_method")
        assert tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"] == []


class TestDunning:
    def test_a_decline_is_retried_on_schedule_then_recovered_by_a_payment_method_update(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus, sub = _subscription(container, tenant, "pm_card_chargeDeclinedInsufficientFunds")
        work(container)
        inv = _invoice_of(container, sub).id
        first = tenant.get(f"/v1/invoices/{inv}/collection").json()
        clock(container).advance(timedelta(hours=23))
        work(container)
        not_yet = tenant.get(f"/v1/invoices/{inv}/collection").json()["attempts"]
        clock(container).advance(timedelta(hours=1))
        work(container)
        second = tenant.get(f"/v1/invoices/{inv}/collection").json()

        r = tenant.post(f"/v1/customers/{cus}/payment_methods", {"token": "pm_card_visa"})
        work(container)

        assert (first["status"], first["attempts"], first["next_action"]) == ("active", 1, "retry")
        assert [d[:10] for d in first["schedule"]] == ["2030-03-02", "2030-03-04", "2030-03-06", "2030-03-08"]
        assert first["payments"][0]["decline_code"] == "insufficient_funds"
        assert not_yet == 1
        assert (second["attempts"], second["next_action_at"][:10]) == (2, "2030-03-04")
        assert [p["status"] for p in second["payments"]] == ["failed", "failed", "pending"]
        assert r.status_code == 201
        done = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (done["status"], done["invoice_status"]) == ("recovered", "paid")
        assert [p["status"] for p in done["payments"]] == ["failed", "failed", "succeeded"]
        assert _sub_status(container, sub) == "active"
        mails = tenant.get("/v1/emails", params={"object_id": inv, "limit": 100}).json()["data"]
        assert sorted(m["template"] for m in mails) == ["recovered", "retry", "retry"]
        assert {m["status"] for m in mails} == {"stored"}
        assert all(m["to"] == "ada@example.com" for m in mails)
        assert any("2030-03-02" in m["body"] for m in mails)
        assert sandbox_charges(container) == 3

    def test_the_subscription_is_past_due_while_dunning(self, tenant: Tenant, container: Container) -> None:
        _, sub = _subscription(container, tenant, "pm_card_chargeDeclined")

        work(container)

        assert _sub_status(container, sub) == "past_due"

    def test_a_hard_decline_goes_straight_to_the_policys_final_action(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=3000)
        plan = make_plan(container, tenant.org_id, "strict", [price])
        policy = tenant.post(
            "/v1/dunning_policies",
            {"name": "Strict", "retry_days": [2, 4], "final_action": "cancel", "plan_ids": [plan]},
        )
        _, sub = _subscription(container, tenant, "pm_card_chargeDeclinedStolenCard", plan_id=plan)

        work(container)

        assert policy.status_code == 201, policy.text
        inv = _invoice_of(container, sub).id
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["final_action"], view["attempts"]) == ("exhausted", "cancel", 1)
        assert view["policy"]["policy_id"] == policy.json()["id"]
        assert view["payments"][0]["hard_decline"] is True
        assert _sub_status(container, sub) == "canceled"
        assert [
            m["template"] for m in tenant.get("/v1/emails", params={"object_id": inv}).json()["data"]
        ] == ["final"]

    def test_retries_exhausted_mark_the_invoice_uncollectible_per_customer_policy(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant, token="pm_card_chargeDeclinedExpiredCard")
        tenant.post(
            "/v1/dunning_policies",
            {"name": "Short", "retry_days": [1], "final_action": "mark_uncollectible", "customer_ids": [cus]},
        )
        inv = open_invoice(tenant, cus)

        work(container)
        clock(container).advance(timedelta(days=1))
        work(container)

        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["attempts"], view["invoice_status"]) == ("exhausted", 2, "uncollectible")
        assert [p["failure_code"] for p in view["payments"]] == ["expired_card", "expired_card"]

    def test_a_bad_policy_is_refused(self, tenant: Tenant) -> None:
        r = tenant.post("/v1/dunning_policies", {"name": "Bad", "retry_days": [3, 1]})
        t = tenant.post(
            "/v1/dunning_policies",
            {"name": "Bad", "retry_days": [1], "templates": {"retry": {"body": "{% if"}}},
        )

        assert (r.status_code, r.json()["code"]) == (422, "invalid_retry_days")
        assert (t.status_code, t.json()["code"]) == (422, "invalid_template")
        assert tenant.get("/v1/dunning_policies").json()["data"] == []


class TestBankDebits:
    def test_an_ach_debit_settles_days_later_through_the_event_path(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_usBankAccount"))
        work(container)
        processing = tenant.get(f"/v1/invoices/{inv}/collection").json()
        clock(container).advance(timedelta(days=3))
        work(container)
        still = tenant.get(f"/v1/invoices/{inv}").json()["status"]

        clock(container).advance(timedelta(days=1))
        work(container)

        assert [p["status"] for p in processing["payments"]] == ["processing"]
        assert processing["payments"][0]["method"] == "us_bank_account"
        assert still == "open"
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"
        with container.sessions() as s:
            events = list(s.scalars(select(GatewayEventRecord)))
        assert [(e.type, e.status) for e in events] == [("payment.succeeded", "processed")]
        assert sandbox_charges(container) == 1

    def test_a_returned_debit_is_not_retried_and_waits_for_a_new_method(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant, token="pm_usBankAccount_failure")
        inv = open_invoice(tenant, cus)
        work(container)
        clock(container).advance(timedelta(days=4))
        work(container)
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        clock(container).advance(timedelta(days=2))
        work(container)
        waiting = tenant.get(f"/v1/invoices/{inv}/collection").json()

        clock(container).advance(timedelta(days=6))
        work(container)

        assert (view["mode"], view["next_action"], view["schedule"]) == ("bank_debit", "final_action", [])
        assert [p["status"] for p in view["payments"]] == ["failed"]
        assert [p["status"] for p in waiting["payments"]] == ["failed"]  # no card-style retry
        final = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (final["status"], final["invoice_status"]) == ("exhausted", "uncollectible")
        templates = sorted(
            m["template"] for m in tenant.get("/v1/emails", params={"object_id": inv}).json()["data"]
        )
        assert templates == ["ach_failed", "final"]


class TestUnknownOutcomes:
    @pytest.mark.parametrize(("token", "charges"), [("pm_card_timeout", 1), ("pm_card_timeoutNotSent", 0)])
    def test_a_timeout_is_resolved_with_find_charge_before_any_retry(
        self, tenant: Tenant, container: Container, token: str, charges: int
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token=token))
        work(container)
        after_timeout = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        count_after_timeout = sandbox_charges(container)

        work(container)

        assert [p["status"] for p in after_timeout] == ["unknown"]
        assert count_after_timeout == charges
        (p,) = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        if token == "pm_card_timeout":  # it did happen: found, recorded, never sent again
            assert p["status"] == "succeeded"
            assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"
        else:  # it never arrived: sent again under the same key; that answer is lost too
            assert p["status"] == "unknown"
        assert sandbox_charges(container) == charges
        with container.sessions() as s:
            keys = list(s.scalars(select(Payment.idempotency_key).where(Payment.invoice_id == inv)))
        assert keys == [f"revflow:{tenant.org_id}:{inv}:attempt:1"]


class TestTestClocks:
    def test_retries_and_bank_settlement_follow_the_test_clock(
        self, tenant: Tenant, container: Container
    ) -> None:
        tc = tenant.post("/v1/test_clocks", {"frozen_time": "2031-01-01T00:00:00Z"}).json()
        card = tenant.post(
            "/v1/customers", {"name": "Card", "currency": "USD", "test_clock_id": tc["id"]}
        ).json()
        bank = tenant.post(
            "/v1/customers", {"name": "Bank", "currency": "USD", "test_clock_id": tc["id"]}
        ).json()
        tenant.post(f"/v1/customers/{card['id']}/payment_methods", {"token": "pm_card_chargeDeclined"})
        tenant.post(f"/v1/customers/{bank['id']}/payment_methods", {"token": "pm_usBankAccount"})
        card_inv = open_invoice(tenant, card["id"])
        bank_inv = open_invoice(tenant, bank["id"])
        with container.sessions() as s:  # charges of test-clock customers are due on the clock's time
            queued = [(p.test_clock_id, p.scheduled_at) for p in s.scalars(select(Payment))]

        work(container)
        clock(container).advance(timedelta(days=30))  # real time moves; the test clock does not
        work(container)
        frozen = tenant.get(f"/v1/invoices/{card_inv}/collection").json()
        tenant.post(f"/v1/test_clocks/{tc['id']}/advance", {"frozen_time": "2031-01-02T00:00:00Z"})
        work(container)
        retried = tenant.get(f"/v1/invoices/{card_inv}/collection").json()
        tenant.post(f"/v1/test_clocks/{tc['id']}/advance", {"frozen_time": "2031-01-05T00:00:00Z"})
        work(container)

        assert queued == [(tc["id"], datetime(2031, 1, 1, tzinfo=UTC))] * 2
        assert (frozen["attempts"], frozen["next_action_at"][:10]) == (1, "2031-01-02")
        assert retried["attempts"] == 2
        assert retried["payments"][1]["status"] == "failed"
        assert tenant.get(f"/v1/invoices/{bank_inv}").json()["status"] == "paid"


class TestUnresolved:
    def test_a_gateway_that_never_answers_raises_an_alert_and_charges_nothing_twice(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_timeoutNotSent"))

        for _ in range(5):
            work(container)

        (p,) = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        assert (p["status"], p["attempt_number"]) == ("unknown", 1)
        alerts = tenant.get("/v1/alerts").json()["data"]
        assert [(a["type"], a["object_id"]) for a in alerts] == [("payment_unresolved", p["id"])]
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "open"
        assert sandbox_charges(container) == 0


class TestSettledOutsideDunning:
    def test_a_hand_payment_during_dunning_closes_it_and_reactivates_the_subscription(
        self, tenant: Tenant, container: Container
    ) -> None:
        _, sub = _subscription(container, tenant, "pm_card_chargeDeclined")
        work(container)
        inv = _invoice_of(container, sub).id
        r = tenant.post(f"/v1/invoices/{inv}/payments", {"method": "bank_transfer"})

        work(container)
        clock(container).advance(timedelta(days=2))
        work(container)

        assert r.status_code == 201
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["invoice_status"]) == ("recovered", "paid")
        assert [p["status"] for p in view["payments"]] == ["failed", "canceled", "succeeded"]
        assert _sub_status(container, sub) == "active"
        assert sandbox_charges(container) == 1


class TestEmailTemplates:
    def test_a_policy_template_renders_each_step_and_a_missing_address_is_skipped(
        self, tenant: Tenant, container: Container
    ) -> None:
        tenant.post(
            "/v1/dunning_policies",
            {
                "name": "Friendly",
                "retry_days": [2],
                "is_default": True,
                "templates": {
                    "retry": {
                        "subject": "Heads up, {{ customer.name }}",
                        "body": "{{ amount }} failed ({{ failure }}); next try {{ next_retry }}.",
                    }
                },
            },
        )
        inv = open_invoice(tenant, customer(tenant, token="pm_card_chargeDeclined"), amount=1234)
        silent = open_invoice(tenant, customer(tenant, email=None, token="pm_card_chargeDeclined"))

        work(container)

        (mail,) = tenant.get("/v1/emails", params={"object_id": inv}).json()["data"]
        assert (mail["subject"], mail["status"]) == ("Heads up, Ada Lovelace", "stored")
        assert mail["body"] == "12.34 USD failed (Your card was declined.); next try 2030-03-03."
        (skipped,) = tenant.get("/v1/emails", params={"object_id": silent}).json()["data"]
        assert (skipped["status"], skipped["to"]) == ("skipped", None)


class TestAuthenticationRequired:
    def test_requires_action_is_dunned_like_a_soft_decline(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_authenticationRequired"))

        work(container)

        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["attempts"], view["next_action"]) == ("active", 1, "retry")
        first = view["payments"][0]
        assert (first["status"], first["failure_code"], first["hard_decline"]) == (
            "requires_action",
            "authentication_required",
            False,
        )
        assert [p["status"] for p in view["payments"]] == ["requires_action", "pending"]


def _send_invoice_subscription(
    container: Container, t: Tenant, *, token: str | None = "pm_card_visa", policy: dict[str, object]
) -> tuple[str, str, str]:
    """A customer (with ``token`` saved) on a 30.00 plan billed by ``send_invoice`` with 10 days to pay,
    governed by ``policy``; returns (customer, subscription, first invoice)."""
    price = make_price(container, t.org_id, flat=3000)
    plan = make_plan(container, t.org_id, "net10", [price])
    r = t.post("/v1/dunning_policies", {"name": "Net 10", "plan_ids": [plan], **policy})
    assert r.status_code == 201, r.text
    cus = customer(t, token=token)
    with container.sessions() as s:
        s.get_one(Organization, t.org_id).invoice_grace_hours = 0
        ctx = Ctx(session=s, org_id=t.org_id, actor=Actor("cli"), clock=container.clock)
        sub = subscriptions.create_subscription(
            ctx,
            customer_id=cus,
            plan_id=plan,
            start_at=container.clock.now(),
            collection_method="send_invoice",
            days_until_due=10,
        )
        s.commit()
    return cus, sub.id, _invoice_of(container, sub.id).id


class TestSendInvoiceReminders:
    def test_an_unpaid_send_invoice_invoice_is_reminded_from_its_due_date_then_the_final_action(
        self, tenant: Tenant, container: Container
    ) -> None:
        _, sub, inv = _send_invoice_subscription(
            container, tenant, policy={"retry_days": [3, 7], "final_action": "cancel"}
        )
        work(container)
        clock(container).advance(timedelta(days=10, hours=11))  # 2030-03-11 23:00, the due date
        work(container)
        on_due_date = (tenant.get(f"/v1/invoices/{inv}/collection").json(), _sub_status(container, sub))
        clock(container).advance(timedelta(hours=1))  # the due date is over
        work(container)
        overdue = tenant.get(f"/v1/invoices/{inv}/collection").json()
        overdue_status = _sub_status(container, sub)
        clock(container).advance(timedelta(days=3))
        work(container)
        reminded = tenant.get(f"/v1/invoices/{inv}/collection").json()

        clock(container).advance(timedelta(days=4))
        work(container)

        assert tenant.get(f"/v1/invoices/{inv}").json()["due_date"] == "2030-03-11"
        assert (on_due_date[0]["status"], on_due_date[1]) == ("none", "active")
        assert (overdue["status"], overdue["mode"], overdue["attempts"]) == ("active", "send_invoice", 1)
        assert (overdue["next_action"], overdue["next_action_at"]) == ("remind", "2030-03-15T00:00:00Z")
        assert [d[:10] for d in overdue["schedule"]] == ["2030-03-15", "2030-03-19"]
        assert overdue_status == "past_due"
        assert (reminded["attempts"], reminded["next_action"]) == (2, "final_action")
        done = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (done["status"], done["final_action"], done["payments"]) == ("exhausted", "cancel", [])
        assert _sub_status(container, sub) == "canceled"
        mails = tenant.get("/v1/emails", params={"object_id": inv, "limit": 100}).json()["data"]
        assert sorted((m["template"], m["status"]) for m in mails) == [
            ("final", "stored"),
            ("overdue", "stored"),
            ("overdue", "stored"),
        ]
        first = min((m for m in mails if m["template"] == "overdue"), key=lambda m: m["created_at"])
        assert "was due on 2030-03-11" in first["body"] and "before 2030-03-15" in first["body"]
        final = next(m for m in mails if m["template"] == "final")
        assert "still unpaid 8 days after its due date" in final["body"]
        assert sandbox_charges(container) == 0

    def test_paying_by_hand_during_reminders_recovers_and_a_new_card_charges_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus, sub, inv = _send_invoice_subscription(
            container, tenant, token=None, policy={"retry_days": [3, 7], "final_action": "mark_uncollectible"}
        )
        clock(container).advance(timedelta(days=11, hours=12))
        work(container)
        card = tenant.post(f"/v1/customers/{cus}/payment_methods", {"token": "pm_card_visa"})
        work(container)
        after_card = tenant.get(f"/v1/invoices/{inv}/collection").json()

        paid = tenant.post(f"/v1/invoices/{inv}/payments", {"method": "bank_transfer"})
        work(container)
        clock(container).advance(timedelta(days=10))
        work(container)

        assert card.status_code == 201
        assert (after_card["status"], after_card["payments"]) == ("active", [])
        assert paid.status_code == 201, paid.text
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["invoice_status"]) == ("recovered", "paid")
        assert _sub_status(container, sub) == "active"
        templates = sorted(
            m["template"] for m in tenant.get("/v1/emails", params={"object_id": inv}).json()["data"]
        )
        assert templates == ["overdue", "recovered"]
        assert sandbox_charges(container) == 0

    def test_a_test_clock_customers_invoice_is_overdue_on_the_clocks_time(
        self, tenant: Tenant, container: Container
    ) -> None:
        tc = tenant.post("/v1/test_clocks", {"frozen_time": "2030-03-05T00:00:00Z"}).json()
        cus = tenant.post(
            "/v1/customers", {"name": "Clocked", "currency": "USD", "test_clock_id": tc["id"]}
        ).json()["id"]
        inv = open_invoice(tenant, cus, method="send_invoice")  # due 30 days after finalization
        due = tenant.get(f"/v1/invoices/{inv}").json()["due_date"]
        clock(container).advance(timedelta(days=60))  # real time moves; the test clock does not
        work(container)
        frozen = tenant.get(f"/v1/invoices/{inv}/collection").json()["status"]

        tenant.post(f"/v1/test_clocks/{tc['id']}/advance", {"frozen_time": "2030-04-01T00:00:00Z"})
        work(container)

        assert (due, frozen) == ("2030-03-31", "none")
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["mode"], view["started_at"]) == (
            "active",
            "send_invoice",
            "2030-04-01T00:00:00Z",
        )
        assert (view["next_action"], view["next_action_at"]) == ("remind", "2030-04-02T00:00:00Z")

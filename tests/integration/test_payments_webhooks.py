"""Inbound gateway webhooks, driven through a fake gateway named ``stripe`` that signs with our test helper;
refunds, disputes and reconciliation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from revflow.adapters.payments.sandbox import SandboxGateway
from revflow.bootstrap import Container
from revflow.jobs.worker import reconcile_payments
from revflow.storage.models import Alert, CreditNote, Invoice, Payment
from revflow.storage.payment_models import Dispute, GatewayEventRecord, SandboxCharge
from tests.conftest import Tenant
from tests.integration.payment_helpers import clock, customer, frozen_container, open_invoice, work


class FakeStripe(SandboxGateway):
    """The sandbox's books and behaviour under the name ``stripe``: the webhook route and processing are
    exercised without the Stripe SDK (the Stripe adapter's own tests cover Stripe's signature scheme)."""

    name = "stripe"


@pytest.fixture
def container(db_url: str) -> Iterator[Container]:
    for c in frozen_container(db_url):
        sandbox = c.gateway
        assert isinstance(sandbox, SandboxGateway)
        c.gateway = FakeStripe(sandbox._sessions, c.clock, webhook_secret="whsec_test")
        yield c


def _gw(container: Container) -> FakeStripe:
    assert isinstance(container.gateway, FakeStripe)
    return container.gateway


def _post(t: Tenant, container: Container, body: bytes, *, headers: dict[str, str] | None = None) -> Any:
    signed = _gw(container).sign(body) if headers is None else headers
    return t.http.post(
        "/v1/webhooks/stripe", content=body, headers={**signed, "content-type": "application/json"}
    )


def _event(
    container: Container, payment_ref: str, raw_type: str, *, event_id: str, status: str, at: datetime
) -> bytes:
    body = json.loads(_gw(container).event_payload(payment_ref, raw_type, event_id=event_id))
    body["created"] = int(at.timestamp())
    body["data"]["object"]["status"] = status
    return json.dumps(body).encode()


def _events(container: Container) -> list[tuple[str, str]]:
    with container.sessions() as s:
        return [
            (e.event_id, e.status)
            for e in s.scalars(select(GatewayEventRecord).order_by(GatewayEventRecord.id))
        ]


def _paid_invoice(t: Tenant, container: Container, token: str = "pm_card_visa") -> tuple[str, dict[str, Any]]:
    inv = open_invoice(t, customer(t, token=token))
    work(container)
    (payment,) = t.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
    return inv, payment


class TestWebhooks:
    def test_a_late_failure_event_does_not_unpay_and_a_duplicate_is_processed_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        now = clock(container).now()
        ok = _event(
            container,
            payment["gateway_ref"],
            "payment_intent.succeeded",
            event_id="evt_1",
            status="succeeded",
            at=now,
        )
        late = _event(
            container,
            payment["gateway_ref"],
            "payment_intent.payment_failed",
            event_id="evt_2",
            status="failed",
            at=now - timedelta(minutes=1),
        )

        first = _post(tenant, container, ok)
        again = _post(tenant, container, ok)
        failed = _post(tenant, container, late)

        assert [r.status_code for r in (first, again, failed)] == [200, 200, 200]
        assert [r.json()["status"] for r in (first, again, failed)] == ["ignored", "duplicate", "ignored"]
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["status"] == "succeeded"
        assert _events(container) == [("evt_1", "ignored"), ("evt_2", "ignored")]

    def test_ach_events_in_reverse_order_leave_the_payment_succeeded(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container, token="pm_usBankAccount")
        now = clock(container).now()
        processing = _event(
            container,
            payment["gateway_ref"],
            "payment_intent.processing",
            event_id="evt_p",
            status="processing",
            at=now,
        )
        succeeded = _event(
            container,
            payment["gateway_ref"],
            "payment_intent.succeeded",
            event_id="evt_s",
            status="succeeded",
            at=now + timedelta(days=4),
        )

        r1 = _post(tenant, container, succeeded)
        r2 = _post(tenant, container, processing)

        assert (r1.json()["status"], r2.json()["status"]) == ("processed", "ignored")
        assert tenant.get(f"/v1/invoices/{inv}").json()["status"] == "paid"
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["status"] == "succeeded"

    def test_concurrent_duplicates_are_applied_exactly_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container, token="pm_usBankAccount")
        body = _event(
            container,
            payment["gateway_ref"],
            "payment_intent.succeeded",
            event_id="evt_dup",
            status="succeeded",
            at=clock(container).now() + timedelta(days=4),
        )
        headers = _gw(container).sign(body)
        answers: list[str] = []

        def deliver() -> None:
            answers.append(_post(tenant, container, body, headers=headers).json()["status"])

        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

        assert sorted(answers) == ["duplicate", "duplicate", "duplicate", "processed"]
        assert _events(container) == [("evt_dup", "processed")]
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 5000)
        assert tenant.get(f"/v1/customers/{invoice['customer_id']}/balance_transactions").json()["data"] == []

    def test_an_event_for_an_unknown_object_is_recorded_and_acknowledged(
        self, tenant: Tenant, container: Container
    ) -> None:
        body = json.dumps(
            {
                "id": "evt_x",
                "type": "payment_intent.succeeded",
                "created": 1900000000,
                "data": {
                    "object": {
                        "id": "pi_unknown",
                        "object": "payment_intent",
                        "amount": 100,
                        "currency": "usd",
                        "status": "succeeded",
                        "metadata": {},
                    }
                },
            }
        ).encode()
        other = json.dumps(
            {
                "id": "evt_y",
                "type": "customer.created",
                "created": 1900000000,
                "data": {"object": {"id": "cus_1", "object": "customer"}},
            }
        ).encode()

        r = _post(tenant, container, body)
        o = _post(tenant, container, other)

        assert (r.status_code, r.json()["status"]) == (200, "unmatched")
        assert (o.status_code, o.json()["status"]) == (200, "ignored")
        assert _events(container) == [("evt_x", "unmatched"), ("evt_y", "ignored")]

    def test_bad_signatures_and_malformed_json_answer_400_and_store_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
        stale = _gw(container).sign(body, timestamp=1_000_000_000)

        unsigned = tenant.http.post("/v1/webhooks/stripe", content=body)
        forged = _post(tenant, container, body, headers={"revflow-sandbox-signature": "t=1,v1=00"})
        too_old = _post(tenant, container, body, headers=stale)
        malformed = _post(tenant, container, b"{not json")
        wrong_gateway = tenant.http.post("/v1/webhooks/sandbox", content=body)

        assert [(r.status_code, r.json()["code"]) for r in (unsigned, forged, too_old)] == [
            (400, "invalid_signature")
        ] * 3
        assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_payload")
        assert wrong_gateway.status_code == 404
        assert _events(container) == []

    def test_a_dispute_is_recorded_and_flags_the_invoice(self, tenant: Tenant, container: Container) -> None:
        inv, payment = _paid_invoice(tenant, container)
        body = json.dumps(
            {
                "id": "evt_dp",
                "type": "charge.dispute.created",
                "created": 1900000000,
                "data": {
                    "object": {
                        "id": "dp_1",
                        "object": "dispute",
                        "amount": 5000,
                        "reason": "fraudulent",
                        "payment_intent": payment["gateway_ref"],
                    }
                },
            }
        ).encode()

        r = _post(tenant, container, body)
        _post(tenant, container, body)

        assert r.json()["status"] == "processed"
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert view["disputed"] is True
        alerts = tenant.get("/v1/alerts").json()["data"]
        assert [(a["type"], a["object_id"], a["severity"]) for a in alerts] == [
            ("payment_disputed", inv, "critical")
        ]
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["disputed"] is True


def _dispute_event(payment_ref: str, raw_type: str, status: str, *, n: int, amount: int = 5000) -> bytes:
    return json.dumps(
        {
            "id": f"evt_dp_{n}",
            "type": raw_type,
            "created": 1900000000 + n,
            "data": {
                "object": {
                    "id": "dp_1",
                    "object": "dispute",
                    "amount": amount,
                    "reason": "fraudulent",
                    "status": status,
                    "payment_intent": payment_ref,
                }
            },
        }
    ).encode()


class TestDisputeLifecycle:
    @pytest.mark.parametrize(
        ("outcome", "invoice_after", "open_alerts"),
        [
            ("won", ("paid", 5000, 0, "won", False), []),
            ("lost", ("open", 2000, 3000, "lost", True), [("payment_dispute_lost", 3000)]),
        ],
    )
    def test_the_invoice_carries_the_dispute_until_it_is_won_or_lost(
        self,
        tenant: Tenant,
        container: Container,
        outcome: str,
        invoice_after: tuple[object, ...],
        open_alerts: list[tuple[str, int]],
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        ref = payment["gateway_ref"]

        def invoice() -> tuple[object, ...]:
            i = tenant.get(f"/v1/invoices/{inv}").json()
            return (i["status"], i["amount_paid"], i["amount_remaining"], i["dispute_status"], i["disputed"])

        def flagged(value: str) -> list[str]:
            return [i["id"] for i in tenant.get("/v1/invoices", params={"disputed": value}).json()["data"]]

        created = _post(
            tenant,
            container,
            _dispute_event(ref, "charge.dispute.created", "needs_response", n=1, amount=3000),
        )
        opened = (invoice(), flagged("true"), flagged("false"))
        review = _post(
            tenant, container, _dispute_event(ref, "charge.dispute.updated", "under_review", n=2, amount=3000)
        )
        in_review = invoice()[3]
        closed = _post(
            tenant, container, _dispute_event(ref, "charge.dispute.closed", outcome, n=3, amount=3000)
        )
        late = _post(
            tenant, container, _dispute_event(ref, "charge.dispute.updated", "under_review", n=4, amount=3000)
        )
        work(container)

        assert [r.json()["status"] for r in (created, review, closed, late)] == [
            "processed",
            "processed",
            "processed",
            "ignored",
        ]
        assert opened == (("paid", 5000, 0, "needs_response", True), [inv], [])
        assert in_review == "under_review"
        assert invoice() == invoice_after
        assert flagged("true") == ([inv] if outcome == "lost" else [])
        assert flagged("false") == ([] if outcome == "lost" else [inv])
        alerts = tenant.get("/v1/alerts", params={"status": "open"}).json()["data"]
        assert [(a["type"], a["details"]["amount"]) for a in alerts] == open_alerts
        assert len(tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]) == 1
        (event,) = tenant.get("/v1/events", params={"type": "charge.dispute.closed"}).json()["data"]
        assert (event["data"]["object"]["status"], event["data"]["object"]["amount_reopened"]) == (
            outcome,
            3000 if outcome == "lost" else 0,
        )

    def test_a_closing_event_before_the_creation_event_records_the_dispute_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        ref = payment["gateway_ref"]

        closed = _post(tenant, container, _dispute_event(ref, "charge.dispute.closed", "lost", n=2))
        created = _post(
            tenant, container, _dispute_event(ref, "charge.dispute.created", "needs_response", n=1)
        )
        again = _post(tenant, container, _dispute_event(ref, "charge.dispute.closed", "lost", n=2))

        assert [r.json()["status"] for r in (closed, created, again)] == [
            "processed",
            "processed",
            "duplicate",
        ]
        i = tenant.get(f"/v1/invoices/{inv}").json()
        assert (i["status"], i["amount_paid"], i["amount_remaining"], i["dispute_status"]) == (
            "open",
            0,
            5000,
            "lost",
        )
        with container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Dispute)) == 1


class TestCanceledAtGateway:
    def test_an_intent_canceled_at_the_gateway_fails_its_attempt_once_and_dunning_retries_on_schedule(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_authenticationRequired"))
        work(container)
        (before,) = _attempted(tenant, inv)
        scheduled = tenant.get(f"/v1/invoices/{inv}/collection").json()
        at = clock(container).now() + timedelta(minutes=5)
        body = _event(
            container,
            before["gateway_ref"],
            "payment_intent.canceled",
            event_id="evt_cx",
            status="canceled",
            at=at,
        )

        r = _post(tenant, container, body)
        again = _post(tenant, container, body)

        assert before["status"] == "requires_action"
        assert (r.json()["status"], again.json()["status"]) == ("processed", "duplicate")
        (after,) = _attempted(tenant, inv)
        assert (after["status"], after["failure_code"], after["hard_decline"]) == (
            "failed",
            "canceled",
            False,
        )
        view = tenant.get(f"/v1/invoices/{inv}/collection").json()
        assert (view["status"], view["attempts"], view["next_action_at"]) == (
            "active",
            1,
            scheduled["next_action_at"],
        )
        assert scheduled["next_action_at"] is not None


def _refund_event(refund: dict[str, Any], payment_ref: str, status: str, *, event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "charge.refund.updated",
            "created": 1900000000,
            "data": {
                "object": {
                    "id": refund["gateway_ref"],
                    "object": "refund",
                    "amount": refund["amount"],
                    "currency": refund["currency"],
                    "status": status,
                    "payment_intent": payment_ref,
                }
            },
        }
    ).encode()


class TestRefundUpdates:
    def test_a_refund_that_fails_later_gives_the_credit_back_once_and_alerts(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        refund = tenant.post(f"/v1/payments/{payment['id']}/refunds", {"amount": 2000}).json()
        cus = tenant.get(f"/v1/invoices/{inv}").json()["customer_id"]
        ref = payment["gateway_ref"]

        failed = _post(tenant, container, _refund_event(refund, ref, "failed", event_id="evt_rf1"))
        again = _post(tenant, container, _refund_event(refund, ref, "failed", event_id="evt_rf1"))
        later = _post(tenant, container, _refund_event(refund, ref, "succeeded", event_id="evt_rf2"))

        assert refund["status"] == "succeeded" and refund["credit_note_id"] is not None
        assert [r.json()["status"] for r in (failed, again, later)] == ["processed", "duplicate", "ignored"]
        assert tenant.get(f"/v1/refunds/{refund['id']}").json()["status"] == "failed"
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["amount_refunded"] == 0
        txns = tenant.get(f"/v1/customers/{cus}/balance_transactions").json()["data"]
        assert sorted((t["type"], t["amount"]) for t in txns if t["type"].startswith("refund")) == [
            ("refund", -2000),
            ("refund_failed", 2000),
        ]
        alerts = tenant.get("/v1/alerts", params={"status": "open"}).json()["data"]
        assert [(a["type"], a["object_id"], a["severity"]) for a in alerts] == [
            ("refund_failed", refund["id"], "critical")
        ]
        assert tenant.get(f"/v1/credit_notes/{refund['credit_note_id']}").json()["status"] != "void"


class TestRefunds:
    def test_partial_then_full_refunds_issue_credit_notes_and_refuse_more_than_paid(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)

        part = tenant.post(
            f"/v1/payments/{payment['id']}/refunds", {"amount": 2000, "reason": "requested_by_customer"}
        )
        too_much = tenant.post(f"/v1/payments/{payment['id']}/refunds", {"amount": 3001})
        rest = tenant.post(f"/v1/payments/{payment['id']}/refunds", {})

        assert part.status_code == 201, part.text
        assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_amount_too_large")
        assert (rest.status_code, rest.json()["amount"]) == (201, 3000)
        notes = tenant.get("/v1/credit_notes", params={"invoice_id": inv}).json()["data"]
        assert sorted(n["amount"] for n in notes) == [2000, 3000]
        assert {part.json()["credit_note_id"], rest.json()["credit_note_id"]} == {n["id"] for n in notes}
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["amount_refunded"] == 5000
        cus = tenant.get(f"/v1/invoices/{inv}").json()["customer_id"]
        balance = tenant.get(f"/v1/customers/{cus}/balance_transactions").json()["data"]
        assert sum(b["amount"] for b in balance) == 0  # the credit went back as money, not as balance
        with _gw(container)._sessions() as s:
            assert s.scalars(select(SandboxCharge.amount_refunded)).one() == 5000
        with container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(CreditNote)) == 2

    def test_refunding_an_unpaid_attempt_is_refused(self, tenant: Tenant, container: Container) -> None:
        inv = open_invoice(tenant, customer(tenant, token="pm_card_chargeDeclined"))
        work(container)
        (failed,) = [
            p
            for p in tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
            if p["status"] == "failed"
        ]

        r = tenant.post(f"/v1/payments/{failed['id']}/refunds", {"amount": 1})

        assert (r.status_code, r.json()["code"]) == (409, "invalid_state")


class TestReconciliation:
    def test_planted_discrepancies_become_alerts_and_matching_payments_do_not(
        self, tenant: Tenant, container: Container
    ) -> None:
        _, clean = _paid_invoice(tenant, container)
        _, tampered = _paid_invoice(tenant, container)
        with container.sessions() as s:  # plant: Revflow's record of one payment disagrees with the gateway
            s.get_one(Payment, tampered["id"]).amount = 4999
            s.commit()
        with _gw(container)._sessions() as s:  # plant: a charge at the gateway that Revflow never recorded
            s.add(
                SandboxCharge(
                    id="pi_sbx_planted",
                    idempotency_key="planted",
                    customer_ref="cus_x",
                    payment_method="pm_x",
                    amount=777,
                    currency="USD",
                    status="succeeded",
                    payment_method_type="card",
                    amount_refunded=0,
                    metadata_={"revflow_org_id": tenant.org_id},
                    created=clock(container).now(),
                    hard_decline=False,
                )
            )
            s.commit()

        found = reconcile_payments(container, force=True)
        again = reconcile_payments(container, force=True)

        assert (found, again) == (2, 2)
        with container.sessions() as s:
            alerts = list(s.scalars(select(Alert).where(Alert.type == "payment_discrepancy")))
        kinds = sorted((a.details["kind"], a.details["gateway_ref"]) for a in alerts)
        assert kinds == [
            ("amount_mismatch", tampered["gateway_ref"]),
            ("missing_in_revflow", "pi_sbx_planted"),
        ]
        assert all(a.object_id != clean["id"] for a in alerts)
        assert (
            next(a for a in alerts if a.details["kind"] == "amount_mismatch").details["gateway"] == "stripe"
        )

    @pytest.mark.parametrize(
        ("token", "settled", "invoice_status"),
        [("pm_usBankAccount", "succeeded", "paid"), ("pm_usBankAccount_failure", "failed", "open")],
    )
    def test_an_ach_settlement_whose_event_is_in_flight_is_applied_once_and_not_alerted(
        self, tenant: Tenant, container: Container, token: str, settled: str, invoice_status: str
    ) -> None:
        inv, before = _paid_invoice(tenant, container, token=token)
        clock(container).advance(timedelta(days=5))
        at_gateway = _gw(container).settle_due(now=clock(container).now())  # its event is not delivered yet

        found = reconcile_payments(container, force=True)
        (after,) = tenant.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
        invoice = tenant.get(f"/v1/invoices/{inv}").json()
        work(container)  # the settlement event arrives after reconciliation applied it

        assert (before["status"], at_gateway, found) == ("processing", 1, 0)
        assert after["status"] == settled
        assert (invoice["status"], invoice["amount_paid"]) == (
            invoice_status,
            5000 if settled == "succeeded" else 0,
        )
        assert _events(container) == [(f"evt_sbx_{before['gateway_ref']}_{settled}", "ignored")]
        again = tenant.get(f"/v1/invoices/{inv}").json()
        assert (again["status"], again["amount_paid"]) == (invoice["status"], invoice["amount_paid"])
        with container.sessions() as s:
            assert (
                s.scalar(select(func.count()).select_from(Alert).where(Alert.type == "payment_discrepancy"))
                == 0
            )

    def test_a_discrepancy_that_no_longer_holds_is_resolved_and_reopens_if_it_returns(
        self, tenant: Tenant, container: Container
    ) -> None:
        _, payment = _paid_invoice(tenant, container)

        def plant(amount: int) -> int:
            with container.sessions() as s:
                s.get_one(Payment, payment["id"]).amount = amount
                s.commit()
            return reconcile_payments(container, force=True)

        def alert() -> tuple[str, datetime | None]:
            with container.sessions() as s:
                a = s.scalars(select(Alert).where(Alert.type == "payment_discrepancy")).one()
                return a.status, a.resolved_at

        first = plant(4999)
        opened = alert()
        clock(container).advance(timedelta(hours=1))
        cleared = plant(5000)
        resolved = alert()
        returned = plant(4999)

        assert (first, cleared, returned) == (1, 0, 1)
        assert opened == ("open", None)
        assert resolved[0] == "resolved"
        assert resolved[1] is not None and resolved[1].replace(tzinfo=None) == clock(container).now().replace(
            tzinfo=None
        )
        assert alert() == ("open", None)


class TestInvoiceReconciliation:
    def test_an_invoice_whose_amount_paid_drifted_from_its_gateway_payments_is_reported_then_resolved(
        self, tenant: Tenant, container: Container
    ) -> None:
        drifted, _ = _paid_invoice(tenant, container)
        refunded, payment = _paid_invoice(tenant, container)
        partly = tenant.post(f"/v1/payments/{payment['id']}/refunds", {"amount": 1500})
        _, clean = _paid_invoice(tenant, container)

        def plant(amount_paid: int, status: str) -> int:
            with container.sessions() as s:  # Revflow's invoice disagrees with its (matching) payment
                inv = s.get_one(Invoice, drifted)
                inv.amount_paid, inv.amount_remaining, inv.status = amount_paid, 5000 - amount_paid, status
                s.commit()
            return reconcile_payments(container, force=True)

        def invoice_alerts() -> list[Alert]:
            with container.sessions() as s:
                return list(s.scalars(select(Alert).where(Alert.type == "payment_discrepancy")))

        found = plant(3000, "open")
        opened = invoice_alerts()
        cleared = plant(5000, "paid")
        resolved = invoice_alerts()

        assert partly.status_code == 201, partly.text
        assert (found, cleared) == (1, 0)
        (alert,) = opened
        assert (alert.details["kind"], alert.object_type, alert.object_id) == (
            "invoice_total_mismatch",
            "invoice",
            drifted,
        )
        assert (alert.details["revflow"], alert.details["at_gateway"]) == (3000, 5000)
        assert (alert.details["invoice_status"], alert.details["currency"]) == ("open", "USD")
        assert alert.severity == "critical" and alert.status == "open"
        assert all(a.object_id not in (refunded, clean["invoice_id"]) for a in opened)
        assert [(a.id, a.status) for a in resolved] == [(alert.id, "resolved")]

    def test_an_invoice_paid_in_revflow_that_the_gateway_refunded_in_full_is_reported(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        with _gw(container)._sessions() as s:  # the gateway refunded it; the refund never reached Revflow
            s.get_one(SandboxCharge, payment["gateway_ref"]).amount_refunded = 5000
            s.commit()

        reconcile_payments(container, force=True)

        with container.sessions() as s:
            alerts = {
                a.details["kind"]: a.details
                for a in s.scalars(select(Alert).where(Alert.type == "payment_discrepancy"))
            }
        assert set(alerts) == {"refund_mismatch", "invoice_total_mismatch"}
        invoice = alerts["invoice_total_mismatch"]
        assert (invoice["invoice_id"], invoice["revflow"], invoice["at_gateway"]) == (inv, 5000, 0)
        assert invoice["invoice_status"] == "paid"


class TestGatewaySideChanges:
    def test_a_refund_made_at_the_gateway_is_booked_once_with_its_credit_note(
        self, tenant: Tenant, container: Container
    ) -> None:
        inv, payment = _paid_invoice(tenant, container)
        body = json.dumps(
            {
                "id": "evt_re",
                "type": "charge.refunded",
                "created": 1900000000,
                "data": {
                    "object": {
                        "id": "re_dashboard",
                        "object": "refund",
                        "amount": 1500,
                        "amount_refunded": 1500,
                        "currency": "USD",
                        "status": "succeeded",
                        "payment_intent": payment["gateway_ref"],
                    }
                },
            }
        ).encode()

        first = _post(tenant, container, body)
        replay = json.loads(body)
        replay["id"] = "evt_re_again"  # the same refund reported by a second event
        second = _post(tenant, container, json.dumps(replay).encode())

        assert (first.json()["status"], second.json()["status"]) == ("processed", "ignored")
        assert tenant.get(f"/v1/payments/{payment['id']}").json()["amount_refunded"] == 1500
        notes = tenant.get("/v1/credit_notes", params={"invoice_id": inv}).json()["data"]
        assert [n["amount"] for n in notes] == [1500]

    def test_a_payment_method_detached_at_the_gateway_is_no_longer_default(
        self, tenant: Tenant, container: Container
    ) -> None:
        cus = customer(tenant)
        (pm,) = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        body = json.dumps(
            {
                "id": "evt_pm",
                "type": "payment_method.detached",
                "created": 1900000000,
                "data": {
                    "object": {
                        "id": pm["token"],
                        "object": "payment_method",
                        "type": "card",
                        "card": {"brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2035},
                    }
                },
            }
        ).encode()

        r = _post(tenant, container, body)

        assert r.json()["status"] == "processed"
        assert tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"] == []


def _attempted(t: Tenant, inv: str) -> list[dict[str, Any]]:
    """The payments of ``inv`` sent to the gateway (not the next scheduled attempt)."""
    rows = t.get("/v1/payments", params={"invoice_id": inv}).json()["data"]
    return [p for p in rows if p["gateway_ref"] is not None]

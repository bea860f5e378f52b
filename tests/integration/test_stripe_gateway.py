"""StripeGateway against the fake Stripe, through the official SDK. No database: these run once."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from revflow.adapters.payments.stripe import StripeGateway
from revflow.services.ports import (
    ChargeRequest,
    GatewayError,
    GatewayUnavailable,
    PaymentGateway,
    WebhookSignatureError,
)
from tests.fakes.stripe import FakeStripe, WebhookEndpoint


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(hang_seconds=1.5) as f:
        yield f


@pytest.fixture
def endpoint(fake: FakeStripe) -> WebhookEndpoint:
    return fake.add_webhook_endpoint()


@pytest.fixture
def gw(fake: FakeStripe, endpoint: WebhookEndpoint) -> StripeGateway:
    return StripeGateway(fake.secret_key, webhook_secret=endpoint.secret, api_base=fake.url, timeout=0.5)


def _request(customer: str, pm: str, key: str = "inv_1-attempt-1", amount: int = 4200) -> ChargeRequest:
    return ChargeRequest(
        customer_ref=customer,
        payment_method=pm,
        amount=amount,
        currency="USD",
        idempotency_key=key,
        description="Invoice INV-0001",
        metadata={"revflow_invoice_id": "inv_1"},
    )


def _customer(gw: StripeGateway, cid: str = "cus_rf_1") -> str:
    return gw.ensure_customer(customer_id=cid, email="ada@example.com", name="Ada", existing_ref=None)


def _events(fake: FakeStripe, gw: StripeGateway, raw_type: str) -> list[object]:
    return [gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events(raw_type)]


class TestCustomers:
    def test_is_a_payment_gateway(self, gw: StripeGateway) -> None:
        port: PaymentGateway = gw

        assert port.name == "stripe"

    def test_ensure_customer_is_idempotent_on_the_revflow_id(
        self, fake: FakeStripe, gw: StripeGateway
    ) -> None:
        first = _customer(gw)

        again = _customer(gw)
        changed = gw.ensure_customer(
            customer_id="cus_rf_1", email="new@example.com", name=None, existing_ref=None
        )
        known = gw.ensure_customer(customer_id="cus_rf_1", email=None, name=None, existing_ref=first)

        assert first.startswith("cus_")
        assert again == changed == known == first
        (stored,) = fake.objects("customer")
        assert stored["metadata"] == {"revflow_customer_id": "cus_rf_1"}
        assert stored["email"] == "ada@example.com"


class TestPaymentMethods:
    def test_setup_session_then_the_saved_card(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)

        session = gw.create_setup_session(customer_ref=customer, method_types=["card"])
        confirmed = fake.client().v1.setup_intents.confirm(session.id, {"payment_method": "pm_card_visa"})
        info = gw.attach_payment_method(customer_ref=customer, token=str(confirmed.payment_method))

        assert session.id.startswith("seti_") and session.status == "requires_payment_method"
        assert session.client_secret is not None and session.client_secret.startswith(session.id)
        assert (info.token, info.type, info.customer_ref) == (confirmed.payment_method, "card", customer)
        assert (info.brand, info.last4) == ("visa", "4242")
        assert len(fake.events("payment_method.attached")) == 1  # not attached twice

    def test_attach_get_detach_card_and_bank_account(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)

        card = gw.attach_payment_method(customer_ref=customer, token="pm_card_mastercard")
        bank = gw.attach_payment_method(customer_ref=customer, token="pm_usBankAccount")
        fetched = gw.get_payment_method(card.token)
        gw.detach_payment_method(bank.token)

        assert card.token.startswith("pm_1")
        assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("mastercard", "4444", 12, 2034)
        assert (bank.type, bank.bank_name, bank.last4, bank.brand) == (
            "us_bank_account",
            "STRIPE TEST BANK",
            "6789",
            None,
        )
        assert fetched == card
        assert gw.get_payment_method(bank.token).customer_ref is None
        assert [pm["id"] for pm in fake.objects("payment_method") if pm["customer"] == customer] == [
            card.token
        ]

    def test_declining_card_cannot_be_saved(self, gw: StripeGateway) -> None:
        customer = _customer(gw)

        with pytest.raises(GatewayError) as exc:
            gw.attach_payment_method(customer_ref=customer, token="pm_card_chargeDeclinedStolenCard")

        assert (exc.value.code, exc.value.status) == ("card_declined", 402)

    def test_unknown_token_is_a_gateway_error(self, gw: StripeGateway) -> None:
        with pytest.raises(GatewayError) as exc:
            gw.get_payment_method("pm_doesnotexist")

        assert (exc.value.code, exc.value.status) == ("resource_missing", 404)


class TestCharges:
    @pytest.mark.parametrize(
        ("token", "status", "failure_code", "decline_code", "hard"),
        [
            ("pm_card_visa", "succeeded", None, None, False),
            ("pm_card_mastercard", "succeeded", None, None, False),
            ("pm_card_chargeDeclined", "failed", "card_declined", "generic_decline", False),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                "failed",
                "card_declined",
                "insufficient_funds",
                False,
            ),
            ("pm_card_chargeDeclinedExpiredCard", "failed", "expired_card", "expired_card", False),
            ("pm_card_chargeDeclinedStolenCard", "failed", "card_declined", "stolen_card", True),
            ("pm_card_chargeCustomerFail", "failed", "card_declined", "generic_decline", False),
            (
                "pm_card_authenticationRequired",
                "requires_action",
                "authentication_required",
                "authentication_required",
                False,
            ),
            ("pm_usBankAccount", "processing", None, None, False),
        ],
    )
    def test_each_test_token(
        self,
        fake: FakeStripe,
        gw: StripeGateway,
        token: str,
        status: str,
        failure_code: str | None,
        decline_code: str | None,
        hard: bool,
    ) -> None:
        customer = _customer(gw)

        result = gw.charge(_request(customer, token))

        assert (result.status, result.failure_code, result.decline_code, result.hard_decline) == (
            status,
            failure_code,
            decline_code,
            hard,
        )
        assert (result.amount, result.currency) == (4200, "USD")
        assert result.payment_method_type == ("us_bank_account" if token == "pm_usBankAccount" else "card")
        (pi,) = fake.objects("payment_intent")
        assert result.gateway_ref == pi["id"]
        assert pi["metadata"] == {"revflow_invoice_id": "inv_1", "revflow_idempotency_key": "inv_1-attempt-1"}
        assert gw.retrieve_charge(pi["id"]) == result
        if status == "failed":
            assert result.failure_message

    def test_saved_card_charge_and_replay_of_the_same_key(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        card = gw.attach_payment_method(customer_ref=customer, token="pm_card_visa")

        first = gw.charge(_request(customer, card.token))
        again = gw.charge(_request(customer, card.token))

        assert first.status == "succeeded" and again == first
        assert len(fake.objects("payment_intent")) == 1
        assert len(fake.objects("charge")) == 1

    def test_charge_with_a_missing_payment_method_is_a_gateway_error(self, gw: StripeGateway) -> None:
        customer = _customer(gw)

        with pytest.raises(GatewayError) as exc:
            gw.charge(_request(customer, "pm_1doesnotexist"))

        assert exc.value.code == "resource_missing"


class TestUnknownOutcome:
    def test_timeout_after_stripe_charged_is_resolved_without_a_second_charge(
        self, fake: FakeStripe, gw: StripeGateway
    ) -> None:
        customer = _customer(gw)
        fake.fail_next("timeout", path="/v1/payment_intents")
        request = _request(customer, "pm_card_visa", key="inv_9-attempt-1")

        lost = gw.charge(request)
        found = gw.find_charge(idempotency_key=request.idempotency_key, customer_ref=customer, metadata={})

        assert (lost.status, lost.gateway_ref, lost.failure_code) == ("unknown", None, "timeout")
        assert found is not None and found.status == "succeeded"
        (pi,) = fake.objects("payment_intent")
        assert found.gateway_ref == pi["id"]
        assert len(fake.objects("charge")) == 1

    def test_request_that_never_arrived_is_not_found(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        gw.charge(_request(customer, "pm_card_visa", key="inv_8-attempt-1"))
        fake.fail_next("timeout_before", path="/v1/payment_intents")

        lost = gw.charge(_request(customer, "pm_card_visa", key="inv_8-attempt-2"))
        found = gw.find_charge(idempotency_key="inv_8-attempt-2", customer_ref=customer, metadata={})

        assert lost.status == "unknown"
        assert found is None
        assert len(fake.objects("payment_intent")) == 1

    @pytest.mark.parametrize("fault", ["500", "429", "disconnect", "malformed"])
    def test_other_transport_failures_are_unknown_too(
        self, fake: FakeStripe, gw: StripeGateway, fault: str
    ) -> None:
        customer = _customer(gw)
        fake.fail_next(fault, path="/v1/payment_intents")  # type: ignore[arg-type]

        lost = gw.charge(_request(customer, "pm_card_visa"))
        found = gw.find_charge(idempotency_key="inv_1-attempt-1", customer_ref=customer, metadata={})

        assert lost.status == "unknown"
        created = fault in ("disconnect", "malformed")  # carried out before the answer was lost
        assert (found is not None) is created
        assert len(fake.objects("payment_intent")) == int(created)

    def test_find_charge_reports_a_decline(self, gw: StripeGateway) -> None:
        customer = _customer(gw)
        gw.charge(_request(customer, "pm_card_chargeDeclinedInsufficientFunds"))

        found = gw.find_charge(idempotency_key="inv_1-attempt-1", customer_ref=customer, metadata={})

        assert found is not None
        assert (found.status, found.decline_code) == ("failed", "insufficient_funds")

    def test_sdk_retries_reuse_the_idempotency_key(self, fake: FakeStripe) -> None:
        gw = StripeGateway(fake.secret_key, api_base=fake.url, timeout=2.0, max_network_retries=1)
        customer = _customer(gw)
        fake.fail_next("disconnect", path="/v1/payment_intents")

        result = gw.charge(_request(customer, "pm_card_visa"))

        assert result.status == "succeeded"
        assert len(fake.objects("payment_intent")) == 1
        attempts = [r for r in fake.requests if r.path == "/v1/payment_intents"]
        assert [r.replayed for r in attempts] == [False, True]
        assert len({r.idempotency_key for r in attempts}) == 1


class TestRefunds:
    def test_partial_then_rest_then_over_refund(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        paid = gw.charge(_request(customer, "pm_card_visa", amount=10_000))
        assert paid.gateway_ref is not None

        partial = gw.refund(
            gateway_ref=paid.gateway_ref, amount=2_500, idempotency_key="cn_1", reason="requested_by_customer"
        )
        rest = gw.refund(
            gateway_ref=paid.gateway_ref, amount=7_500, idempotency_key="cn_2", reason="service outage"
        )
        replay = gw.refund(
            gateway_ref=paid.gateway_ref, amount=2_500, idempotency_key="cn_1", reason="requested_by_customer"
        )
        with pytest.raises(GatewayError) as exc:
            gw.refund(gateway_ref=paid.gateway_ref, amount=1, idempotency_key="cn_3")

        assert (partial.status, partial.amount, partial.currency) == ("succeeded", 2_500, "USD")
        assert partial.gateway_ref.startswith("re_") and replay == partial
        assert rest.amount == 7_500
        assert (exc.value.code, exc.value.status) == ("charge_already_refunded", 400)
        (charge,) = fake.objects("charge")
        assert (charge["amount_refunded"], charge["refunded"]) == (10_000, True)
        assert [r["metadata"] for r in fake.objects("refund")] == [{}, {"revflow_reason": "service outage"}]

    def test_refund_above_what_remains_is_amount_too_large(self, gw: StripeGateway) -> None:
        customer = _customer(gw)
        paid = gw.charge(_request(customer, "pm_card_visa", amount=5_000))
        assert paid.gateway_ref is not None

        with pytest.raises(GatewayError) as exc:
            gw.refund(gateway_ref=paid.gateway_ref, amount=5_001, idempotency_key="cn_1")

        assert exc.value.code == "amount_too_large"

    def test_refund_timeout_is_unavailable_and_the_retry_refunds_once(
        self, fake: FakeStripe, gw: StripeGateway
    ) -> None:
        customer = _customer(gw)
        paid = gw.charge(_request(customer, "pm_card_visa", amount=5_000))
        assert paid.gateway_ref is not None
        fake.fail_next("timeout", path="/v1/refunds")

        with pytest.raises(GatewayUnavailable):
            gw.refund(gateway_ref=paid.gateway_ref, amount=2_000, idempotency_key="cn_7")
        retried = gw.refund(gateway_ref=paid.gateway_ref, amount=2_000, idempotency_key="cn_7")

        (stored,) = fake.objects("refund")
        assert retried.gateway_ref == stored["id"] and retried.amount == 2_000


class TestListPayments:
    def test_pages_through_more_than_a_hundred_payments(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        old = gw.charge(_request(customer, "pm_card_visa", key="old"))
        fake.advance_time(3600)
        since = datetime.fromtimestamp(fake.objects("payment_intent")[0]["created"] + 3600, tz=UTC)
        refs = [
            gw.charge(
                _request(customer, "pm_card_visa", key=f"inv_{i}-attempt-1", amount=100 + i)
            ).gateway_ref
            for i in range(104)
        ]
        refunded = refs[3]
        assert refunded is not None
        gw.refund(gateway_ref=refunded, amount=50, idempotency_key="cn_1")

        payments = list(gw.list_payments(since=since))

        assert [p.gateway_ref for p in payments] == list(reversed(refs))
        assert old.gateway_ref not in {p.gateway_ref for p in payments}
        by_ref = {p.gateway_ref: p for p in payments}
        assert (by_ref[refunded].amount, by_ref[refunded].amount_refunded) == (103, 50)
        assert all(p.status == "succeeded" and p.currency == "USD" for p in payments)
        assert by_ref[refs[0]].metadata["revflow_idempotency_key"] == "inv_0-attempt-1"
        assert by_ref[refs[0]].created >= since
        pages = [r for r in fake.requests if r.method == "GET" and r.path == "/v1/payment_intents"]
        assert len(pages) == 2


class TestWebhooks:
    def test_payment_succeeded(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        paid = gw.charge(_request(customer, "pm_card_visa"))
        (event,) = fake.events("payment_intent.succeeded")

        parsed = gw.parse_webhook(*fake.sign(event["id"]))

        assert (parsed.id, parsed.type, parsed.raw_type) == (
            event["id"],
            "payment.succeeded",
            "payment_intent.succeeded",
        )
        assert parsed.object_ref == paid.gateway_ref
        assert (
            parsed.charge is not None and parsed.charge.status == "succeeded" and parsed.charge.amount == 4200
        )
        assert parsed.metadata["revflow_invoice_id"] == "inv_1"
        assert parsed.created == datetime.fromtimestamp(event["created"], tz=UTC)

    def test_lower_case_header_names_work(self, fake: FakeStripe, gw: StripeGateway) -> None:
        _customer(gw)
        payload, headers = fake.sign(fake.events("customer.created")[0]["id"])

        parsed = gw.parse_webhook(payload, {k.lower(): v for k, v in headers.items()})

        assert (parsed.type, parsed.raw_type) == ("other", "customer.created")

    def test_bad_signature_is_refused(self, fake: FakeStripe, gw: StripeGateway) -> None:
        _customer(gw)
        payload, headers = fake.sign(fake.events()[0]["id"], secret="whsec_someone_else")

        with pytest.raises(WebhookSignatureError):
            gw.parse_webhook(payload, headers)

    def test_tampered_body_is_refused(self, fake: FakeStripe, gw: StripeGateway) -> None:
        _customer(gw)
        payload, headers = fake.sign(fake.events()[0]["id"])

        with pytest.raises(WebhookSignatureError):
            gw.parse_webhook(payload.replace(b"ada@example.com", b"eve@example.com"), headers)

    def test_stale_timestamp_is_refused(self, fake: FakeStripe, gw: StripeGateway) -> None:
        _customer(gw)
        payload, headers = fake.sign(fake.events()[0]["id"], timestamp=int(time.time()) - 301)

        with pytest.raises(WebhookSignatureError, match="tolerance"):
            gw.parse_webhook(payload, headers)

    def test_missing_header_or_secret_is_refused(self, fake: FakeStripe, gw: StripeGateway) -> None:
        _customer(gw)
        payload, headers = fake.sign(fake.events()[0]["id"])
        unconfigured = StripeGateway(fake.secret_key, api_base=fake.url)

        with pytest.raises(WebhookSignatureError):
            gw.parse_webhook(payload, {})
        with pytest.raises(WebhookSignatureError):
            unconfigured.parse_webhook(payload, headers)

    def test_malformed_json_with_a_valid_signature_is_value_error(
        self, fake: FakeStripe, gw: StripeGateway, endpoint: WebhookEndpoint
    ) -> None:
        from tests.fakes.stripe import sign_headers

        payload = b'{"id": "evt_1", "object": "event", '

        with pytest.raises(ValueError):
            gw.parse_webhook(payload, sign_headers(payload, endpoint.secret))
        with pytest.raises(ValueError):
            gw.parse_webhook(b'{"object": "event"}', sign_headers(b'{"object": "event"}', endpoint.secret))

    def test_ach_settlement_events(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        ok = gw.charge(_request(customer, "pm_usBankAccount", key="a-1"))
        bad = gw.charge(_request(customer, "pm_usBankAccount", key="b-1"))
        assert ok.gateway_ref is not None and bad.gateway_ref is not None

        fake.settle_ach(ok.gateway_ref)
        fake.settle_ach(
            bad.gateway_ref, succeed=False, failure_code="account_closed", failure_message="Closed."
        )

        processing = [gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events("payment_intent.processing")]
        (succeeded,) = [
            gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events("payment_intent.succeeded")
        ]
        (failed,) = [
            gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events("payment_intent.payment_failed")
        ]
        assert [e.type for e in processing] == ["payment.processing", "payment.processing"]
        assert succeeded.type == "payment.succeeded" and succeeded.object_ref == ok.gateway_ref
        assert ok.payment_method_type == "us_bank_account"
        assert succeeded.charge is not None and succeeded.charge.status == "succeeded"
        assert failed.type == "payment.failed" and failed.charge is not None
        assert (failed.charge.failure_code, failed.charge.hard_decline) == ("account_closed", True)
        assert failed.charge.payment_method_type == "us_bank_account"  # from last_payment_error
        assert gw.retrieve_charge(bad.gateway_ref).status == "failed"

    def test_a_charge_naming_its_method_type_makes_every_event_name_it(
        self, fake: FakeStripe, gw: StripeGateway
    ) -> None:
        customer = _customer(gw)
        untyped = gw.charge(_request(customer, "pm_usBankAccount", key="u-1"))
        typed = gw.charge(
            dataclasses.replace(
                _request(customer, "pm_usBankAccount", key="t-1"), payment_method_type="us_bank_account"
            )
        )
        assert untyped.gateway_ref is not None and typed.gateway_ref is not None
        fake.settle_ach(untyped.gateway_ref)
        fake.settle_ach(typed.gateway_ref)

        events = {
            e.object_ref: e
            for e in map(lambda ev: gw.parse_webhook(*fake.sign(ev["id"])), fake.events())
            if e.type == "payment.succeeded"
        }

        # Stripe's event carries the PaymentIntent with its payment method unexpanded: only a PaymentIntent
        # confined to one method type tells the receiver it was a bank debit.
        assert events[untyped.gateway_ref].charge.payment_method_type is None  # type: ignore[union-attr]
        assert events[typed.gateway_ref].charge.payment_method_type == "us_bank_account"  # type: ignore[union-attr]
        assert fake.get(typed.gateway_ref)["payment_method_types"] == ["us_bank_account"]  # type: ignore[index]

    def test_refund_and_dispute_events(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        paid = gw.charge(_request(customer, "pm_card_visa", amount=9_000))
        assert paid.gateway_ref is not None
        refund = gw.refund(gateway_ref=paid.gateway_ref, amount=1_000, idempotency_key="cn_1")
        dispute = fake.create_dispute(paid.gateway_ref, reason="fraudulent")

        (refunded,) = [gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events("charge.refunded")]
        (disputed,) = [gw.parse_webhook(*fake.sign(e["id"])) for e in fake.events("charge.dispute.created")]

        assert refunded.type == "charge.refunded" and refunded.object_ref.startswith("ch_")
        assert (refunded.payment_ref, refunded.amount_refunded, refunded.refund) == (
            paid.gateway_ref,
            1_000,
            refund,
        )
        assert disputed.type == "dispute.created" and disputed.object_ref == dispute["id"]
        assert (disputed.payment_ref, disputed.dispute_reason, disputed.dispute_amount) == (
            paid.gateway_ref,
            "fraudulent",
            9_000,
        )

    def test_payment_method_events(self, fake: FakeStripe, gw: StripeGateway) -> None:
        customer = _customer(gw)
        card = gw.attach_payment_method(customer_ref=customer, token="pm_card_visa")
        fake.update_card(card.token, exp_month=1, exp_year=2032)
        gw.detach_payment_method(card.token)

        parsed = [
            gw.parse_webhook(*fake.sign(e["id"]))
            for e in fake.events()
            if e["type"].startswith("payment_method.")
        ]

        assert [p.type for p in parsed] == [
            "payment_method.attached",
            "payment_method.updated",
            "payment_method.detached",
        ]
        assert all(p.object_ref == card.token and p.payment_method is not None for p in parsed)
        assert parsed[0].payment_method is not None and parsed[0].payment_method.customer_ref == customer
        assert parsed[1].payment_method is not None and parsed[1].payment_method.exp_year == 2032
        assert parsed[2].payment_method is not None and parsed[2].payment_method.customer_ref is None

    def test_duplicates_and_out_of_order_deliveries_parse_to_the_same_events(
        self, fake: FakeStripe, gw: StripeGateway
    ) -> None:
        customer = _customer(gw)
        gw.charge(_request(customer, "pm_usBankAccount"))
        pi = fake.objects("payment_intent")[0]["id"]
        fake.settle_ach(pi)
        deliveries = [json.loads(body) for body, _ in [fake.sign(e["id"]) for e in fake.pending_webhooks()]]
        received: list[str] = []

        fake.deliver_webhooks(
            handler=lambda body, headers: received.append(gw.parse_webhook(body, headers).id) or 200
        )
        again = [gw.parse_webhook(*fake.sign(e["id"])).id for e in reversed(deliveries)]

        assert received == [e["id"] for e in deliveries]
        assert again == list(reversed(received))  # a receiver dedupes on GatewayEvent.id

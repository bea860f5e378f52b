"""The fake Stripe answers the official SDK as Stripe does: every answer parses into the SDK's typed objects
and errors. No database: these run once, not per storage backend."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from tests.fakes.stripe import TEST_TOKENS, FakeStripe
from tests.fakes.stripe.forms import decode_form
from tests.fakes.stripe.routes import ROUTES


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(hang_seconds=2.0) as f:
        yield f


@pytest.fixture
def sdk(fake: FakeStripe) -> stripe.StripeClient:
    return fake.client(timeout=1.0)


def _customer(sdk: stripe.StripeClient, **kw: Any) -> stripe.Customer:
    return sdk.v1.customers.create({"email": "ada@example.com", "name": "Ada", **kw})


def _charge(
    sdk: stripe.StripeClient, customer: str, pm: str, amount: int = 2500, **kw: Any
) -> stripe.PaymentIntent:
    return sdk.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": "usd",
            "customer": customer,
            "payment_method": pm,
            "payment_method_types": ["card", "us_bank_account"],
            "confirm": True,
            "off_session": True,
            **kw,
        }
    )


class TestForms:
    def test_decodes_nested_keys_indexed_lists_and_bracket_lists(self) -> None:
        form = (
            "metadata[a]=1&metadata[b]=&payment_method_types[0]=card&payment_method_types[1]=us_bank_account"
        )
        form += "&expand[]=latest_charge&expand[]=customer&created[gte]=10"

        assert decode_form(form) == {
            "metadata": {"a": "1", "b": ""},
            "payment_method_types": ["card", "us_bank_account"],
            "expand": ["latest_charge", "customer"],
            "created": {"gte": "10"},
        }


class TestCustomers:
    def test_create_retrieve_update_parse_as_typed_objects(self, sdk: stripe.StripeClient) -> None:
        created = _customer(sdk, metadata={"revflow_customer_id": "cus_rf1"})

        fetched = sdk.v1.customers.retrieve(created.id)
        updated = sdk.v1.customers.update(
            created.id, {"email": "grace@example.com", "metadata": {"tier": "gold"}}
        )

        assert isinstance(fetched, stripe.Customer)
        assert created.id.startswith("cus_") and len(created.id) == 18
        assert fetched.email == "ada@example.com" and fetched.name == "Ada"
        assert fetched.metadata["revflow_customer_id"] == "cus_rf1"
        assert fetched.invoice_settings.default_payment_method is None
        assert updated.email == "grace@example.com"
        assert updated.metadata.to_dict() == {"revflow_customer_id": "cus_rf1", "tier": "gold"}
        assert fetched.livemode is False

    def test_responses_carry_request_id_and_version(self, sdk: stripe.StripeClient) -> None:
        created = _customer(sdk)

        headers = created.last_response.headers

        assert headers["Request-Id"].startswith("req_")
        assert headers["Stripe-Version"] == stripe.api_version
        assert created.last_response.request_id == headers["Request-Id"]

    def test_list_pages_forward_and_backward_and_auto_pages(self, sdk: stripe.StripeClient) -> None:
        ids = [_customer(sdk, name=f"c{i}").id for i in range(25)]
        newest_first = list(reversed(ids))

        first = sdk.v1.customers.list({"limit": 10})
        second = sdk.v1.customers.list({"limit": 10, "starting_after": first.data[-1].id})
        back = sdk.v1.customers.list({"limit": 5, "ending_before": second.data[0].id})
        everything = [c.id for c in sdk.v1.customers.list({"limit": 7}).auto_paging_iter()]

        assert first.object == "list" and first.url == "/v1/customers" and first.has_more is True
        assert [c.id for c in first.data] == newest_first[:10]
        assert [c.id for c in second.data] == newest_first[10:20]
        assert [c.id for c in back.data] == newest_first[5:10] and back.has_more is True
        assert everything == newest_first

    def test_search_by_metadata(self, sdk: stripe.StripeClient) -> None:
        wanted = _customer(sdk, metadata={"revflow_customer_id": "cus_a"})
        _customer(sdk, metadata={"revflow_customer_id": "cus_b"})

        found = sdk.v1.customers.search({"query": "metadata['revflow_customer_id']:'cus_a'"})

        assert found.object == "search_result"
        assert [c.id for c in found.data] == [wanted.id]


class TestErrors:
    def test_missing_object_is_resource_missing_404(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.customers.retrieve("cus_doesnotexist00")

        assert exc.value.http_status == 404
        assert exc.value.code == "resource_missing"
        assert exc.value.param == "id"
        assert exc.value.user_message == "No such customer: 'cus_doesnotexist00'"

    def test_unknown_parameter_is_400(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.customers.create({"nickname": "x"})  # type: ignore[typeddict-unknown-key]

        assert exc.value.http_status == 400
        assert exc.value.code == "parameter_unknown"
        assert exc.value.param == "nickname"

    def test_bad_api_key_is_401(self, fake: FakeStripe) -> None:
        client = stripe.StripeClient("sk_live_nope", base_addresses={"api": fake.url})

        with pytest.raises(stripe.AuthenticationError) as exc:
            client.v1.customers.list()

        assert exc.value.http_status == 401
        assert "Invalid API Key provided" in str(exc.value.user_message)

    def test_unknown_path_is_404(self, fake: FakeStripe) -> None:
        response = requests.get(
            f"{fake.url}/v1/widgets", headers={"Authorization": f"Bearer {fake.secret_key}"}, timeout=5
        )

        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert "Unrecognized request URL (GET: /v1/widgets)" in response.json()["error"]["message"]


class TestIdempotency:
    def test_same_key_same_params_replays_the_first_answer(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        first = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "rf-cus-1"})

        again = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "rf-cus-1"})

        assert again.id == first.id
        assert again.last_response.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.last_response.headers
        assert len(fake.objects("customer")) == 1

    def test_same_key_other_params_is_idempotency_error(self, sdk: stripe.StripeClient) -> None:
        sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "rf-cus-2"})

        with pytest.raises(stripe.IdempotencyError) as exc:
            sdk.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "rf-cus-2"})

        assert exc.value.http_status == 400
        assert exc.value.error.type == "idempotency_error"

    def test_a_decline_is_replayed_too(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        params: Any = {
            "amount": 900,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_chargeDeclined",
            "confirm": True,
            "off_session": True,
        }
        with pytest.raises(stripe.CardError) as first:
            sdk.v1.payment_intents.create(params, {"idempotency_key": "rf-inv-1-attempt-1"})

        with pytest.raises(stripe.CardError) as again:
            sdk.v1.payment_intents.create(params, {"idempotency_key": "rf-inv-1-attempt-1"})

        assert again.value.error.payment_intent.id == first.value.error.payment_intent.id
        assert again.value.headers["Idempotent-Replayed"] == "true"
        assert len(fake.objects("payment_intent")) == 1

    def test_keys_expire_after_24_hours(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        first = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "rf-cus-3"})
        fake.advance_time(24 * 3600)

        later = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "rf-cus-3"})

        assert later.id != first.id
        assert "Idempotent-Replayed" not in later.last_response.headers

    def test_keys_longer_than_255_characters_are_refused(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k" * 256})

        assert exc.value.http_status == 400


class TestExpandAndLimits:
    def test_expand_replaces_ids_with_objects_in_lists_too(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        pi = _charge(sdk, cus.id, "pm_card_visa")

        single = sdk.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge", "customer"]})
        listed = sdk.v1.payment_intents.list({"customer": cus.id, "expand": ["data.latest_charge"]})

        assert isinstance(single.customer, stripe.Customer) and single.customer.id == cus.id
        assert isinstance(single.latest_charge, stripe.Charge) and single.latest_charge.id == pi.latest_charge
        assert isinstance(listed.data[0].latest_charge, stripe.Charge)

    def test_expanding_a_plain_field_is_refused(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)

        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.customers.retrieve(cus.id, {"expand": ["email"]})

        assert (exc.value.http_status, exc.value.param) == (400, "expand")

    def test_limit_above_100_is_refused(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.customers.list({"limit": 101})

        assert (exc.value.code, exc.value.param) == ("parameter_invalid_integer", "limit")


class TestPaymentMethods:
    def test_attaching_a_test_token_creates_a_new_card_with_its_details(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)

        pm = sdk.v1.payment_methods.attach("pm_card_mastercard", {"customer": cus.id})
        listed = sdk.v1.customers.payment_methods.list(cus.id, {"type": "card"})

        assert isinstance(pm, stripe.PaymentMethod)
        assert pm.id.startswith("pm_1") and pm.id != "pm_card_mastercard"
        assert (pm.card.brand, pm.card.last4, pm.customer) == ("mastercard", "4444", cus.id)
        assert isinstance(pm.card.exp_month, int) and pm.card.exp_year >= 2030
        assert listed.url == f"/v1/customers/{cus.id}/payment_methods"
        assert [p.id for p in listed.data] == [pm.id]
        assert [e["data"]["object"]["id"] for e in fake.events("payment_method.attached")] == [pm.id]

    def test_bank_account_token_carries_bank_name(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)

        pm = sdk.v1.payment_methods.attach("pm_usBankAccount", {"customer": cus.id})

        assert pm.type == "us_bank_account"
        assert pm.us_bank_account.bank_name == "STRIPE TEST BANK"
        assert pm.us_bank_account.last4 == "6789"

    @pytest.mark.parametrize(
        ("token", "code", "decline_code"),
        [
            ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
            ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
            ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
            ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
        ],
    )
    def test_declining_cards_cannot_be_attached(
        self, sdk: stripe.StripeClient, token: str, code: str, decline_code: str
    ) -> None:
        cus = _customer(sdk)

        with pytest.raises(stripe.CardError) as exc:
            sdk.v1.payment_methods.attach(token, {"customer": cus.id})

        assert exc.value.http_status == 402
        assert (exc.value.code, exc.value.error.decline_code) == (code, decline_code)

    def test_detach_then_reattach_is_refused(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})

        detached = sdk.v1.payment_methods.detach(pm.id)
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.payment_methods.attach(pm.id, {"customer": cus.id})

        assert detached.customer is None
        assert sdk.v1.customers.payment_methods.list(cus.id).data == []
        assert exc.value.http_status == 400 and exc.value.code == "payment_method_unexpected_state"
        assert len(fake.events("payment_method.detached")) == 1

    def test_card_expiry_update_emits_payment_method_updated(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)
        pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})

        fake.update_card(pm.id, exp_month=3, exp_year=2031)

        fetched = sdk.v1.payment_methods.retrieve(pm.id)
        (event,) = fake.events("payment_method.updated")
        assert (fetched.card.exp_month, fetched.card.exp_year) == (3, 2031)
        assert event["data"]["previous_attributes"] == {"card": {"exp_month": 12, "exp_year": 2034}}


class TestSetupIntents:
    def test_confirm_with_a_test_token_saves_the_card_on_the_customer(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        si = sdk.v1.setup_intents.create(
            {"customer": cus.id, "payment_method_types": ["card"], "usage": "off_session"}
        )

        confirmed = sdk.v1.setup_intents.confirm(si.id, {"payment_method": "pm_card_visa"})

        assert si.status == "requires_payment_method"
        assert si.client_secret.startswith(f"{si.id}_secret_")
        assert confirmed.status == "succeeded"
        pm = sdk.v1.payment_methods.retrieve(str(confirmed.payment_method))
        assert (pm.customer, pm.card.last4) == (cus.id, "4242")

    def test_authentication_required_card_asks_for_action(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        si = sdk.v1.setup_intents.create({"customer": cus.id})

        confirmed = sdk.v1.setup_intents.confirm(si.id, {"payment_method": "pm_card_authenticationRequired"})

        assert confirmed.status == "requires_action"
        assert confirmed.next_action.type == "use_stripe_sdk"


class TestPaymentIntents:
    def test_off_session_card_charge_succeeds_with_a_charge(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)
        pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})

        pi = _charge(sdk, cus.id, pm.id, metadata={"revflow_invoice_id": "inv_1"}, expand=["latest_charge"])

        assert isinstance(pi, stripe.PaymentIntent)
        assert (pi.status, pi.amount, pi.amount_received, pi.currency) == ("succeeded", 2500, 2500, "usd")
        charge = pi.latest_charge
        assert isinstance(charge, stripe.Charge)
        assert (charge.status, charge.paid, charge.amount_refunded, charge.refunded) == (
            "succeeded",
            True,
            0,
            False,
        )
        assert charge.payment_method_details.card.last4 == "4242"
        assert charge.metadata["revflow_invoice_id"] == "inv_1"
        assert [e["type"] for e in fake.events() if e["type"].startswith(("payment_intent.", "charge."))] == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]

    @pytest.mark.parametrize(
        ("token", "code", "decline_code"),
        [
            ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
            ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
            ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
            ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
            ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
            ("pm_card_authenticationRequired", "authentication_required", "authentication_required"),
        ],
    )
    def test_declines_are_402_card_errors_with_the_payment_intent(
        self, sdk: stripe.StripeClient, token: str, code: str, decline_code: str
    ) -> None:
        cus = _customer(sdk)

        with pytest.raises(stripe.CardError) as exc:
            _charge(sdk, cus.id, token)

        err = exc.value
        assert err.http_status == 402
        assert (err.code, err.error.decline_code, err.error.type) == (code, decline_code, "card_error")
        pi = sdk.v1.payment_intents.retrieve(err.error.payment_intent.id)
        assert pi.status == "requires_payment_method"
        assert (pi.last_payment_error.code, pi.last_payment_error.decline_code) == (code, decline_code)

    def test_on_session_authentication_card_requires_action(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)

        pi = sdk.v1.payment_intents.create(
            {
                "amount": 1000,
                "currency": "usd",
                "customer": cus.id,
                "payment_method": "pm_card_authenticationRequired",
                "confirm": True,
            }
        )

        assert pi.status == "requires_action"
        assert pi.next_action.type == "use_stripe_sdk"

    def test_us_bank_account_processes_then_settles(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        pm = sdk.v1.payment_methods.attach("pm_usBankAccount", {"customer": cus.id})
        pi = _charge(sdk, cus.id, pm.id)

        fake.settle_ach(pi.id)

        assert pi.status == "processing"
        settled = sdk.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
        assert settled.status == "succeeded"
        assert settled.latest_charge.status == "succeeded"  # type: ignore[union-attr]
        assert [e["type"] for e in fake.events() if e["type"].startswith("payment_intent.")] == [
            "payment_intent.created",
            "payment_intent.processing",
            "payment_intent.succeeded",
        ]

    def test_failed_ach_debit_reports_payment_failed(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)
        pm = sdk.v1.payment_methods.attach("pm_usBankAccount", {"customer": cus.id})
        pi = _charge(sdk, cus.id, pm.id)

        fake.settle_ach(
            pi.id, succeed=False, failure_code="account_closed", failure_message="Account closed."
        )

        failed = sdk.v1.payment_intents.retrieve(pi.id)
        assert failed.status == "requires_payment_method"
        assert failed.last_payment_error.code == "account_closed"
        assert fake.events("payment_intent.payment_failed")[0]["data"]["object"]["id"] == pi.id

    def test_card_only_intent_refuses_a_bank_account(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)

        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.payment_intents.create(
                {"amount": 1000, "currency": "usd", "customer": cus.id, "payment_method": "pm_usBankAccount",
                 "confirm": True, "off_session": True}
            )  # fmt: skip

        assert exc.value.code == "payment_intent_incompatible_payment_method"

    def test_list_by_customer_and_search_by_metadata(self, sdk: stripe.StripeClient) -> None:
        a, b = _customer(sdk), _customer(sdk)
        mine = [
            _charge(sdk, a.id, "pm_card_visa", metadata={"revflow_idempotency_key": f"k{i}"}).id
            for i in range(3)
        ]
        _charge(sdk, b.id, "pm_card_visa")

        listed = [
            p.id for p in sdk.v1.payment_intents.list({"customer": a.id, "limit": 2}).auto_paging_iter()
        ]
        found = sdk.v1.payment_intents.search({"query": "metadata['revflow_idempotency_key']:'k1'"})

        assert listed == list(reversed(mine))
        assert [p.id for p in found.data] == [mine[1]]

    def test_unknown_currency_is_refused(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.payment_intents.create({"amount": 1000, "currency": "xyz"})

        assert (exc.value.http_status, exc.value.param) == (400, "currency")

    def test_amount_below_the_minimum_is_refused(self, sdk: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.payment_intents.create({"amount": 10, "currency": "usd"})

        assert (exc.value.code, exc.value.param) == ("amount_too_small", "amount")


class TestRefundsAndDisputes:
    def test_partial_then_full_refund_then_over_refund(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)
        pi = _charge(sdk, cus.id, "pm_card_visa", amount=5000)

        partial = sdk.v1.refunds.create(
            {"payment_intent": pi.id, "amount": 1500, "reason": "requested_by_customer"}
        )
        rest = sdk.v1.refunds.create({"charge": str(pi.latest_charge)})
        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.refunds.create({"payment_intent": pi.id, "amount": 1})

        assert isinstance(partial, stripe.Refund)
        assert (partial.amount, partial.status, partial.charge) == (1500, "succeeded", pi.latest_charge)
        assert rest.amount == 3500
        charge = sdk.v1.charges.retrieve(str(pi.latest_charge))
        assert (charge.amount_refunded, charge.refunded) == (5000, True)
        assert [r.id for r in sdk.v1.refunds.list({"payment_intent": pi.id}).data] == [rest.id, partial.id]
        assert exc.value.code == "charge_already_refunded"
        assert [e["data"]["object"]["amount_refunded"] for e in fake.events("charge.refunded")] == [
            1500,
            5000,
        ]

    def test_refund_above_the_unrefunded_amount_is_amount_too_large(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        pi = _charge(sdk, cus.id, "pm_card_visa", amount=5000)
        sdk.v1.refunds.create({"payment_intent": pi.id, "amount": 4000})

        with pytest.raises(stripe.InvalidRequestError) as exc:
            sdk.v1.refunds.create({"payment_intent": pi.id, "amount": 1001})

        assert (exc.value.http_status, exc.value.code, exc.value.param) == (400, "amount_too_large", "amount")
        assert "$10.01" in str(exc.value.user_message) and "$10.00" in str(exc.value.user_message)

    def test_dispute_control_creates_a_dispute_and_event(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        cus = _customer(sdk)
        pi = _charge(sdk, cus.id, "pm_card_visa")

        created = fake.create_dispute(pi.id, reason="fraudulent")

        dispute = sdk.v1.disputes.retrieve(created["id"])
        assert isinstance(dispute, stripe.Dispute)
        assert (dispute.amount, dispute.reason, dispute.status) == (2500, "fraudulent", "needs_response")
        assert (dispute.charge, dispute.payment_intent) == (pi.latest_charge, pi.id)
        assert sdk.v1.charges.retrieve(str(pi.latest_charge)).disputed is True
        assert fake.events("charge.dispute.created")[0]["data"]["object"]["id"] == dispute.id


class TestEvents:
    def test_events_list_and_retrieve_parse(self, sdk: stripe.StripeClient) -> None:
        cus = _customer(sdk)
        _charge(sdk, cus.id, "pm_card_visa")

        succeeded = sdk.v1.events.list({"type": "payment_intent.succeeded"})
        event = sdk.v1.events.retrieve(succeeded.data[0].id)

        assert isinstance(event, stripe.Event)
        assert event.type == "payment_intent.succeeded"
        assert event.data.object["object"] == "payment_intent"
        assert event.request.idempotency_key is not None  # the SDK sends one on every POST


class TestWebhooks:
    def test_signed_delivery_verifies_with_the_sdk(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        endpoint = fake.add_webhook_endpoint(enabled_events=["payment_intent.succeeded"])
        cus = _customer(sdk)
        pi = _charge(sdk, cus.id, "pm_card_visa")
        (pending,) = fake.pending_webhooks(endpoint)

        payload, headers = fake.sign(pending["id"], secret=endpoint.secret)
        event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], endpoint.secret)

        assert endpoint.secret.startswith("whsec_")
        assert event.id == pending["id"] and event.type == "payment_intent.succeeded"
        assert event.data.object["id"] == pi.id
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_other")

    def test_delivers_to_a_handler_and_keeps_failed_deliveries_queued(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        endpoint = fake.add_webhook_endpoint()
        _customer(sdk)
        received: list[str] = []

        failed = fake.deliver_webhooks(handler=lambda body, headers: 500)
        delivered = fake.deliver_webhooks(
            handler=lambda body, headers: received.append(json.loads(body)["type"]) or 200
        )

        assert [d.status for d in failed] == [500]
        assert [d.status for d in delivered] == [200] and received == ["customer.created"]
        assert fake.pending_webhooks(endpoint) == []

    def test_posts_to_a_url_endpoint(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        with FakeStripe() as receiver_host:  # any local HTTP server works as a receiver; reuse the fake's
            url = f"{receiver_host.url}/v1/customers"
            endpoint = fake.add_webhook_endpoint(url)
            _customer(sdk)

            (delivery,) = fake.deliver_webhooks()

        assert delivery.status == 401  # the receiving fake wants an API key: the POST did arrive
        assert fake.pending_webhooks(endpoint) != []

    def test_auto_delivery_posts_signed_events_to_a_listening_endpoint(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        received: list[stripe.Event] = []
        secret = "whsec_receivertest"
        arrived = threading.Event()

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(
                    stripe.Webhook.construct_event(body, self.headers["Stripe-Signature"], secret)
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            fake.auto_deliver = True
            endpoint = fake.add_webhook_endpoint(
                f"http://127.0.0.1:{server.server_address[1]}/hook",
                secret=secret,
                enabled_events=["customer.created"],
            )
            cus = _customer(sdk)
            assert arrived.wait(10)
        finally:
            server.shutdown()
            server.server_close()

        assert [(e.type, e.data.object["id"]) for e in received] == [("customer.created", cus.id)]
        assert fake.pending_webhooks(endpoint) == []


class TestFaults:
    def test_timeout_after_processing_leaves_the_object_created(
        self, fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        fake.fail_next("timeout", path="/v1/customers")

        with pytest.raises(stripe.APIConnectionError):
            _customer(sdk)

        assert len(fake.objects("customer")) == 1
        assert fake.requests[-1].status is None

    def test_rate_limit_has_retry_after(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        fake.fail_next("429", retry_after=7)

        with pytest.raises(stripe.RateLimitError) as exc:
            _customer(sdk)

        assert exc.value.http_status == 429 and exc.value.headers["Retry-After"] == "7"
        assert fake.objects("customer") == []

    def test_server_error_and_malformed_body(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        fake.fail_next("500")
        fake.fail_next("malformed")

        with pytest.raises(stripe.APIError) as five_hundred:
            _customer(sdk)
        with pytest.raises(stripe.APIError) as malformed:
            _customer(sdk)

        assert five_hundred.value.http_status == 500
        assert "Invalid response body" in str(malformed.value)
        assert len(fake.objects("customer")) == 1  # the 500 did nothing; the garbled answer hid a success

    def test_disconnect_is_a_connection_error(self, fake: FakeStripe, sdk: stripe.StripeClient) -> None:
        fake.fail_next("disconnect")

        with pytest.raises(stripe.APIConnectionError):
            _customer(sdk)

        assert len(fake.objects("customer")) == 1


_SPECS = Path(
    os.environ.get("REVFLOW_STRIPE_SPECS", Path(__file__).resolve().parents[3] / "shared/specs/stripe")
)


class TestTestTokens:
    def test_test_tokens_cover_the_documented_set(self) -> None:
        documented = {
            "pm_card_visa",
            "pm_card_mastercard",
            "pm_card_chargeDeclined",
            "pm_card_chargeDeclinedInsufficientFunds",
            "pm_card_chargeDeclinedExpiredCard",
            "pm_card_chargeDeclinedStolenCard",
            "pm_card_authenticationRequired",
            "pm_usBankAccount",
        }

        assert documented <= set(TEST_TOKENS)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    path = _SPECS / "spec3-2023-08-16.yaml"
    if not path.exists() or not (_SPECS / "fixtures3.json").exists():
        pytest.skip(f"Stripe OpenAPI spec and fixtures not found in {_SPECS} (set REVFLOW_STRIPE_SPECS)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as f:
        spec: dict[str, Any] = yaml.load(f, Loader=loader)
    return spec


def _spec_path(spec: dict[str, Any], path: str) -> dict[str, Any] | None:
    shape = re.sub(r"\{[^}]+\}", "{}", path)
    for candidate, ops in spec["paths"].items():
        if re.sub(r"\{[^}]+\}", "{}", candidate) == shape:
            return dict(ops)
    return None


def _route_path(route: Any) -> str:
    return route.pattern.pattern.strip("^$").replace("([^/]+)", "{id}")


#: Parameters the SDK's API version (``stripe.api_version``) sends that the 2023-08-16 spec does not have yet.
_NEWER_PARAMS = {"allowed_payment_method_types"}


class TestFollowsTheOpenApiSpec:
    """The fake's paths, parameters and objects against Stripe's published OpenAPI description."""

    def test_every_route_and_parameter_is_published(self, openapi: dict[str, Any]) -> None:
        for route in ROUTES:
            path = _route_path(route)
            ops = _spec_path(openapi, path)
            assert ops is not None, f"{path} is not a Stripe path"
            op = ops.get(route.method.lower())
            assert op is not None, f"{route.method} {path} is not a Stripe operation"
            if route.method == "POST":
                schema = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
                published = set(schema.get("properties", {}))
            else:
                published = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            unknown = set(route.params) - published - _NEWER_PARAMS
            assert not unknown, f"{route.method} {path} accepts unpublished parameters {sorted(unknown)}"

    def test_objects_have_the_required_fields_and_no_unpublished_ones(
        self, openapi: dict[str, Any], fake: FakeStripe, sdk: stripe.StripeClient
    ) -> None:
        """Required fields of the 2023-08-16 schema are present; every field rendered is in that schema or in
        ``fixtures3.json`` (Stripe's newer sample objects, e.g. ``display_brand``)."""
        schemas = openapi["components"]["schemas"]
        fixtures = json.loads((_SPECS / "fixtures3.json").read_text())["resources"]
        cus = _customer(sdk)
        si = sdk.v1.setup_intents.create({"customer": cus.id})
        sdk.v1.setup_intents.confirm(si.id, {"payment_method": "pm_card_visa"})
        pi = _charge(sdk, cus.id, "pm_card_visa")
        with pytest.raises(stripe.CardError):
            _charge(sdk, cus.id, "pm_card_chargeDeclined")
        sdk.v1.refunds.create({"payment_intent": pi.id, "amount": 100})
        fake.create_dispute(pi.id)
        bank = sdk.v1.payment_methods.attach("pm_usBankAccount", {"customer": cus.id})
        fake.settle_ach(_charge(sdk, cus.id, bank.id).id)

        checked = 0
        for kind in (
            "customer",
            "setup_intent",
            "payment_method",
            "payment_intent",
            "charge",
            "refund",
            "dispute",
            "event",
        ):
            for obj in fake.objects(kind):
                checked += _assert_shape(schemas, kind, obj, fixtures.get(kind))
                if kind == "payment_method":
                    sub = obj["type"]
                    checked += _assert_shape(
                        schemas, f"payment_method_{sub}", obj[sub], fixtures[kind].get(sub)
                    )
                if kind == "charge":
                    sub = obj["payment_method_details"]["type"]
                    checked += _assert_shape(
                        schemas,
                        f"payment_method_details_{sub}",
                        obj["payment_method_details"][sub],
                        fixtures[kind]["payment_method_details"].get(sub),
                    )
                    if obj["outcome"] is not None:
                        checked += _assert_shape(
                            schemas, "charge_outcome", obj["outcome"], fixtures[kind]["outcome"]
                        )
                if kind == "payment_intent" and obj["last_payment_error"] is not None:
                    checked += _assert_shape(schemas, "api_errors", obj["last_payment_error"], None)
                if kind == "dispute":
                    checked += _assert_shape(
                        schemas, "dispute_evidence", obj["evidence"], fixtures[kind]["evidence"]
                    )

        assert checked > 30

    def test_error_objects_use_published_fields_and_types(
        self, openapi: dict[str, Any], sdk: stripe.StripeClient
    ) -> None:
        schema = openapi["components"]["schemas"]["api_errors"]
        errors: list[stripe.StripeError] = []
        cus = _customer(sdk)
        for call in (
            lambda: sdk.v1.customers.retrieve("cus_missing0000000"),
            lambda: _charge(sdk, cus.id, "pm_card_chargeDeclinedStolenCard"),
            lambda: sdk.v1.customers.create({"email": "x@example.com"}, {"idempotency_key": "k"}),
            lambda: sdk.v1.customers.create({"email": "y@example.com"}, {"idempotency_key": "k"}),
        ):
            try:
                call()
            except stripe.StripeError as exc:
                errors.append(exc)

        assert len(errors) == 3
        for exc in errors:
            body = exc.json_body["error"]  # type: ignore[index]
            assert set(body) <= set(schema["properties"]), sorted(set(body) - set(schema["properties"]))
            assert body["type"] in schema["properties"]["type"]["enum"]


def _assert_shape(schemas: dict[str, Any], name: str, obj: dict[str, Any], fixture: Any) -> int:
    schema = schemas[name]
    published = set(schema.get("properties", {})) | set(fixture or {}) | _NEWER_PARAMS
    missing = set(schema.get("required", [])) - set(obj)
    extra = set(obj) - published
    assert not missing, f"{name} {obj.get('id')} lacks required {sorted(missing)}"
    assert not extra, f"{name} {obj.get('id')} has unpublished {sorted(extra)}"
    return 1

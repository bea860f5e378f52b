"""The fake Stripe answers the official SDK as Stripe does: every answer parses into the SDK's typed objects
and errors. No database: these run once, not per storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from tests.fakes.stripe import FakeStripe
from tests.fakes.stripe.forms import decode_form


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

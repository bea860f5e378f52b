"""Stripe objects → the port's dataclasses: the cases the fake does not produce on its own."""

from __future__ import annotations

from typing import Any

import pytest

from revflow.adapters.payments.stripe.consts import HARD_DECLINE_CODES
from revflow.adapters.payments.stripe.mapping import charge_result, gateway_event, refund_result


def _pi(**kw: Any) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1999,
        "currency": "eur",
        "status": "succeeded",
        "created": 1_700_000_000,
        "metadata": {},
        "last_payment_error": None,
        "payment_method": "pm_1",
        "payment_method_types": ["card"],
        **kw,
    }


def _event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": type_,
        "created": 1_700_000_100,
        "data": {"object": obj},
    }


class TestChargeResult:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("succeeded", "succeeded"),
            ("processing", "processing"),
            ("requires_capture", "processing"),
            ("requires_action", "requires_action"),
            ("requires_payment_method", "failed"),
            ("requires_confirmation", "failed"),
            ("canceled", "failed"),
        ],
    )
    def test_maps_every_payment_intent_status(self, status: str, expected: str) -> None:
        result = charge_result(_pi(status=status))

        assert result.status == expected
        assert (result.amount, result.currency, result.gateway_ref) == (1999, "EUR", "pi_1")

    def test_canceled_intent_says_so(self) -> None:
        result = charge_result(_pi(status="canceled"))

        assert (result.failure_code, result.hard_decline) == ("canceled", False)

    def test_single_method_type_is_reported_without_expansion(self) -> None:
        assert charge_result(_pi()).payment_method_type == "card"
        assert (
            charge_result(_pi(payment_method_types=["card", "us_bank_account"])).payment_method_type is None
        )

    @pytest.mark.parametrize("code", sorted(HARD_DECLINE_CODES))
    def test_hard_declines_stop_retries(self, code: str) -> None:
        error = {"type": "card_error", "code": "card_declined", "decline_code": code, "message": "Declined."}

        result = charge_result(_pi(status="requires_payment_method", last_payment_error=error))

        assert (result.status, result.decline_code, result.hard_decline) == ("failed", code, True)

    def test_insufficient_funds_is_soft(self) -> None:
        error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}

        result = charge_result(_pi(status="requires_payment_method", last_payment_error=error))

        assert (result.status, result.hard_decline) == ("failed", False)


class TestRefundResult:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("succeeded", "succeeded"),
            ("pending", "pending"),
            ("requires_action", "pending"),
            ("failed", "failed"),
            ("canceled", "failed"),
        ],
    )
    def test_maps_statuses(self, status: str, expected: str) -> None:
        refund = {"id": "re_1", "object": "refund", "amount": 5, "currency": "usd", "status": status}

        assert refund_result(refund).status == expected


class TestGatewayEvent:
    def test_automatic_card_update_is_payment_method_updated(self) -> None:
        pm = {"id": "pm_1", "object": "payment_method", "type": "card", "customer": "cus_1",
              "card": {"brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2031}}  # fmt: skip

        event = gateway_event(_event("payment_method.automatically_updated", pm))

        assert (event.type, event.raw_type) == (
            "payment_method.updated",
            "payment_method.automatically_updated",
        )
        assert event.payment_method is not None and event.payment_method.exp_year == 2031

    def test_unknown_types_are_other_and_keep_the_object(self) -> None:
        event = gateway_event(
            _event("invoice.paid", {"id": "in_1", "object": "invoice", "metadata": {"a": "b"}})
        )

        assert (event.type, event.object_ref, event.metadata) == ("other", "in_1", {"a": "b"})
        assert event.data["object"] == "invoice"

    def test_event_without_data_object_is_malformed(self) -> None:
        with pytest.raises(ValueError, match="not a Stripe event"):
            gateway_event(
                {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "created": 1}
            )

    def test_payment_event_about_another_object_is_malformed(self) -> None:
        with pytest.raises(ValueError, match="not the expected object"):
            gateway_event(_event("payment_intent.succeeded", {"id": "ch_1", "object": "charge"}))

    def test_dispute_without_amount_is_malformed(self) -> None:
        with pytest.raises(ValueError, match="lacks"):
            gateway_event(
                _event("charge.dispute.created", {"id": "dp_1", "object": "dispute", "reason": "general"})
            )

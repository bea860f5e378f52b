"""The sandbox gateway: a payment gateway that keeps its own books and decides each charge's outcome from
the test payment-method token it was made from (Stripe's test token names).

It is the default on the embedded setup. Its records live in the ``sandbox_*`` tables, written in their own
transactions (as a remote gateway's would be): on SQLite in a separate file next to Revflow's, on
PostgreSQL in Revflow's database. Charges are idempotent by idempotency key; ACH debits stay
``processing`` until ``settles_at`` (4 days, measured on the real clock or on the charge's test clock) and
then emit events that :meth:`SandboxGateway.pending_events` hands to the same processing path as a
gateway's webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from revflow.domain.clock import Clock
from revflow.domain.ids import new_id
from revflow.services.ports import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
    GatewayEvent,
    GatewayEventType,
    GatewayPayment,
    PaymentMethodInfo,
    RefundResult,
    SetupSession,
    WebhookSignatureError,
)
from revflow.storage.payment_models import (
    SandboxCharge,
    SandboxCustomer,
    SandboxEvent,
    SandboxPaymentMethod,
    SandboxRefund,
)

__all__ = ["ACH_SETTLEMENT", "SIGNATURE_HEADER", "TEST_TOKENS", "SandboxGateway", "TestToken"]

#: How long an ACH debit stays ``processing`` before it settles or is returned.
ACH_SETTLEMENT = timedelta(days=4)
SIGNATURE_HEADER = "revflow-sandbox-signature"
TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class TestToken:
    """What a test token does when charged."""

    type: str  # "card" | "us_bank_account"
    outcome: str  # "succeeded" | "failed" | "requires_action" | "ach_succeeds" | "ach_fails" | "timeout"...
    brand: str | None = None
    last4: str | None = None
    bank_name: str | None = None
    failure_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    hard: bool = False


_DECLINED = "Your card was declined."
TEST_TOKENS: dict[str, TestToken] = {
    "pm_card_visa": TestToken("card", "succeeded", "visa", "4242"),
    "pm_card_mastercard": TestToken("card", "succeeded", "mastercard", "4444"),
    "pm_card_amex": TestToken("card", "succeeded", "amex", "8431"),
    "pm_card_chargeDeclined": TestToken(
        "card", "failed", "visa", "0002", None, "card_declined", "generic_decline", _DECLINED
    ),
    "pm_card_chargeDeclinedInsufficientFunds": TestToken(
        "card",
        "failed",
        "visa",
        "9995",
        None,
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": TestToken(
        "card", "failed", "visa", "0069", None, "expired_card", "expired_card", "Your card has expired."
    ),
    "pm_card_chargeDeclinedIncorrectCvc": TestToken(
        "card",
        "failed",
        "visa",
        "0127",
        None,
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "pm_card_authenticationRequired": TestToken(
        "card",
        "requires_action",
        "visa",
        "3184",
        None,
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
    "pm_card_chargeDeclinedStolenCard": TestToken(
        "card", "failed", "visa", "9979", None, "card_declined", "stolen_card", _DECLINED, hard=True
    ),
    "pm_card_chargeDeclinedLostCard": TestToken(
        "card", "failed", "visa", "9987", None, "card_declined", "lost_card", _DECLINED, hard=True
    ),
    "pm_card_chargeDeclinedFraudulent": TestToken(
        "card", "failed", "visa", "0019", None, "card_declined", "fraudulent", _DECLINED, hard=True
    ),
    "pm_usBankAccount": TestToken("us_bank_account", "ach_succeeds", None, "6789", "STRIPE TEST BANK"),
    "pm_usBankAccount_failure": TestToken(
        "us_bank_account",
        "ach_fails",
        None,
        "1116",
        "STRIPE TEST BANK",
        "insufficient_funds",
        None,
        "The customer's account has insufficient funds to cover this payment (ACH return R01).",
    ),
    "pm_usBankAccount_accountClosed": TestToken(
        "us_bank_account",
        "ach_fails",
        None,
        "0113",
        "STRIPE TEST BANK",
        "account_closed",
        None,
        "The customer's bank account has been closed (ACH return R02).",
        hard=True,
    ),
    # The request reaches the gateway and the charge succeeds, but the answer is lost.
    "pm_card_timeout": TestToken("card", "timeout", "visa", "0000"),
    # The request never reaches the gateway: nothing is charged, and the caller cannot know it.
    "pm_card_timeoutNotSent": TestToken("card", "timeout_not_sent", "visa", "0001"),
}


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class SandboxGateway:
    """A :class:`~revflow.services.ports.PaymentGateway` with outcomes chosen by test tokens."""

    name = "sandbox"

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, *, webhook_secret: str):
        self._sessions = sessions
        self._clock = clock
        self._secret = webhook_secret.encode()

    # --- customers and payment methods ------------------------------------------------------------

    def ensure_customer(
        self, *, customer_id: str, email: str | None, name: str | None, existing_ref: str | None
    ) -> str:
        with self._sessions() as s:
            if existing_ref is not None:
                if s.get(SandboxCustomer, existing_ref) is None:
                    raise GatewayError(
                        f"No such customer: '{existing_ref}'", code="resource_missing", status=404
                    )
                return existing_ref
            found = s.scalar(
                select(SandboxCustomer).where(SandboxCustomer.revflow_customer_id == customer_id)
            )
            if found is not None:
                return found.id
            ref = new_id("cus_sbx")
            s.add(
                SandboxCustomer(
                    id=ref, revflow_customer_id=customer_id, email=email, name=name, created=self._clock.now()
                )
            )
            try:
                s.commit()
            except IntegrityError:  # made concurrently under the same key: use that one
                s.rollback()
                return s.scalars(
                    select(SandboxCustomer.id).where(SandboxCustomer.revflow_customer_id == customer_id)
                ).one()
            return ref

    def create_setup_session(self, *, customer_ref: str, method_types: Sequence[str]) -> SetupSession:
        seti = new_id("seti_sbx")
        return SetupSession(
            id=seti, client_secret=f"{seti}_secret_{new_id('s')[2:]}", status="requires_payment_method"
        )

    def attach_payment_method(self, *, customer_ref: str, token: str) -> PaymentMethodInfo:
        with self._sessions() as s:
            if s.get(SandboxCustomer, customer_ref) is None:
                raise GatewayError(f"No such customer: '{customer_ref}'", code="resource_missing", status=404)
            spec = TEST_TOKENS.get(token)
            if spec is not None:  # a test token: like Stripe, make a new payment method from it
                pm = SandboxPaymentMethod(
                    id=new_id("pm_sbx"),
                    behaviour=token,
                    customer_ref=customer_ref,
                    type=spec.type,
                    brand=spec.brand,
                    last4=spec.last4,
                    exp_month=12 if spec.type == "card" else None,
                    exp_year=(self._clock.now().year + 3) if spec.type == "card" else None,
                    bank_name=spec.bank_name,
                    created=self._clock.now(),
                )
                s.add(pm)
            else:
                found = s.get(SandboxPaymentMethod, token)
                if found is None:
                    raise GatewayError(
                        f"No such PaymentMethod: '{token}'", code="resource_missing", status=404
                    )
                if found.customer_ref not in (None, customer_ref):
                    raise GatewayError(
                        "The payment method is attached to another customer.",
                        code="payment_method_unexpected_state",
                        status=400,
                    )
                found.customer_ref = customer_ref
                pm = found
            s.commit()
            return _pm_info(pm)

    def get_payment_method(self, token: str) -> PaymentMethodInfo:
        with self._sessions() as s:
            pm = s.get(SandboxPaymentMethod, token)
            if pm is None:
                raise GatewayError(f"No such PaymentMethod: '{token}'", code="resource_missing", status=404)
            return _pm_info(pm)

    def detach_payment_method(self, token: str) -> None:
        with self._sessions() as s:
            pm = s.get(SandboxPaymentMethod, token)
            if pm is None:
                raise GatewayError(f"No such PaymentMethod: '{token}'", code="resource_missing", status=404)
            pm.customer_ref = None
            s.commit()

    # --- charges -------------------------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.amount <= 0:
            raise GatewayError("amount must be positive", code="parameter_invalid_integer", status=400)
        with self._sessions() as s:
            existing = s.scalar(
                select(SandboxCharge).where(SandboxCharge.idempotency_key == request.idempotency_key)
            )
            if existing is not None:  # an idempotent replay: the first answer again, nothing new
                return _result(existing)
            pm = s.get(SandboxPaymentMethod, request.payment_method)
            if pm is None or pm.customer_ref != request.customer_ref:
                raise GatewayError(
                    f"No such PaymentMethod on customer {request.customer_ref}: '{request.payment_method}'",
                    code="resource_missing",
                    status=404,
                )
            spec = TEST_TOKENS[pm.behaviour]
            if spec.outcome == "timeout_not_sent":
                return ChargeResult("unknown", None, request.amount, request.currency.upper())
            created = self._created(request.metadata)
            status: ChargeStatus = "succeeded"
            settles_at = None
            if spec.outcome in ("failed", "requires_action"):
                status = "failed" if spec.outcome == "failed" else "requires_action"
            elif spec.outcome.startswith("ach_"):
                status, settles_at = "processing", created + ACH_SETTLEMENT
            charge = SandboxCharge(
                id=new_id("pi_sbx"),
                idempotency_key=request.idempotency_key,
                customer_ref=request.customer_ref,
                payment_method=pm.id,
                amount=request.amount,
                currency=request.currency.upper(),
                status=status,
                payment_method_type=spec.type,
                failure_code=spec.failure_code if status != "processing" else None,
                decline_code=spec.decline_code if status != "processing" else None,
                failure_message=spec.message if status != "processing" else None,
                hard_decline=spec.hard if status != "processing" else False,
                amount_refunded=0,
                settles_at=settles_at,
                test_clock_id=request.metadata.get("revflow_test_clock_id"),
                metadata_=dict(request.metadata),
                created=created,
            )
            s.add(charge)
            try:
                s.commit()
            except IntegrityError:  # the same key arrived concurrently: answer what the other made
                s.rollback()
                return _result(
                    s.scalars(
                        select(SandboxCharge).where(SandboxCharge.idempotency_key == request.idempotency_key)
                    ).one()
                )
            if spec.outcome == "timeout":
                return ChargeResult("unknown", None, request.amount, request.currency.upper())
            return _result(charge)

    def _created(self, metadata: Mapping[str, str]) -> datetime:
        """A charge of a customer on a test clock is made at the clock's time (as Stripe's test clocks do)."""
        at = metadata.get("revflow_clock_time")
        return _aware(datetime.fromisoformat(at)) if at else self._clock.now()

    def find_charge(
        self, *, idempotency_key: str, customer_ref: str, metadata: Mapping[str, str]
    ) -> ChargeResult | None:
        with self._sessions() as s:
            found = s.scalar(select(SandboxCharge).where(SandboxCharge.idempotency_key == idempotency_key))
            return _result(found) if found is not None else None

    def retrieve_charge(self, gateway_ref: str) -> ChargeResult:
        with self._sessions() as s:
            found = s.get(SandboxCharge, gateway_ref)
            if found is None:
                raise GatewayError(f"No such payment: '{gateway_ref}'", code="resource_missing", status=404)
            return _result(found)

    def refund(
        self, *, gateway_ref: str, amount: int, idempotency_key: str, reason: str | None = None
    ) -> RefundResult:
        with self._sessions() as s:
            done = s.scalar(select(SandboxRefund).where(SandboxRefund.idempotency_key == idempotency_key))
            if done is not None:
                currency = s.get_one(SandboxCharge, done.charge_id).currency
                return RefundResult(done.id, "succeeded", done.amount, currency)
            charge = s.get(SandboxCharge, gateway_ref, with_for_update=True)
            if charge is None:
                raise GatewayError(f"No such payment: '{gateway_ref}'", code="resource_missing", status=404)
            if charge.status != "succeeded":
                raise GatewayError(
                    f"payment {gateway_ref} is {charge.status}; only succeeded payments can be refunded",
                    code="charge_not_refundable",
                    status=400,
                )
            if amount <= 0 or amount > charge.amount - charge.amount_refunded:
                raise GatewayError(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                    f"({charge.amount - charge.amount_refunded})",
                    code="amount_too_large",
                    status=400,
                )
            refund = SandboxRefund(
                id=new_id("re_sbx"),
                idempotency_key=idempotency_key,
                charge_id=charge.id,
                amount=amount,
                status="succeeded",
                created=self._clock.now(),
            )
            charge.amount_refunded += amount
            s.add(refund)
            s.commit()
            return RefundResult(refund.id, "succeeded", amount, charge.currency)

    def list_payments(self, *, since: datetime) -> Iterator[GatewayPayment]:
        last: tuple[datetime, str] | None = None
        while True:  # pages of 100, oldest first, as a gateway's list is paged
            with self._sessions() as s:
                stmt = select(SandboxCharge).where(SandboxCharge.created >= since)
                if last is not None:
                    stmt = stmt.where(
                        (SandboxCharge.created > last[0])
                        | ((SandboxCharge.created == last[0]) & (SandboxCharge.id > last[1]))
                    )
                page = list(s.scalars(stmt.order_by(SandboxCharge.created, SandboxCharge.id).limit(100)))
            for c in page:
                yield GatewayPayment(
                    gateway_ref=c.id,
                    amount=c.amount,
                    amount_refunded=c.amount_refunded,
                    currency=c.currency,
                    status=c.status,  # type: ignore[arg-type]
                    created=_aware(c.created),
                    metadata=dict(c.metadata_),
                )
            if len(page) < 100:
                return
            last = (page[-1].created, page[-1].id)

    # --- settlement and events ----------------------------------------------------------------------

    def settle_due(self, *, now: datetime, test_clock_id: str | None = None) -> int:
        """Settle (or return) the ACH debits due by ``now`` (real-time ones, or those of ``test_clock_id``)
        and queue their events; returns how many settled."""
        with self._sessions() as s:
            stmt = select(SandboxCharge).where(
                SandboxCharge.status == "processing", SandboxCharge.settles_at <= now
            )
            stmt = stmt.where(
                SandboxCharge.test_clock_id.is_(None)
                if test_clock_id is None
                else SandboxCharge.test_clock_id == test_clock_id
            )
            due = list(s.scalars(stmt.with_for_update()))
            for charge in due:
                spec = TEST_TOKENS[s.get_one(SandboxPaymentMethod, charge.payment_method).behaviour]
                if spec.outcome == "ach_succeeds":
                    charge.status = "succeeded"
                else:
                    charge.status = "failed"
                    charge.failure_code, charge.failure_message = spec.failure_code, spec.message
                    charge.hard_decline = spec.hard
                kind = (
                    "payment_intent.succeeded"
                    if charge.status == "succeeded"
                    else "payment_intent.payment_failed"
                )
                s.add(
                    SandboxEvent(
                        id=f"evt_sbx_{charge.id}_{charge.status}",
                        type=kind,
                        charge_id=charge.id,
                        delivered=False,
                        created=charge.settles_at or now,
                    )
                )
            s.commit()
            return len(due)

    def pending_events(self, *, limit: int = 100) -> list[GatewayEvent]:
        """Events not yet acknowledged, oldest first (delivered again until :meth:`ack_event`)."""
        with self._sessions() as s:
            rows = s.scalars(
                select(SandboxEvent)
                .where(SandboxEvent.delivered.is_(False))
                .order_by(SandboxEvent.created)
                .limit(limit)
            ).all()
            return [self._event(s, e) for e in rows]

    def ack_event(self, event_id: str) -> None:
        with self._sessions() as s:
            event = s.get(SandboxEvent, event_id)
            if event is not None:
                event.delivered = True
                s.commit()

    def _event(self, s: Session, e: SandboxEvent) -> GatewayEvent:
        charge = s.get_one(SandboxCharge, e.charge_id)
        return _charge_event(e.id, e.type, _aware(e.created), charge)

    # --- webhooks -----------------------------------------------------------------------------------

    def sign(self, payload: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Headers that make ``payload`` a valid sandbox webhook (for tests and tools)."""
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self._secret, f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"t={t},v1={mac}"}

    def event_payload(self, charge_ref: str, raw_type: str, *, event_id: str | None = None) -> bytes:
        """A webhook body for one of the sandbox's charges, as :meth:`parse_webhook` reads it."""
        with self._sessions() as s:
            charge = s.get_one(SandboxCharge, charge_ref)
            created = int(_aware(charge.created).timestamp())
            obj = _charge_dict(charge)
        return json.dumps(
            {
                "id": event_id or new_id("evt_sbx"),
                "type": raw_type,
                "created": created,
                "data": {"object": obj},
            }
        ).encode()

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            t = int(parts.get("t", ""))
        except ValueError:
            raise WebhookSignatureError("malformed signature header") from None
        expected = hmac.new(self._secret, f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise WebhookSignatureError("signature mismatch")
        if abs(time.time() - t) > TOLERANCE_SECONDS:
            raise WebhookSignatureError("timestamp outside the tolerance")
        body = json.loads(payload)  # ValueError for malformed JSON
        if not isinstance(body, dict) or "id" not in body or "data" not in body:
            raise ValueError("not an event object")
        obj = body["data"]["object"]
        created = datetime.fromtimestamp(int(body["created"]), UTC)
        if obj.get("object") == "payment_intent":
            charge = SandboxCharge(
                id=obj["id"],
                amount=obj["amount"],
                currency=obj["currency"],
                status=obj["status"],
                payment_method_type=obj.get("payment_method_type", "card"),
                failure_code=obj.get("failure_code"),
                decline_code=obj.get("decline_code"),
                failure_message=obj.get("failure_message"),
                hard_decline=bool(obj.get("hard_decline")),
                amount_refunded=obj.get("amount_refunded", 0),
                metadata_=obj.get("metadata") or {},
            )
            return _charge_event(body["id"], body["type"], created, charge)
        if obj.get("object") == "payment_method" and body["type"] in _PM_TYPES:
            card = obj.get("card") or {}
            bank = obj.get("us_bank_account") or {}
            info = PaymentMethodInfo(
                token=str(obj["id"]),
                type="us_bank_account" if obj.get("type") == "us_bank_account" else "card",
                customer_ref=obj.get("customer"),
                brand=card.get("brand"),
                last4=card.get("last4") or bank.get("last4"),
                exp_month=card.get("exp_month"),
                exp_year=card.get("exp_year"),
                bank_name=bank.get("bank_name"),
            )
            return GatewayEvent(
                id=body["id"],
                type=_PM_TYPES[body["type"]],
                raw_type=body["type"],
                created=created,
                object_ref=info.token,
                payment_method=info,
                data=obj,
            )
        if obj.get("object") == "dispute" and body["type"] in _DISPUTE_TYPES:
            return GatewayEvent(
                id=body["id"],
                type=_DISPUTE_TYPES[body["type"]],
                dispute_status=obj.get("status"),
                raw_type=body["type"],
                created=created,
                object_ref=str(obj["id"]),
                payment_ref=obj.get("payment_intent"),
                dispute_reason=obj.get("reason"),
                dispute_amount=obj.get("amount"),
                data=obj,
            )
        if obj.get("object") == "refund" and body["type"] == "charge.refund.updated":
            return GatewayEvent(
                id=body["id"],
                type="refund.updated",
                raw_type=body["type"],
                created=created,
                object_ref=str(obj["id"]),
                payment_ref=obj.get("payment_intent"),
                refund=RefundResult(obj["id"], obj["status"], obj["amount"], obj["currency"]),
                data=obj,
            )
        if obj.get("object") == "refund" and body["type"] == "charge.refunded":
            return GatewayEvent(
                id=body["id"],
                type="charge.refunded",
                raw_type=body["type"],
                created=created,
                object_ref=str(obj["id"]),
                payment_ref=obj.get("payment_intent"),
                refund=RefundResult(
                    obj["id"], obj.get("status", "succeeded"), obj["amount"], obj["currency"]
                ),
                amount_refunded=obj.get("amount_refunded"),
                data=obj,
            )
        return GatewayEvent(
            id=body["id"],
            type="other",
            raw_type=body["type"],
            created=created,
            object_ref=str(obj.get("id", "")),
            data=obj,
        )


_PM_TYPES: dict[str, GatewayEventType] = {
    "payment_method.attached": "payment_method.attached",
    "payment_method.detached": "payment_method.detached",
    "payment_method.updated": "payment_method.updated",
}
_TYPES: dict[str, GatewayEventType] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.processing": "payment.processing",
    "payment_intent.canceled": "payment.failed",  # canceled at the gateway: this attempt has failed
}


_DISPUTE_TYPES: dict[str, GatewayEventType] = {
    "charge.dispute.created": "dispute.created",
    "charge.dispute.updated": "dispute.updated",
    "charge.dispute.closed": "dispute.closed",
}


def _charge_event(event_id: str, raw_type: str, created: datetime, charge: SandboxCharge) -> GatewayEvent:
    return GatewayEvent(
        id=event_id,
        type=_TYPES.get(raw_type, "other"),
        raw_type=raw_type,
        created=created,
        object_ref=charge.id,
        charge=_result(charge),
        metadata=dict(charge.metadata_),
        data=_charge_dict(charge),
    )


def _charge_dict(c: SandboxCharge) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "payment_intent",
        "amount": c.amount,
        "amount_refunded": c.amount_refunded,
        "currency": c.currency,
        "status": c.status,
        "payment_method_type": c.payment_method_type,
        "failure_code": c.failure_code,
        "decline_code": c.decline_code,
        "failure_message": c.failure_message,
        "hard_decline": c.hard_decline,
        "metadata": dict(c.metadata_),
    }


def _result(c: SandboxCharge) -> ChargeResult:
    if c.status == "canceled":  # an intent canceled at the gateway (as Stripe's): a failed attempt
        return ChargeResult(
            status="failed",
            gateway_ref=c.id,
            amount=c.amount,
            currency=c.currency,
            failure_code="canceled",
            failure_message=c.failure_message or "The payment was canceled at the gateway.",
            payment_method_type=c.payment_method_type,
        )
    return ChargeResult(
        status=c.status,  # type: ignore[arg-type]
        gateway_ref=c.id,
        amount=c.amount,
        currency=c.currency,
        failure_code=c.failure_code,
        decline_code=c.decline_code,
        failure_message=c.failure_message,
        hard_decline=c.hard_decline,
        payment_method_type=c.payment_method_type,
    )


def _pm_info(pm: SandboxPaymentMethod) -> PaymentMethodInfo:
    return PaymentMethodInfo(
        token=pm.id,
        type=pm.type,  # type: ignore[arg-type]
        customer_ref=pm.customer_ref,
        brand=pm.brand,
        last4=pm.last4,
        exp_month=pm.exp_month,
        exp_year=pm.exp_year,
        bank_name=pm.bank_name,
    )

"""Stripe's test payment-method tokens and how each behaves, as https://docs.stripe.com/testing documents them.

``attach_error``: attaching the token to a customer (or confirming a SetupIntent with it) fails that way;
``charge_error``: an off-session charge fails that way. Errors are ``(code, decline_code, message)``.
"""

# ruff: noqa: E501  (Stripe's own messages are quoted verbatim)

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["TEST_TOKENS", "TestToken"]

DeclineSpec = tuple[str, str | None, str]


@dataclass(frozen=True, slots=True)
class TestToken:
    token: str
    type: Literal["card", "us_bank_account"]
    brand: str | None = None
    last4: str = "4242"
    funding: str = "credit"
    country: str = "US"
    exp_month: int = 12
    exp_year: int = 2034
    fingerprint: str = ""
    bank_name: str | None = None
    routing_number: str | None = None
    attach_error: DeclineSpec | None = None
    charge_error: DeclineSpec | None = None
    requires_authentication: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    __test__ = False  # not a pytest test class


_DECLINED = ("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT = ("card_declined", "insufficient_funds", "Your card has insufficient funds.")
_EXPIRED = ("expired_card", "expired_card", "Your card has expired.")
_STOLEN = ("card_declined", "stolen_card", "Your card was declined.")
_AUTH = (
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


def _card(token: str, brand: str, last4: str, fp: str, **kw: object) -> TestToken:
    return TestToken(token=token, type="card", brand=brand, last4=last4, fingerprint=fp, **kw)  # type: ignore[arg-type]


TEST_TOKENS: dict[str, TestToken] = {
    t.token: t
    for t in (
        _card("pm_card_visa", "visa", "4242", "Xt5EWLLDS7FJjR1c"),
        _card("pm_card_mastercard", "mastercard", "4444", "Mw1Sg1kJ6Ra7R7hT"),
        _card("pm_card_amex", "amex", "8431", "Fp0gkHh2q1zYQm3a"),
        # 4000000000000341: attaching succeeds, every charge is declined.
        _card("pm_card_chargeCustomerFail", "visa", "0341", "Qc1B2k0vT7mA9xYd", charge_error=_DECLINED),
        # The following decline at attachment too: attaching runs a card check the issuer refuses.
        _card(
            "pm_card_chargeDeclined",
            "visa",
            "0002",
            "Dk2Pz8W6Jq1nLs0e",
            attach_error=_DECLINED,
            charge_error=_DECLINED,
        ),
        _card(
            "pm_card_chargeDeclinedInsufficientFunds",
            "visa",
            "9995",
            "Nf4Rs7U2Lb6cVw1p",
            attach_error=_INSUFFICIENT,
            charge_error=_INSUFFICIENT,
        ),
        _card(
            "pm_card_chargeDeclinedExpiredCard",
            "visa",
            "0069",
            "Ez9Qa3Hc5Wt2Km8r",
            attach_error=_EXPIRED,
            charge_error=_EXPIRED,
        ),
        _card(
            "pm_card_chargeDeclinedStolenCard",
            "visa",
            "9979",
            "Sx6Yd1Gf4Jn7Bq2u",
            attach_error=_STOLEN,
            charge_error=_STOLEN,
        ),
        # 4000002760003184: always asks for 3-D Secure; off-session charges fail with authentication_required.
        _card(
            "pm_card_authenticationRequired",
            "visa",
            "3184",
            "Au3Th7Rq9Lp2Zx5c",
            requires_authentication=True,
            charge_error=_AUTH,
        ),
        TestToken(
            token="pm_usBankAccount",
            type="us_bank_account",
            last4="6789",
            fingerprint="Ub8Kc2Mn5Vx1Qa7s",
            bank_name="STRIPE TEST BANK",
            routing_number="110000000",
        ),
    )
}

"""Currencies, money amounts and the one rounding function.

Money is an integer count of a currency's minor unit (cents for USD, yen for JPY, fils for KWD) plus
the currency. Unit prices and quantities are ``Decimal`` and become money only through
:func:`round_to_minor`, which rounds half-up (away from zero on ties, as invoices are expected to) —
see ``docs/adr/0002-money-and-rounding.md``.

>>> usd = Currency.of("usd")
>>> usd.code, usd.exponent
('USD', 2)
>>> Currency.of("JPY").exponent, Currency.of("KWD").exponent
(0, 3)
>>> Money(1050, usd) + Money(25, usd)
Money(1075, 'USD')
>>> sum([Money(1, usd), Money(2, usd)], Money.zero(usd))
Money(3, 'USD')
>>> Money(1, usd) + Money(1, Currency.of("EUR"))
Traceback (most recent call last):
...
revflow.domain.money.CurrencyMismatch: cannot combine USD and EUR
>>> round_to_minor(Decimal("0.0004") * 12345, usd)  # 4.938 USD
494
>>> round_to_minor(Decimal("-0.005"), usd)
-1
>>> Money(123456, usd).decimal
Decimal('1234.56')
>>> Money.from_decimal(Decimal("12.345"), Currency.of("KWD"))
Money(12345, 'KWD')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from revflow.domain._iso4217 import CURRENCIES
from revflow.domain.errors import InvalidInput

__all__ = [
    "MAX_AMOUNT",
    "ROUNDING",
    "Currency",
    "CurrencyMismatch",
    "Money",
    "UnknownCurrency",
    "round_to_minor",
]

#: Largest absolute amount, in minor units, the API accepts (10^15).
MAX_AMOUNT: Final = 10**15

#: The rounding mode used everywhere money is rounded: half away from zero.
ROUNDING: Final = ROUND_HALF_UP


class UnknownCurrency(InvalidInput):
    """The code is not an ISO 4217 currency with a minor unit."""

    code = "unknown_currency"


class CurrencyMismatch(InvalidInput):
    """Two amounts in different currencies were combined."""

    code = "currency_mismatch"


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: its upper-case code and minor-unit exponent."""

    code: str
    exponent: int
    name: str

    @classmethod
    def of(cls, code: str) -> Currency:
        """Return the currency for ``code`` (case-insensitive); raises :class:`UnknownCurrency`."""
        upper = code.upper()
        try:
            exponent, name = CURRENCIES[upper]
        except KeyError:
            raise UnknownCurrency(f"'{code}' is not an ISO 4217 currency") from None
        return cls(upper, exponent, name)

    @staticmethod
    def is_known(code: str) -> bool:
        """Whether ``code`` is an ISO 4217 currency with a minor unit."""
        return code.upper() in CURRENCIES

    def __str__(self) -> str:
        return self.code


def round_to_minor(value: Decimal, currency: Currency) -> int:
    """Round a decimal amount in major units (e.g. dollars) to an integer of minor units (cents).

    The single rounding point of Revflow; mode :data:`ROUNDING` (half up, away from zero).
    """
    scaled = value.scaleb(currency.exponent)
    return int(scaled.quantize(Decimal(1), rounding=ROUNDING))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency``. Combining two currencies raises CurrencyMismatch."""

    minor: int
    currency: Currency

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        """Zero in ``currency``."""
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal, currency: Currency) -> Money:
        """Money from a major-unit decimal, rounded with :func:`round_to_minor`."""
        return cls(round_to_minor(value, currency), currency)

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, exact (``Decimal('12.34')``)."""
        return Decimal(self.minor).scaleb(-self.currency.exponent)

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money and {type(other).__name__}")
        if other.currency.code != self.currency.code:
            raise CurrencyMismatch(f"cannot combine {self.currency.code} and {other.currency.code}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor + other.minor, self.currency)

    def __radd__(self, other: object) -> Money:
        if other == 0:  # lets the builtin sum() start from 0
            return self
        if isinstance(other, Money):
            return other + self
        return NotImplemented

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.minor <= other.minor

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int):
            raise TypeError("multiply Money by an int; use round_to_minor for Decimal factors")
        return Money(self.minor * factor, self.currency)

    def __repr__(self) -> str:
        return f"Money({self.minor}, {self.currency.code!r})"

from __future__ import annotations

from decimal import Decimal

import pytest

from revflow.domain.money import Currency, CurrencyMismatch, Money, UnknownCurrency, round_to_minor


class TestCurrency:
    def test_knows_iso_exponents(self) -> None:
        assert [Currency.of(c).exponent for c in ("USD", "JPY", "KWD", "CLF", "EUR")] == [2, 0, 3, 4, 2]

    def test_refuses_unknown_codes(self) -> None:
        with pytest.raises(UnknownCurrency) as err:
            Currency.of("XYZ")

        assert err.value.code == "unknown_currency"
        assert err.value.status == 422


class TestRounding:
    @pytest.mark.parametrize(
        ("value", "code", "expected"),
        [
            ("0.005", "USD", 1),
            ("0.0049", "USD", 0),
            ("-0.005", "USD", -1),
            ("2.5", "JPY", 3),
            ("1.0005", "KWD", 1001),
            ("4.938", "USD", 494),
        ],
    )
    def test_rounds_half_away_from_zero_once(self, value: str, code: str, expected: int) -> None:
        assert round_to_minor(Decimal(value), Currency.of(code)) == expected

    def test_sub_cent_unit_prices_stay_exact_until_the_line_total(self) -> None:
        per_call = Decimal("0.0004")

        total = round_to_minor(per_call * 1_234_567, Currency.of("USD"))

        assert total == 49383  # 493.8268 USD


class TestMoney:
    def test_adds_and_sums_in_one_currency(self) -> None:
        usd = Currency.of("USD")

        assert sum([Money(1, usd), Money(2, usd), Money(3, usd)]) == Money(6, usd)
        assert Money(10, usd) - Money(3, usd) == Money(7, usd)

    def test_mixing_currencies_raises(self) -> None:
        with pytest.raises(CurrencyMismatch):
            Money(1, Currency.of("USD")) + Money(1, Currency.of("EUR"))

    def test_refuses_decimal_multiplication(self) -> None:
        with pytest.raises(TypeError):
            Money(1, Currency.of("USD")) * Decimal("1.5")  # type: ignore[operator]

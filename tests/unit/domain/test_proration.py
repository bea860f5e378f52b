from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revflow.domain.money import Currency
from revflow.domain.period import Period
from revflow.domain.proration import ProrationLine, change_prorations, fraction_remaining, prorate

USD = Currency.of("USD")
JUNE = Period(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))  # 30 days, 2,592,000 s
LA_MARCH = Period(datetime(2024, 3, 1, 8, tzinfo=UTC), datetime(2024, 4, 1, 7, tzinfo=UTC))  # 743 hours


class TestFractionRemaining:
    def test_counts_whole_days_when_changes_happen_at_midnight(self) -> None:
        july = Period(datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 8, 1, tzinfo=UTC))

        fraction = fraction_remaining(period=july, at=datetime(2024, 7, 11, tzinfo=UTC))

        assert fraction == Fraction(21, 31)

    def test_counts_by_the_second(self) -> None:
        at = JUNE.start + timedelta(days=15, seconds=1)

        fraction = fraction_remaining(period=JUNE, at=at)

        assert fraction == Fraction(1_295_999, 2_592_000)

    def test_drops_fractions_of_a_second(self) -> None:
        at = JUNE.start + timedelta(days=15, microseconds=999_999)

        fraction = fraction_remaining(period=JUNE, at=at)

        assert fraction == Fraction(1, 2)

    def test_measures_real_time_across_dst(self) -> None:
        mid_march_local_midnight = datetime(2024, 3, 16, 7, tzinfo=UTC)

        fraction = fraction_remaining(period=LA_MARCH, at=mid_march_local_midnight)

        assert fraction == Fraction(384, 743)  # 16 days of 24 h over 31 days less the lost hour

    def test_is_clamped_to_the_period(self) -> None:
        before = fraction_remaining(period=JUNE, at=JUNE.start - timedelta(days=3))
        at_end = fraction_remaining(period=JUNE, at=JUNE.end)
        after = fraction_remaining(period=JUNE, at=JUNE.end + timedelta(days=3))

        assert (before, at_end, after) == (Fraction(1), Fraction(0), Fraction(0))

    def test_accepts_instants_in_any_zone(self) -> None:
        at = datetime(2024, 6, 15, 17, tzinfo=ZoneInfo("America/Los_Angeles"))  # 2024-06-16 00:00 UTC

        fraction = fraction_remaining(period=JUNE, at=at)

        assert fraction == Fraction(1, 2)

    def test_refuses_a_naive_instant(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            fraction_remaining(period=JUNE, at=datetime(2024, 6, 16))


class TestProrate:
    @pytest.mark.parametrize(
        ("amount", "fraction", "code", "expected"),
        [
            (10000, Fraction(1, 3), "USD", 3333),
            (20000, Fraction(1, 3), "USD", 6667),
            (1, Fraction(1, 2), "USD", 1),
            (-1, Fraction(1, 2), "USD", -1),
            (1000, Fraction(1, 3), "JPY", 333),
            (1001, Fraction(1, 2), "KWD", 501),
            (10000, Fraction(0), "USD", 0),
            (10000, Fraction(1), "USD", 10000),
        ],
    )
    def test_rounds_once_half_up(self, amount: int, fraction: Fraction, code: str, expected: int) -> None:
        assert prorate(amount=amount, fraction=fraction, currency=Currency.of(code)) == expected

    def test_stays_exact_for_large_amounts(self) -> None:
        amount = 10**15 - 1

        prorated = prorate(amount=amount, fraction=Fraction(1, 2), currency=USD)

        assert prorated == 500_000_000_000_000  # 499,999,999,999,999.5 rounds up

    def test_refuses_decimal_amounts(self) -> None:
        with pytest.raises(TypeError):
            prorate(amount="100", fraction=Fraction(1, 2), currency=USD)  # type: ignore[arg-type]


class TestChangeProrations:
    def test_credits_and_charges_the_second_half_of_a_month(self) -> None:
        day_16 = JUNE.start + timedelta(days=15)

        credit, charge = change_prorations(
            old_amount=10000, new_amount=20000, period=JUNE, at=day_16, currency=USD
        )

        assert credit == ProrationLine(
            description="Unused time on the previous price from 2024-06-16 00:00:00 UTC",
            amount=-5000,
            period=Period(day_16, JUNE.end),
        )
        assert charge == ProrationLine(
            description="Remaining time on the new price from 2024-06-16 00:00:00 UTC",
            amount=10000,
            period=Period(day_16, JUNE.end),
        )

    def test_prorates_a_mid_day_change_by_the_second(self) -> None:
        at = JUNE.start + timedelta(days=9, hours=12)

        credit, charge = change_prorations(
            old_amount=10000, new_amount=20000, period=JUNE, at=at, currency=USD
        )

        assert (credit.amount, charge.amount) == (-6833, 13667)  # 20.5 of 30 days: 6833.33, 13666.67

    def test_a_cent_per_second_price_shows_every_second(self) -> None:
        at = JUNE.start + timedelta(days=15, seconds=1)

        credit, charge = change_prorations(
            old_amount=2_592_000, new_amount=5_184_000, period=JUNE, at=at, currency=USD
        )

        assert (credit.amount, charge.amount) == (-1_295_999, 2_591_998)

    def test_a_change_at_the_start_credits_and_charges_in_full(self) -> None:
        credit, charge = change_prorations(
            old_amount=10000, new_amount=20000, period=JUNE, at=JUNE.start, currency=USD
        )

        assert (credit.amount, charge.amount) == (-10000, 20000)
        assert credit.period == JUNE

    def test_a_change_in_the_last_second_costs_nothing(self) -> None:
        at = JUNE.end - timedelta(seconds=1)

        credit, charge = change_prorations(
            old_amount=10000, new_amount=20000, period=JUNE, at=at, currency=USD
        )

        assert (credit.amount, charge.amount) == (0, 0)

    def test_a_change_at_the_end_belongs_to_the_next_period(self) -> None:
        fraction = fraction_remaining(period=JUNE, at=JUNE.end)

        with pytest.raises(ValueError, match="outside the period"):
            change_prorations(old_amount=10000, new_amount=20000, period=JUNE, at=JUNE.end, currency=USD)

        assert prorate(amount=10000, fraction=fraction, currency=USD) == 0

    def test_prorates_over_the_real_length_of_a_dst_month(self) -> None:
        at = datetime(2024, 3, 16, 7, tzinfo=UTC)  # local midnight in Los Angeles

        credit, charge = change_prorations(
            old_amount=10000, new_amount=20000, period=LA_MARCH, at=at, currency=USD
        )

        assert (credit.amount, charge.amount) == (-5168, 10336)  # 384/743 of each

    def test_a_change_and_its_reversal_net_to_zero(self) -> None:
        at = JUNE.start + timedelta(days=9, hours=12, seconds=7)

        upgrade = change_prorations(old_amount=10000, new_amount=20000, period=JUNE, at=at, currency=USD)
        downgrade = change_prorations(old_amount=20000, new_amount=10000, period=JUNE, at=at, currency=USD)

        assert [line.amount for line in (*upgrade, *downgrade)] == [-6833, 13667, -13667, 6833]
        assert sum(line.amount for line in (*upgrade, *downgrade)) == 0

    @given(
        amount=st.integers(min_value=0, max_value=10**12),
        offset=st.integers(min_value=0, max_value=2_592_000 - 1),
        code=st.sampled_from(["USD", "JPY", "KWD"]),
    )
    def test_credit_and_charge_of_the_same_price_cancel(self, amount: int, offset: int, code: str) -> None:
        at = JUNE.start + timedelta(seconds=offset)

        credit, charge = change_prorations(
            old_amount=amount, new_amount=amount, period=JUNE, at=at, currency=Currency.of(code)
        )

        assert credit.amount + charge.amount == 0
        assert 0 <= charge.amount <= amount

"""Percentage-of-amount pricing (transaction fees): per-event clamp, and the SQL-friendly aggregate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revflow.domain.money import Currency
from revflow.domain.pricing import (
    InvalidPricing,
    PriceTerms,
    PricingModel,
    amount,
    percentage_fee,
    percentage_split,
    percentage_total,
)

CARD = PriceTerms(
    model=PricingModel.PERCENTAGE,
    unit_amount=Decimal("2.9"),
    flat_amount=Decimal(30),
    event_min=Decimal(50),
    event_max=Decimal(500),
)


def _sorted_total(terms: PriceTerms, values_micro: list[int]) -> Decimal:
    """What the SQL aggregate computes: events sorted by the split bounds, then percentage_total."""
    split = percentage_split(terms=terms, scale=6)
    low = [v for v in values_micro if split.low is not None and v <= split.low]
    high = [v for v in values_micro if v not in low and split.high is not None and v >= split.high]
    middle = [v for v in values_micro if v not in low and v not in high]
    return percentage_total(
        terms=terms,
        events=len(values_micro),
        low_events=len(low),
        high_events=len(high),
        middle_sum=Decimal(sum(middle)).scaleb(-6),
    )


class TestPercentageFee:
    def test_a_small_payment_pays_the_minimum(self) -> None:
        assert percentage_fee(terms=CARD, value=Decimal(100)) == Decimal(50)

    def test_a_middle_payment_pays_the_percentage_and_the_flat_fee(self) -> None:
        assert percentage_fee(terms=CARD, value=Decimal(10000)) == Decimal(320)

    def test_a_large_payment_pays_the_maximum(self) -> None:
        assert percentage_fee(terms=CARD, value=Decimal(1_000_000)) == Decimal(500)

    def test_without_bounds_the_fee_is_the_percentage(self) -> None:
        terms = PriceTerms(model=PricingModel.PERCENTAGE, unit_amount=Decimal("1.5"))

        assert percentage_fee(terms=terms, value=Decimal("333.33")) == Decimal("4.99995")

    def test_a_minimum_above_the_maximum_is_refused(self) -> None:
        with pytest.raises(InvalidPricing):
            PriceTerms(
                model=PricingModel.PERCENTAGE,
                unit_amount=Decimal(1),
                event_min=Decimal(9),
                event_max=Decimal(5),
            )

    def test_other_models_refuse_event_bounds(self) -> None:
        with pytest.raises(InvalidPricing):
            PriceTerms(model=PricingModel.PER_UNIT, unit_amount=Decimal(1), event_min=Decimal(1))

    def test_amount_of_one_event_rounds_once(self) -> None:
        assert amount(terms=CARD, quantity=Decimal(10001), currency=Currency.of("USD")) == 320


class TestPercentageTotal:
    def test_mixes_minimum_percentage_and_maximum(self) -> None:
        values = [100, 10000, 1_000_000, 2500]

        total = _sorted_total(CARD, [v * 10**6 for v in values])

        assert total == sum((percentage_fee(terms=CARD, value=Decimal(v)) for v in values), Decimal(0))

    def test_events_exactly_at_the_bounds_pay_the_same_either_way(self) -> None:
        at_min = (Decimal(50) - 30) / Decimal("0.029")  # fee exactly 50
        values = [int((at_min * 10**6).to_integral_value()), 15517241379]

        total = _sorted_total(CARD, values)

        assert total == sum(
            (percentage_fee(terms=CARD, value=Decimal(v).scaleb(-6)) for v in values), Decimal(0)
        )

    @given(
        st.lists(st.integers(min_value=-(10**12), max_value=10**13), max_size=40),
        st.decimals(min_value=0, max_value=10, places=3),
        st.integers(min_value=0, max_value=100),
        st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
        st.one_of(st.none(), st.integers(min_value=200, max_value=5000)),
    )
    def test_the_aggregate_equals_the_sum_of_per_event_fees(
        self, values: list[int], rate: Decimal, flat: int, low: int | None, high: int | None
    ) -> None:
        terms = PriceTerms(
            model=PricingModel.PERCENTAGE,
            unit_amount=rate,
            flat_amount=Decimal(flat),
            event_min=None if low is None else Decimal(low),
            event_max=None if high is None else Decimal(high),
        )

        expected = sum((percentage_fee(terms=terms, value=Decimal(v).scaleb(-6)) for v in values), Decimal(0))

        assert _sorted_total(terms, values) == expected

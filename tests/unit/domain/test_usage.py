"""Usage metering rules: fixed-point values, filters, hour windows, weighted sums and projections."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from revflow.domain.usage import (
    Aggregation,
    InvalidValue,
    ceil_hour,
    floor_hour,
    from_micros,
    matches_filters,
    project_units,
    to_micros,
    weighted_units,
)


class TestFixedPointValues:
    @pytest.mark.parametrize(
        ("given", "micros"),
        [(7, 7_000_000), ("0.000001", 1), ("-2.5", -2_500_000), (Decimal("1e3"), 1_000_000_000)],
    )
    def test_exact_values_are_scaled_by_a_million(self, given: object, micros: int) -> None:
        assert to_micros(given) == micros
        assert from_micros(micros) == Decimal(str(given))

    @pytest.mark.parametrize("given", [True, 1.5, None, "NaN", "Infinity", "1.0000001", "1e20", [1]])
    def test_anything_else_is_refused(self, given: object) -> None:
        with pytest.raises(InvalidValue):
            to_micros(given)


class TestFilters:
    def test_every_filtered_property_must_hold_one_of_its_values(self) -> None:
        filters = {"region": ["eu", "uk"], "tier": ["paid"]}

        assert matches_filters(filters, {"region": "uk", "tier": "paid"})
        assert not matches_filters(filters, {"region": "uk"})
        assert not matches_filters(filters, {"region": "us", "tier": "paid"})

    def test_values_compare_as_text(self) -> None:
        assert matches_filters({"plan": ["3"]}, {"plan": 3})


class TestHours:
    def test_floor_and_ceil_in_utc(self) -> None:
        at = datetime(2024, 6, 3, 14, 23, 17, tzinfo=UTC)

        assert floor_hour(at) == datetime(2024, 6, 3, 14, tzinfo=UTC)
        assert ceil_hour(at) == datetime(2024, 6, 3, 15, tzinfo=UTC)
        assert ceil_hour(floor_hour(at)) == floor_hour(at)


class TestWeightedSum:
    def test_a_level_held_all_period_counts_whole(self) -> None:
        units = weighted_units(level_at_start=10_000_000, sum_value=0, sum_value_offset=0, seconds=720 * 3600)

        assert units == Decimal(7200)  # 10 GB × 720 hours

    def test_a_change_counts_from_its_time_to_the_end(self) -> None:
        # +4 GB after 30 minutes of a 2-hour window: 4 × 1.5 hours
        units = weighted_units(
            level_at_start=0, sum_value=4_000_000, sum_value_offset=4_000_000 * 1800, seconds=7200
        )

        assert units == Decimal(6)

    def test_value_hours_round_half_up_to_six_places(self) -> None:
        units = weighted_units(level_at_start=0, sum_value=1, sum_value_offset=0, seconds=1)

        assert units == Decimal("0")  # 1e-6 value-seconds = 2.8e-10 value-hours


class TestProjection:
    def test_counts_that_reset_grow_linearly(self) -> None:
        units = project_units(
            aggregation=Aggregation.COUNT, recurring=False, units=Decimal(6), elapsed=10, total=30
        )

        assert units == Decimal(18)

    @pytest.mark.parametrize("aggregation", [Aggregation.MAX, Aggregation.LATEST, Aggregation.UNIQUE_COUNT])
    def test_other_aggregations_keep_their_current_value(self, aggregation: Aggregation) -> None:
        assert (
            project_units(aggregation=aggregation, recurring=False, units=Decimal(6), elapsed=10, total=30)
            == 6
        )

    def test_carried_over_sums_keep_their_current_value(self) -> None:
        assert (
            project_units(aggregation=Aggregation.SUM, recurring=True, units=Decimal(6), elapsed=10, total=30)
            == 6
        )

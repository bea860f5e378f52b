from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revflow.domain.cycles import Interval, day_of_month_anchor, first_period, period_at, shift
from revflow.domain.period import Period

LA = "America/Los_Angeles"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def boundaries(anchor: datetime, interval: Interval, count: int, tz: str, ns: range) -> list[str]:
    return [shift(anchor=anchor, interval=interval, count=count, n=n, tz=tz).isoformat() for n in ns]


zones = st.sampled_from(
    [
        "UTC",
        LA,
        "Europe/London",
        "America/Sao_Paulo",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Auckland",
    ]
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


class TestMonthlyAnniversary:
    def test_clamps_to_month_end_from_the_original_anchor(self) -> None:
        anchor = utc(2024, 1, 31)

        dates = boundaries(anchor, Interval.MONTH, 1, "UTC", range(5))

        assert dates == [
            "2024-01-31T00:00:00+00:00",
            "2024-02-29T00:00:00+00:00",
            "2024-03-31T00:00:00+00:00",
            "2024-04-30T00:00:00+00:00",
            "2024-05-31T00:00:00+00:00",
        ]

    def test_keeps_the_time_of_day(self) -> None:
        anchor = utc(2024, 1, 31, 13, 45, 10)

        renewal = shift(anchor=anchor, interval=Interval.MONTH, count=1, n=1, tz="UTC")

        assert renewal == utc(2024, 2, 29, 13, 45, 10)

    def test_every_two_months(self) -> None:
        anchor = utc(2024, 1, 31)

        dates = boundaries(anchor, Interval.MONTH, 2, "UTC", range(1, 7))

        assert [d[:10] for d in dates] == [
            "2024-03-31",
            "2024-05-31",
            "2024-07-31",
            "2024-09-30",
            "2024-11-30",
            "2025-01-31",
        ]

    def test_accepts_the_interval_as_its_stored_string(self) -> None:
        renewal = shift(anchor=utc(2024, 1, 31), interval="month", count=1, n=1, tz="UTC")

        assert renewal == utc(2024, 2, 29)


class TestCustomerTimeZone:
    def test_renews_at_local_midnight_after_spring_forward(self) -> None:
        anchor = local(LA, 2024, 3, 1)

        dates = boundaries(anchor, Interval.MONTH, 1, LA, range(2))

        assert dates == ["2024-03-01T08:00:00+00:00", "2024-04-01T07:00:00+00:00"]

    def test_renews_at_local_midnight_after_fall_back(self) -> None:
        anchor = local(LA, 2024, 11, 1)

        dates = boundaries(anchor, Interval.MONTH, 1, LA, range(2))

        assert dates == ["2024-11-01T07:00:00+00:00", "2024-12-01T08:00:00+00:00"]

    def test_a_period_with_a_dst_change_has_its_real_length(self) -> None:
        march = period_at(
            anchor=local(LA, 2024, 1, 1), interval=Interval.MONTH, count=1, tz=LA, at=utc(2024, 3, 15)
        )
        november = period_at(
            anchor=local(LA, 2024, 1, 1), interval=Interval.MONTH, count=1, tz=LA, at=utc(2024, 11, 15)
        )

        assert march.duration == timedelta(days=31, hours=-1)
        assert november.duration == timedelta(days=30, hours=1)

    def test_weekly_renewal_keeps_local_midnight(self) -> None:
        anchor = local(LA, 2024, 3, 4)  # a Monday

        dates = boundaries(anchor, Interval.WEEK, 1, LA, range(3))

        assert dates == [
            "2024-03-04T08:00:00+00:00",
            "2024-03-11T07:00:00+00:00",
            "2024-03-18T07:00:00+00:00",
        ]

    def test_a_skipped_local_time_moves_to_the_end_of_the_jump(self) -> None:
        anchor = local(LA, 2024, 3, 9, 2, 30)

        dates = boundaries(anchor, Interval.DAY, 1, LA, range(3))

        assert dates == [
            "2024-03-09T10:30:00+00:00",
            "2024-03-10T10:00:00+00:00",
            "2024-03-11T09:30:00+00:00",
        ]

    def test_a_skipped_midnight_moves_to_the_first_valid_instant(self) -> None:
        anchor = local("America/Sao_Paulo", 2018, 10, 4)  # clocks skipped 00:00-01:00 on 2018-11-04

        renewal = shift(anchor=anchor, interval=Interval.MONTH, count=1, n=1, tz="America/Sao_Paulo")

        assert renewal.isoformat() == "2018-11-04T03:00:00+00:00"  # 01:00 local, UTC-2

    def test_a_repeated_local_time_takes_its_first_occurrence(self) -> None:
        anchor = local(LA, 2024, 11, 2, 1, 30)

        renewal = shift(anchor=anchor, interval=Interval.DAY, count=1, n=1, tz=LA)

        assert renewal.isoformat() == "2024-11-03T08:30:00+00:00"  # 01:30 PDT, not 01:30 PST

    def test_an_anchor_in_the_second_occurrence_stays_itself(self) -> None:
        anchor = utc(2024, 11, 3, 9, 30)  # 01:30 PST, the second 01:30 of the day

        dates = boundaries(anchor, Interval.DAY, 1, LA, range(2))

        assert dates == ["2024-11-03T09:30:00+00:00", "2024-11-04T09:30:00+00:00"]


class TestYearlyAndQuarterly:
    def test_a_leap_day_anchor_returns_to_feb_29_in_leap_years(self) -> None:
        anchor = utc(2024, 2, 29)

        dates = boundaries(anchor, Interval.YEAR, 1, "UTC", range(1, 5))

        assert [d[:10] for d in dates] == ["2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]

    def test_quarters_count_from_the_original_day(self) -> None:
        anchor = utc(2024, 11, 30)

        dates = boundaries(anchor, Interval.QUARTER, 1, "UTC", range(1, 5))

        assert [d[:10] for d in dates] == ["2025-02-28", "2025-05-30", "2025-08-30", "2025-11-30"]


class TestShiftArguments:
    @pytest.mark.parametrize(
        ("anchor", "count", "n", "tz"),
        [
            (datetime(2024, 1, 1), 1, 1, "UTC"),
            (utc(2024, 1, 1), 0, 1, "UTC"),
            (utc(2024, 1, 1), 1, -1, "UTC"),
            (utc(2024, 1, 1), 1, 1, "Mars/Olympus_Mons"),
        ],
        ids=["naive-anchor", "count-0", "negative-n", "unknown-zone"],
    )
    def test_refuses_bad_arguments(self, anchor: datetime, count: int, n: int, tz: str) -> None:
        with pytest.raises(ValueError):
            shift(anchor=anchor, interval=Interval.MONTH, count=count, n=n, tz=tz)

    def test_refuses_an_anchor_off_its_billing_day(self) -> None:
        with pytest.raises(ValueError, match="billing day 31"):
            shift(anchor=utc(2024, 2, 10), interval=Interval.MONTH, count=1, n=1, tz="UTC", day_of_month=31)

    def test_refuses_a_billing_day_for_weekly_cycles(self) -> None:
        with pytest.raises(ValueError, match="day_of_month"):
            shift(anchor=utc(2024, 2, 10), interval=Interval.WEEK, count=1, n=1, tz="UTC", day_of_month=10)

    @given(
        anchor=instants,
        tz=zones,
        interval=st.sampled_from(Interval),
        count=st.integers(1, 12),
        n=st.integers(0, 400),
    )
    def test_boundaries_strictly_increase(
        self, anchor: datetime, tz: str, interval: Interval, count: int, n: int
    ) -> None:
        this = shift(anchor=anchor, interval=interval, count=count, n=n, tz=tz)
        following = shift(anchor=anchor, interval=interval, count=count, n=n + 1, tz=tz)

        assert this < following


class TestPeriodAt:
    def test_an_instant_on_a_boundary_starts_the_new_period(self) -> None:
        anchor = utc(2024, 1, 31)

        period = period_at(anchor=anchor, interval=Interval.MONTH, count=1, tz="UTC", at=utc(2024, 2, 29))

        assert period == Period(utc(2024, 2, 29), utc(2024, 3, 31))

    def test_the_last_microsecond_stays_in_the_old_period(self) -> None:
        anchor = utc(2024, 1, 31)
        at = utc(2024, 2, 29) - timedelta(microseconds=1)

        period = period_at(anchor=anchor, interval=Interval.MONTH, count=1, tz="UTC", at=at)

        assert period == Period(utc(2024, 1, 31), utc(2024, 2, 29))

    def test_the_anchor_itself_is_in_the_first_period(self) -> None:
        anchor = local(LA, 2024, 3, 1)

        period = period_at(anchor=anchor, interval=Interval.MONTH, count=1, tz=LA, at=anchor)

        assert period == Period(utc(2024, 3, 1, 8), utc(2024, 4, 1, 7))

    def test_finds_a_period_a_century_later(self) -> None:
        anchor = utc(2024, 1, 31)

        period = period_at(anchor=anchor, interval=Interval.MONTH, count=1, tz="UTC", at=utc(2124, 2, 15))

        assert period == Period(utc(2124, 1, 31), utc(2124, 2, 29))

    def test_finds_a_weekly_period_in_local_time(self) -> None:
        anchor = local(LA, 2024, 3, 4)

        period = period_at(anchor=anchor, interval=Interval.WEEK, count=2, tz=LA, at=utc(2024, 3, 18, 6, 59))

        assert period == Period(utc(2024, 3, 4, 8), utc(2024, 3, 18, 7))

    def test_keeps_a_billing_day_above_28_after_february(self) -> None:
        anchor = utc(2024, 2, 29)

        period = period_at(
            anchor=anchor, interval=Interval.MONTH, count=1, tz="UTC", at=utc(2024, 4, 5), day_of_month=31
        )

        assert period == Period(utc(2024, 3, 31), utc(2024, 4, 30))

    def test_refuses_an_instant_before_the_anchor(self) -> None:
        with pytest.raises(ValueError, match="before the anchor"):
            period_at(
                anchor=utc(2024, 1, 31), interval=Interval.MONTH, count=1, tz="UTC", at=utc(2024, 1, 30)
            )

    @given(
        anchor=instants,
        tz=zones,
        interval=st.sampled_from(Interval),
        count=st.integers(1, 6),
        elapsed=st.integers(0, 20 * 366 * 86400),
    )
    def test_contains_the_instant_and_tiles_time(
        self, anchor: datetime, tz: str, interval: Interval, count: int, elapsed: int
    ) -> None:
        at = anchor + timedelta(seconds=elapsed)

        period = period_at(anchor=anchor, interval=interval, count=count, tz=tz, at=at)
        following = period_at(anchor=anchor, interval=interval, count=count, tz=tz, at=period.end)

        assert period.contains(at)
        assert following.start == period.end


class TestBillingDayOfMonth:
    def test_first_full_period_starts_on_the_next_billing_day(self) -> None:
        start = utc(2024, 1, 15, 9, 30)

        boundary = day_of_month_anchor(start=start, day=1, tz="UTC")
        stub = first_period(start=start, day=1, tz="UTC")

        assert boundary == utc(2024, 2, 1)
        assert stub == Period(start, utc(2024, 2, 1))

    def test_uses_local_midnight(self) -> None:
        start = local(LA, 2024, 1, 15, 10)

        boundary = day_of_month_anchor(start=start, day=1, tz=LA)

        assert boundary.isoformat() == "2024-02-01T08:00:00+00:00"

    def test_a_later_day_in_the_same_month_comes_first(self) -> None:
        start = utc(2024, 1, 15, 9, 30)

        boundary = day_of_month_anchor(start=start, day=20, tz="UTC")

        assert boundary == utc(2024, 1, 20)

    def test_a_start_later_on_the_billing_day_waits_a_month(self) -> None:
        start = utc(2024, 1, 1, 0, 0, 1)

        boundary = day_of_month_anchor(start=start, day=1, tz="UTC")

        assert boundary == utc(2024, 2, 1)

    def test_a_start_on_the_boundary_has_no_stub(self) -> None:
        start = local(LA, 2024, 2, 1)

        stub = first_period(start=start, day=1, tz=LA)

        assert stub is None

    def test_clamps_the_day_and_keeps_it_afterwards(self) -> None:
        boundary = day_of_month_anchor(start=utc(2024, 2, 10), day=31, tz="UTC")

        dates = [
            shift(anchor=boundary, interval=Interval.MONTH, count=1, n=n, tz="UTC", day_of_month=31)
            for n in range(4)
        ]

        assert dates == [utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30), utc(2024, 5, 31)]

    def test_wraps_into_the_next_year(self) -> None:
        start = utc(2024, 12, 20)

        boundary = day_of_month_anchor(start=start, day=15, tz="UTC")

        assert boundary == utc(2025, 1, 15)

    @pytest.mark.parametrize("day", [0, 32])
    def test_refuses_days_outside_the_month(self, day: int) -> None:
        with pytest.raises(ValueError, match="between 1 and 31"):
            day_of_month_anchor(start=utc(2024, 1, 15), day=day, tz="UTC")

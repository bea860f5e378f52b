from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from revflow.domain.clock import FrozenClock
from revflow.domain.period import Period


class TestPeriod:
    def test_is_half_open(self) -> None:
        p = Period(datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))

        assert p.contains(datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC))
        assert not p.contains(p.end)
        assert p.duration == timedelta(days=29)  # leap year

    def test_counts_real_hours_across_dst(self) -> None:
        la = ZoneInfo("America/Los_Angeles")
        p = Period(datetime(2024, 3, 10, tzinfo=la), datetime(2024, 3, 11, tzinfo=la))

        assert p.duration == timedelta(hours=23)

    def test_refuses_naive_or_empty_periods(self) -> None:
        with pytest.raises(ValueError):
            Period(datetime(2024, 1, 1), datetime(2024, 1, 2))
        with pytest.raises(ValueError):
            Period(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))


class TestFrozenClock:
    def test_only_moves_forward(self) -> None:
        clock = FrozenClock(datetime(2024, 1, 31, tzinfo=UTC))

        with pytest.raises(ValueError):
            clock.advance(timedelta(seconds=-1))

        assert clock.now() == datetime(2024, 1, 31, tzinfo=UTC)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revflow.domain.discounts import (
    DiscountableLine,
    DiscountTerms,
    Duration,
    LineDiscount,
    allocate,
    resolve_once_period,
    window_end,
)
from revflow.domain.money import Currency, CurrencyMismatch

USD = Currency.of("USD")
JPY = Currency.of("JPY")
JAN_2024 = datetime(2024, 1, 1, tzinfo=UTC)
JAN_2025 = datetime(2025, 1, 1, tzinfo=UTC)
FEB_2024 = datetime(2024, 2, 1, tzinfo=UTC)
MAR_2024 = datetime(2024, 3, 1, tzinfo=UTC)


def _line(
    amount: int,
    start: datetime = JAN_2024,
    *,
    key: int | str = 0,
    currency: str = "USD",
    product: str | None = None,
    plan: str | None = None,
) -> DiscountableLine:
    return DiscountableLine(
        key=key,
        amount=amount,
        billing_period_start=start,
        currency=currency,
        product_id=product,
        plan_id=plan,
    )


def _percent(
    percent: str,
    *,
    id: str = "di_p",
    start: datetime = JAN_2024,
    end: datetime | None = None,
    duration: Duration = Duration.FOREVER,
    **kw: object,
) -> DiscountTerms:
    return DiscountTerms(
        id=id,
        coupon_id=f"cpn_{id}",
        percent_off=Decimal(percent),
        duration=duration,
        start=start,
        end=end,
        **kw,  # type: ignore[arg-type]
    )


def _fixed(
    amount: int,
    currency: str = "USD",
    *,
    id: str = "di_f",
    start: datetime = JAN_2024,
    duration: Duration = Duration.FOREVER,
    **kw: object,
) -> DiscountTerms:
    return DiscountTerms(
        id=id,
        coupon_id=f"cpn_{id}",
        amount_off=amount,
        currency=currency,
        duration=duration,
        start=start,
        **kw,  # type: ignore[arg-type]
    )


def _amounts(result: list[list[LineDiscount]]) -> list[list[int]]:
    return [[d.amount for d in per_line] for per_line in result]


class TestSeedContract:
    def test_twenty_percent_off_the_first_year_discounts_the_first_invoice_only(self) -> None:
        first_year = _percent("20", end=window_end(start=JAN_2024, duration="repeating", months=12, tz="UTC"))
        first = [_line(1_000_000, JAN_2024)]
        renewal = [_line(1_000_000, JAN_2025)]

        on_first = allocate(lines=first, discounts=[first_year], currency=USD)
        on_renewal = allocate(lines=renewal, discounts=[first_year], currency=USD)

        assert on_first == [[LineDiscount("di_p", "cpn_di_p", 200_000)]]
        assert 1_000_000 - on_first[0][0].amount == 800_000
        assert on_renewal == [[]]

    def test_a_once_coupon_gives_the_same_first_invoice(self) -> None:
        once = _percent("20", duration=Duration.ONCE)
        both = [_line(1_000_000, JAN_2024, key=0), _line(1_000_000, JAN_2025, key=1)]

        result = allocate(lines=both, discounts=[once], currency=USD)

        assert _amounts(result) == [[200_000], []]


class TestWindow:
    def test_applies_from_start_inclusive_to_end_exclusive(self) -> None:
        feb_only = _percent("10", start=FEB_2024, end=MAR_2024)
        lines = [_line(1000, JAN_2024, key=0), _line(1000, FEB_2024, key=1), _line(1000, MAR_2024, key=2)]

        result = allocate(lines=lines, discounts=[feb_only], currency=USD)

        assert _amounts(result) == [[], [100], []]

    def test_forever_has_no_end(self) -> None:
        forever = _percent("10")
        far = datetime(2090, 1, 1, tzinfo=UTC)

        result = allocate(lines=[_line(1000, far)], discounts=[forever], currency=USD)

        assert _amounts(result) == [[100]]

    def test_once_applies_only_to_its_fixed_period(self) -> None:
        once = _percent("50", duration=Duration.ONCE, once_period_start=FEB_2024)
        lines = [_line(1000, JAN_2024, key=0), _line(1000, FEB_2024, key=1), _line(1000, MAR_2024, key=2)]

        result = allocate(lines=lines, discounts=[once], currency=USD)

        assert _amounts(result) == [[], [500], []]

    def test_once_without_a_fixed_period_takes_the_first_period_at_or_after_its_start(self) -> None:
        once = _percent("50", duration=Duration.ONCE, start=FEB_2024)
        lines = [_line(1000, MAR_2024, key=0), _line(1000, JAN_2024, key=1), _line(400, FEB_2024, key=2)]

        period = resolve_once_period(discount=once, lines=lines)
        result = allocate(lines=lines, discounts=[once], currency=USD)

        assert period == FEB_2024
        assert _amounts(result) == [[], [], [200]]

    def test_once_ignores_periods_its_restriction_excludes_when_picking_the_period(self) -> None:
        once = _percent("50", duration=Duration.ONCE, applies_to_products=frozenset({"prod_a"}))
        lines = [
            _line(1000, JAN_2024, key=0, product="prod_b"),
            _line(1000, FEB_2024, key=1, product="prod_a"),
        ]

        result = allocate(lines=lines, discounts=[once], currency=USD)

        assert _amounts(result) == [[], [500]]

    def test_window_end_adds_calendar_months_and_clamps_the_month_end(self) -> None:
        jan31 = datetime(2024, 1, 31, tzinfo=UTC)

        one = window_end(start=jan31, duration=Duration.REPEATING, months=1, tz="UTC")
        thirteen = window_end(start=jan31, duration="repeating", months=13, tz="UTC")
        forever = window_end(start=jan31, duration="forever", months=None, tz="UTC")

        assert one == datetime(2024, 2, 29, tzinfo=UTC)
        assert thirteen == datetime(2025, 2, 28, tzinfo=UTC)
        assert forever is None

    def test_window_end_keeps_local_midnight_across_dst(self) -> None:
        la_march_1 = datetime(2024, 3, 1, 8, tzinfo=UTC)  # 00:00 PST

        end = window_end(start=la_march_1, duration="repeating", months=1, tz="America/Los_Angeles")

        assert end == datetime(2024, 4, 1, 7, tzinfo=UTC)  # 00:00 PDT, the next period's start

    def test_window_end_refuses_a_repeating_duration_without_months(self) -> None:
        with pytest.raises(ValueError, match="months >= 1"):
            window_end(start=JAN_2024, duration="repeating", months=0, tz="UTC")


class TestRestrictions:
    def test_products_and_plans_each_restrict_when_given(self) -> None:
        products = _percent("10", id="di_prod", applies_to_products=frozenset({"prod_a"}))
        plans = _percent("20", id="di_plan", applies_to_plans=frozenset({"plan_x"}))
        lines = [
            _line(1000, key=0, product="prod_a", plan="plan_x"),
            _line(1000, key=1, product="prod_a", plan="plan_y"),
            _line(1000, key=2, product="prod_b", plan="plan_x"),
            _line(1000, key=3),
        ]

        result = allocate(lines=lines, discounts=[products, plans], currency=USD)

        assert _amounts(result) == [[100, 200], [100], [200], []]


class TestPercent:
    def test_rounds_half_up_per_line(self) -> None:
        lines = [_line(5, key=0), _line(4, key=1), _line(-5, key=2)]

        result = allocate(lines=lines, discounts=[_percent("10")], currency=USD)

        assert _amounts(result) == [[1], [], [-1]]  # 0.5 → 1, 0.4 → 0 (left out), -0.5 → -1

    def test_supports_four_decimal_places(self) -> None:
        result = allocate(lines=[_line(1_000_000)], discounts=[_percent("12.3456")], currency=USD)

        assert _amounts(result) == [[123_456]]

    def test_discounts_a_credit_so_a_change_and_its_reversal_net_to_zero(self) -> None:
        lines = [_line(33_333, key="charge"), _line(-33_333, key="credit")]

        result = allocate(lines=lines, discounts=[_percent("15")], currency=USD)

        assert _amounts(result) == [[5000], [-5000]]

    def test_respects_the_currency_exponent(self) -> None:
        result = allocate(lines=[_line(1001, currency="JPY")], discounts=[_percent("50")], currency=JPY)

        assert _amounts(result) == [[501]]  # 500.5 yen rounds half up

    def test_stacked_percents_each_use_the_original_amount_and_stop_at_zero(self) -> None:
        lines = [_line(1000, key=0), _line(-1000, key=1)]
        discounts = [_percent("30", id="di_a"), _percent("60", id="di_b"), _percent("25", id="di_c")]

        result = allocate(lines=lines, discounts=discounts, currency=USD)

        assert _amounts(result) == [[300, 600, 100], [-300, -600, -100]]
        assert [d.discount_id for d in result[0]] == ["di_a", "di_b", "di_c"]


class TestFixed:
    def test_spreads_in_proportion_with_the_largest_remainder(self) -> None:
        lines = [_line(100, key=0), _line(100, key=1), _line(100, key=2)]

        result = allocate(lines=lines, discounts=[_fixed(100)], currency=USD)

        assert _amounts(result) == [[34], [33], [33]]

    def test_is_per_invoice_and_capped_at_the_eligible_total(self) -> None:
        lines = [_line(300, key=0), _line(200, key=1)]

        result = allocate(lines=lines, discounts=[_fixed(10_000)], currency=USD)

        assert _amounts(result) == [[300], [200]]

    def test_skips_credit_lines(self) -> None:
        lines = [_line(600, key=0), _line(-500, key=1), _line(400, key=2)]

        result = allocate(lines=lines, discounts=[_fixed(500)], currency=USD)

        assert _amounts(result) == [[300], [], [200]]

    def test_does_not_apply_in_another_currency(self) -> None:
        lines = [_line(10_000, currency="JPY")]

        result = allocate(lines=lines, discounts=[_fixed(500, "USD")], currency=JPY)

        assert result == [[]]

    def test_applies_after_percents_on_what_remains(self) -> None:
        lines = [_line(1000, key=0), _line(3000, key=1)]
        discounts = [_fixed(2000, id="di_f"), _percent("50", id="di_p")]

        result = allocate(lines=lines, discounts=discounts, currency=USD)

        assert result == [
            [LineDiscount("di_p", "cpn_di_p", 500), LineDiscount("di_f", "cpn_di_f", 500)],
            [LineDiscount("di_p", "cpn_di_p", 1500), LineDiscount("di_f", "cpn_di_f", 1500)],
        ]

    def test_a_second_fixed_discount_only_takes_what_the_first_left(self) -> None:
        lines = [_line(1000)]

        result = allocate(
            lines=lines, discounts=[_fixed(700, id="di_a"), _fixed(700, id="di_b")], currency=USD
        )

        assert _amounts(result) == [[700, 300]]


class TestValidation:
    def test_terms_need_exactly_one_value(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            DiscountTerms(id="d", coupon_id="c", start=JAN_2024)
        with pytest.raises(ValueError, match="exactly one"):
            DiscountTerms(
                id="d", coupon_id="c", percent_off=Decimal(1), amount_off=1, currency="USD", start=JAN_2024
            )

    @pytest.mark.parametrize("percent", ["0", "-1", "100.0001"])
    def test_percent_must_be_in_range(self, percent: str) -> None:
        with pytest.raises(ValueError, match="percent_off"):
            _percent(percent)

    def test_amount_off_needs_a_currency_and_naive_instants_are_refused(self) -> None:
        with pytest.raises(ValueError, match="currency"):
            DiscountTerms(id="d", coupon_id="c", amount_off=100, start=JAN_2024)
        with pytest.raises(ValueError, match="timezone-aware"):
            _percent("10", start=datetime(2024, 1, 1))

    def test_a_line_in_another_currency_is_refused(self) -> None:
        with pytest.raises(CurrencyMismatch):
            allocate(lines=[_line(100, currency="EUR")], discounts=[], currency=USD)


_amount_st = st.integers(min_value=-(10**12), max_value=10**12)
_percent_st = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100), places=4)


class TestProperties:
    @given(
        amounts=st.lists(_amount_st, min_size=1, max_size=12),
        percents=st.lists(_percent_st, max_size=3),
        fixed=st.lists(st.integers(min_value=1, max_value=10**12), max_size=3),
    )
    def test_discounts_never_exceed_a_line_nor_flip_its_sign(
        self, amounts: list[int], percents: list[Decimal], fixed: list[int]
    ) -> None:
        lines = [_line(a, key=i) for i, a in enumerate(amounts)]
        discounts = [_percent(str(p), id=f"di_p{i}") for i, p in enumerate(percents)] + [
            _fixed(f, id=f"di_f{i}") for i, f in enumerate(fixed)
        ]

        result = allocate(lines=lines, discounts=discounts, currency=USD)

        for line, per_line in zip(lines, result, strict=True):
            total = sum(d.amount for d in per_line)
            if line.amount >= 0:
                assert 0 <= total <= line.amount
                assert all(d.amount > 0 for d in per_line)
            else:
                assert line.amount <= total <= 0
                assert all(d.amount < 0 for d in per_line)

    @given(
        amounts=st.lists(_amount_st, min_size=1, max_size=12),
        amount_off=st.integers(min_value=1, max_value=10**13),
    )
    def test_fixed_parts_sum_to_the_amount_off_or_the_eligible_total(
        self, amounts: list[int], amount_off: int
    ) -> None:
        lines = [_line(a, key=i) for i, a in enumerate(amounts)]

        result = allocate(lines=lines, discounts=[_fixed(amount_off)], currency=USD)

        eligible = sum(a for a in amounts if a > 0)
        assert sum(d.amount for per_line in result for d in per_line) == min(amount_off, eligible)

    @given(amount=st.integers(min_value=0, max_value=10**12), percent=_percent_st)
    def test_a_percent_discount_on_a_credit_mirrors_the_charge(self, amount: int, percent: Decimal) -> None:
        lines = [_line(amount, key=0), _line(-amount, key=1)]

        charge, credit = allocate(lines=lines, discounts=[_percent(str(percent))], currency=USD)

        assert sum(d.amount for d in charge) == -sum(d.amount for d in credit)

    @given(days=st.integers(min_value=-400, max_value=800))
    def test_a_repeating_window_covers_exactly_the_periods_inside_it(self, days: int) -> None:
        end = window_end(start=JAN_2024, duration="repeating", months=12, tz="UTC")
        assert end is not None
        at = JAN_2024 + timedelta(days=days)

        result = allocate(lines=[_line(100, at)], discounts=[_percent("10", end=end)], currency=USD)

        assert (result == [[LineDiscount("di_p", "cpn_di_p", 10)]]) == (JAN_2024 <= at < end)

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revflow.domain.invoices import AmountOutOfRange
from revflow.domain.money import Currency
from revflow.domain.pricing import (
    InvalidPricing,
    InvalidQuantity,
    PackageRounding,
    PriceTerms,
    PricingModel,
    Tier,
    amount,
    exact_amount,
    tier_breakdown,
)

D = Decimal
USD = Currency.of("USD")

THREE_TIERS = (
    Tier(up_to=D(100), unit_amount=D(100)),
    Tier(up_to=D(200), unit_amount=D(50)),
    Tier(up_to=None, unit_amount=D(25)),
)

quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
unit_amounts = st.decimals(min_value=0, max_value=10**4, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=10**5), max_size=5)))
    ups: list[Decimal | None] = [D(b) for b in bounds]
    ups.append(None)
    return tuple(Tier(up_to=up, unit_amount=draw(unit_amounts), flat_amount=draw(unit_amounts)) for up in ups)


class TestFlat:
    def test_charges_the_flat_amount_whatever_the_quantity(self) -> None:
        terms = PriceTerms(model=PricingModel.FLAT, flat_amount=D(2900))

        amounts = [amount(terms=terms, quantity=q, currency=USD) for q in (D(0), D(1), D(1000))]

        assert amounts == [2900, 2900, 2900]


class TestPerUnit:
    def test_sub_cent_unit_prices_round_once_at_the_total(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("0.04"))

        exact = exact_amount(terms=terms, quantity=D(12345))
        total = amount(terms=terms, quantity=D(12345), currency=USD)

        assert exact == D("493.80")
        assert total == 494  # 4.938 USD

    def test_rounds_half_up_in_yen(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("12.5"))

        total = amount(terms=terms, quantity=D(3), currency=Currency.of("JPY"))

        assert total == 38  # 37.5 yen

    def test_rounds_half_up_in_fils(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("1.2345"))

        total = amount(terms=terms, quantity=D(1000), currency=Currency.of("KWD"))

        assert total == 1235  # 1.2345 KWD → 1.235 KWD

    def test_prices_fractional_quantities(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(1000))

        total = amount(terms=terms, quantity=D("2.5"), currency=USD)

        assert total == 2500


class TestGraduatedTiers:
    def test_prices_each_unit_at_its_own_tier(self) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=THREE_TIERS)

        total = amount(terms=terms, quantity=D(150), currency=USD)

        assert total == 12500  # 100 × 1.00 + 50 × 0.50

    def test_reaches_the_open_ended_tier(self) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=THREE_TIERS)

        total = amount(terms=terms, quantity=D(250), currency=USD)

        assert total == 16250  # 10000 + 5000 + 50 × 25

    def test_treats_up_to_as_inclusive(self) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=THREE_TIERS)

        breakdown = tier_breakdown(terms=terms, quantity=D(100))

        assert [(t.up_to, units, exact) for t, units, exact in breakdown] == [(D(100), D(100), D(10000))]

    def test_adds_each_flat_amount_once_when_its_tier_is_reached(self) -> None:
        tiers = (
            Tier(up_to=D(10), flat_amount=D(1000)),
            Tier(up_to=None, unit_amount=D(100), flat_amount=D(500)),
        )
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (0, 1, 10, 11, 12)]

        assert amounts == [0, 1000, 1000, 1600, 1700]

    def test_breaks_the_total_down_by_tier(self) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=THREE_TIERS)

        breakdown = tier_breakdown(terms=terms, quantity=D(250))

        assert [(units, exact) for _, units, exact in breakdown] == [
            (D(100), D(10000)),
            (D(100), D(5000)),
            (D(50), D(1250)),
        ]
        assert [t for t, _, _ in breakdown] == list(THREE_TIERS)

    @given(tiers=tier_lists(), a=quantities, b=quantities)
    def test_never_costs_less_for_more(self, tiers: tuple[Tier, ...], a: Decimal, b: Decimal) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)
        low, high = sorted((a, b))

        cheaper = exact_amount(terms=terms, quantity=low)
        dearer = exact_amount(terms=terms, quantity=high)

        assert cheaper <= dearer

    @given(tiers=tier_lists(), quantity=quantities)
    def test_breakdown_sums_to_the_exact_amount(self, tiers: tuple[Tier, ...], quantity: Decimal) -> None:
        terms = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)

        lines = tier_breakdown(terms=terms, quantity=quantity)

        assert sum((exact for _, _, exact in lines), D(0)) == exact_amount(terms=terms, quantity=quantity)
        assert sum((units for _, units, _ in lines), D(0)) == quantity

    @given(unit=unit_amounts, flat=unit_amounts, quantity=quantities)
    def test_equals_volume_with_a_single_tier(self, unit: Decimal, flat: Decimal, quantity: Decimal) -> None:
        tiers = (Tier(up_to=None, unit_amount=unit, flat_amount=flat),)
        graduated = PriceTerms(model=PricingModel.GRADUATED, tiers=tiers)
        volume = PriceTerms(model=PricingModel.VOLUME, tiers=tiers)

        graduated_total = amount(terms=graduated, quantity=quantity, currency=USD)
        volume_total = amount(terms=volume, quantity=quantity, currency=USD)

        assert graduated_total == volume_total


class TestVolumeTiers:
    def test_prices_every_unit_at_the_tier_of_the_total(self) -> None:
        terms = PriceTerms(model=PricingModel.VOLUME, tiers=THREE_TIERS)

        total = amount(terms=terms, quantity=D(150), currency=USD)

        assert total == 7500  # 150 × 0.50

    def test_a_total_on_a_bound_stays_in_the_lower_tier(self) -> None:
        terms = PriceTerms(model=PricingModel.VOLUME, tiers=THREE_TIERS)

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (100, 101, 200, 201)]

        assert amounts == [10000, 5050, 10000, 5025]

    def test_adds_the_flat_amount_of_the_tier_the_total_falls_in(self) -> None:
        tiers = (
            Tier(up_to=D(10), unit_amount=D(200), flat_amount=D(1000)),
            Tier(up_to=None, unit_amount=D(100), flat_amount=D(3000)),
        )
        terms = PriceTerms(model=PricingModel.VOLUME, tiers=tiers)

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (0, 5, 20)]

        assert amounts == [0, 2000, 5000]

    def test_breaks_down_to_one_line(self) -> None:
        terms = PriceTerms(model=PricingModel.VOLUME, tiers=THREE_TIERS)

        breakdown = tier_breakdown(terms=terms, quantity=D(150))

        assert breakdown == [(THREE_TIERS[1], D(150), D(7500))]


class TestPackage:
    def test_rounds_a_started_package_up(self) -> None:
        terms = PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(500), package_size=20)

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (0, 1, 20, 21, 45)]

        assert amounts == [0, 500, 500, 1000, 1500]

    def test_can_count_only_complete_packages(self) -> None:
        terms = PriceTerms(
            model=PricingModel.PACKAGE,
            unit_amount=D(500),
            package_size=20,
            package_rounding=PackageRounding.DOWN,
        )

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (19, 20, 45)]

        assert amounts == [0, 500, 1000]

    def test_rounds_fractional_quantities_to_whole_packages(self) -> None:
        terms = PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(500), package_size=20)

        total = amount(terms=terms, quantity=D("40.001"), currency=USD)

        assert total == 1500


class TestFlatPerUnit:
    def test_adds_the_flat_amount_to_the_unit_total(self) -> None:
        terms = PriceTerms(model=PricingModel.FLAT_PER_UNIT, flat_amount=D(1000), unit_amount=D("2.5"))

        amounts = [amount(terms=terms, quantity=D(q), currency=USD) for q in (0, 3, 100)]

        assert amounts == [1000, 1008, 1250]  # 1007.5 rounds half up


class TestQuantity:
    def test_refuses_a_negative_quantity(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(100))

        with pytest.raises(InvalidQuantity) as err:
            amount(terms=terms, quantity=D(-1), currency=USD)

        assert err.value.code == "invalid_quantity"
        assert err.value.status == 422

    def test_refuses_a_quantity_that_is_not_a_number(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(100))

        with pytest.raises(InvalidQuantity):
            exact_amount(terms=terms, quantity=D("NaN"))

    def test_refuses_amounts_beyond_the_limit(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(10**10))

        with pytest.raises(AmountOutOfRange):
            amount(terms=terms, quantity=D(10**6), currency=USD)

    def test_accepts_the_limit_itself(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(10**9))

        total = amount(terms=terms, quantity=D(10**6), currency=USD)

        assert total == 10**15


class TestValidation:
    @pytest.mark.parametrize(
        "build",
        [
            pytest.param(lambda: PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(-1)), id="negative"),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D("Infinity")), id="inf"
            ),
            pytest.param(lambda: PriceTerms(model=PricingModel.GRADUATED), id="no-tiers"),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.VOLUME, tiers=(Tier(up_to=D(10)),)), id="closed-last"
            ),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.GRADUATED, tiers=(Tier(up_to=None), Tier(up_to=None))),
                id="two-open",
            ),
            pytest.param(
                lambda: PriceTerms(
                    model=PricingModel.GRADUATED,
                    tiers=(Tier(up_to=D(20)), Tier(up_to=D(10)), Tier(up_to=None)),
                ),
                id="descending",
            ),
            pytest.param(
                lambda: PriceTerms(
                    model=PricingModel.GRADUATED,
                    tiers=(Tier(up_to=D(10)), Tier(up_to=D(10)), Tier(up_to=None)),
                ),
                id="repeated-bound",
            ),
            pytest.param(lambda: PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(5)), id="no-size"),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.PACKAGE, unit_amount=D(5), package_size=0), id="size-0"
            ),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(5), flat_amount=D(1)),
                id="unused-flat",
            ),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.FLAT, flat_amount=D(5), tiers=THREE_TIERS),
                id="unused-tiers",
            ),
            pytest.param(
                lambda: PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(5), package_size=10),
                id="unused-size",
            ),
            pytest.param(lambda: PriceTerms(model="tiered"), id="unknown-model"),  # type: ignore[arg-type]
            pytest.param(lambda: Tier(up_to=D(0)), id="zero-bound"),
            pytest.param(lambda: Tier(up_to=None, unit_amount=D(-5)), id="negative-tier"),
        ],
    )
    def test_refuses_inconsistent_terms(self, build: Callable[[], object]) -> None:
        with pytest.raises(InvalidPricing) as err:
            build()

        assert err.value.code == "invalid_pricing"

    def test_reads_models_and_rounding_from_their_stored_strings(self) -> None:
        terms = PriceTerms(
            model="package",  # type: ignore[arg-type]
            unit_amount=D(500),
            package_size=20,
            package_rounding="down",  # type: ignore[arg-type]
        )

        total = amount(terms=terms, quantity=D(45), currency=USD)

        assert (terms.model, terms.package_rounding, total) == (
            PricingModel.PACKAGE,
            PackageRounding.DOWN,
            1000,
        )

    def test_breakdown_is_only_for_tiered_prices(self) -> None:
        terms = PriceTerms(model=PricingModel.PER_UNIT, unit_amount=D(5))

        with pytest.raises(ValueError, match="no tiers"):
            tier_breakdown(terms=terms, quantity=D(1))

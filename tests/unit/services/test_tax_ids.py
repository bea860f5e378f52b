"""Customer tax ID validation. Valid figures are the examples from python-stdnum's docstrings."""

from __future__ import annotations

import pycountry
import pytest
from stdnum.exceptions import InvalidChecksum, ValidationError

from revflow.domain.errors import InvalidInput
from revflow.services.tax_ids import TAX_ID_TYPES, InvalidTaxId, tax_id_country, validate_tax_id


class TestTaxIdTypes:
    def test_lists_the_66_types_stripe_accepts_when_creating_a_tax_id(self) -> None:
        expected_sample = {"eu_vat", "gb_vat", "us_ein", "au_abn", "in_gst", "za_vat", "eu_oss_vat"}

        count = len(TAX_ID_TYPES)

        assert count == 66
        assert expected_sample <= TAX_ID_TYPES

    def test_leaves_out_stripes_legacy_unknown_type(self) -> None:
        legacy = "unknown"

        accepted = legacy in TAX_ID_TYPES

        assert not accepted


class TestValidateTaxId:
    def test_accepts_valid_german_vat_and_compacts_it(self) -> None:
        value = "DE 136 695 976"

        result = validate_tax_id(type="eu_vat", value=value)

        assert result == "DE136695976"

    def test_accepts_valid_french_vat_written_with_spaces(self) -> None:
        value = "FR 61 954 506 077"

        result = validate_tax_id(type="eu_vat", value=value)

        assert result == "FR61954506077"

    def test_accepts_valid_dutch_vat_and_pads_it_to_twelve_characters(self) -> None:
        value = "NL4495445B01"

        result = validate_tax_id(type="eu_vat", value=value)

        assert result == "NL004495445B01"

    def test_normalizes_spaces_dots_and_lower_case(self) -> None:
        value = "  be 0697.449.992 "

        result = validate_tax_id(type="eu_vat", value=value)

        assert result == "BE0697449992"

    def test_accepts_valid_uk_vat_and_drops_its_gb_prefix(self) -> None:
        value = "GB 980 7806 84"

        result = validate_tax_id(type="gb_vat", value=value)

        assert result == "980780684"

    def test_accepts_valid_us_ein(self) -> None:
        value = "91-1144442"

        result = validate_tax_id(type="us_ein", value=value)

        assert result == "911144442"

    def test_accepts_valid_australian_abn(self) -> None:
        value = "83 914 571 673"

        result = validate_tax_id(type="au_abn", value=value)

        assert result == "83914571673"

    @pytest.mark.parametrize(
        ("tax_id_type", "value", "expected"),
        [
            ("ad_nrt", "U-132950-X", "U132950X"),
            ("ar_cuit", "20-05536168-2", "20055361682"),
            ("br_cnpj", "16.727.230/0001-97", "16727230000197"),
            ("br_cpf", "390.533.447-05", "39053344705"),
            ("ca_bn", "12302 6635", "123026635"),
            ("ca_gst_hst", "12302 6635 RT 0001", "123026635RT0001"),
            ("ch_vat", "CHE-107.787.577 IVA", "CHE107787577IVA"),
            ("cl_tin", "76086428-5", "760864285"),
            ("cn_tin", "91110000600037341L", "91110000600037341L"),
            ("co_nit", "213.123.432-1", "2131234321"),
            ("cr_tin", "3-101-999999", "3101999999"),
            ("cr_tin", "3-0455-0175", "0304550175"),
            ("do_rcn", "1-01-85004-3", "101850043"),
            ("do_rcn", "00113918205", "00113918205"),
            ("ec_ruc", "1792060346-001", "1792060346001"),
            ("eg_tin", "100-531-385", "100531385"),
            ("es_cif", "J99216582", "J99216582"),
            ("eu_oss_vat", "EU 372022452", "EU372022452"),
            ("id_npwp", "01.312.166.0-091.000", "013121660091000"),
            ("il_vat", "516179157", "516179157"),
            ("il_vat", "3933742-3", "039337423"),
            ("in_gst", "27AAPFU0939F1ZV", "27AAPFU0939F1ZV"),
            ("is_vat", "IS 00621", "00621"),
            ("jp_cn", "5-8356-7825-6246", "5835678256246"),
            ("ke_pin", "P051365947M", "P051365947M"),
            ("kr_brn", "116-82-00276", "1168200276"),
            ("li_uid", "CHE-100.155.212", "CHE100155212"),
            ("mx_rfc", "MAB-930714-8T4", "MAB9307148T4"),
            ("no_vat", "NO 995 525 828 MVA", "995525828MVA"),
            ("nz_gst", "NZ 49-098-576", "49098576"),
            ("pe_ruc", "20512333797", "20512333797"),
            ("ro_tin", "1630615123457", "1630615123457"),
            ("rs_pib", "101134702", "101134702"),
            ("ru_inn", "1234567894", "1234567894"),
            ("sg_uen", "197401143C", "197401143C"),
            ("si_tin", "SI 5022 3054", "50223054"),
            ("sv_nit", "0614-050707-104-8", "06140507071048"),
            ("th_vat", "0-99-4-000-61772-1", "0994000617721"),
            ("tr_tin", "4540536920", "4540536920"),
            ("tr_tin", "17291716060", "17291716060"),
            ("tw_vat", "00501503", "00501503"),
            ("uy_ruc", "21-100342-001-7", "211003420017"),
            ("ve_rif", "V-11470283-4", "V114702834"),
            ("vn_tin", "0100233488", "0100233488"),
        ],
    )
    def test_accepts_a_known_valid_number_of_each_validated_type(
        self, tax_id_type: str, value: str, expected: str
    ) -> None:
        result = validate_tax_id(type=tax_id_type, value=value)

        assert result == expected

    def test_rejects_an_invalid_checksum_with_code_invalid_tax_id(self) -> None:
        value = "802311781"

        with pytest.raises(InvalidTaxId) as excinfo:
            validate_tax_id(type="gb_vat", value=value)

        error = excinfo.value
        assert error.code == "invalid_tax_id"
        assert isinstance(error, InvalidInput)
        assert error.status == 422
        assert error.message == "invalid gb_vat tax ID: the number's checksum or check digit is invalid"
        assert isinstance(error.__cause__, InvalidChecksum)

    def test_rejects_a_german_vat_with_a_wrong_check_digit(self) -> None:
        value = "DE136695978"

        with pytest.raises(InvalidTaxId, match="checksum") as excinfo:
            validate_tax_id(type="eu_vat", value=value)

        assert isinstance(excinfo.value.__cause__, ValidationError)

    def test_describes_the_failure_in_details_under_the_value_field(self) -> None:
        value = "99 999 999 999"

        with pytest.raises(InvalidTaxId) as excinfo:
            validate_tax_id(type="au_abn", value=value)

        error = excinfo.value
        assert error.details == [{"field": "value", "code": "invalid_tax_id", "message": error.message}]

    def test_reports_the_checksum_rather_than_the_length_when_every_alternative_rejects(self) -> None:
        company_number_with_wrong_check_digit = "4540536921"

        with pytest.raises(InvalidTaxId) as excinfo:
            validate_tax_id(type="tr_tin", value=company_number_with_wrong_check_digit)

        assert "checksum" in excinfo.value.message

    def test_rejects_an_unknown_type(self) -> None:
        tax_id_type = "xx_vat"

        with pytest.raises(InvalidTaxId) as excinfo:
            validate_tax_id(type=tax_id_type, value="DE136695976")

        error = excinfo.value
        assert error.code == "invalid_tax_id"
        assert "unknown tax ID type 'xx_vat'" in error.message
        assert error.details[0]["field"] == "type"

    def test_rejects_an_eu_vat_prefix_that_differs_from_the_customers_eu_country(self) -> None:
        french_vat = "FR61954506077"

        with pytest.raises(InvalidTaxId) as excinfo:
            validate_tax_id(type="eu_vat", value=french_vat, country="DE")

        error = excinfo.value
        assert error.code == "invalid_tax_id"
        assert error.message == "EU VAT number has prefix FR but the country DE requires prefix DE"

    def test_requires_the_el_prefix_for_a_greek_customer(self) -> None:
        german_vat = "DE136695976"

        with pytest.raises(InvalidTaxId, match="country GR requires prefix EL"):
            validate_tax_id(type="eu_vat", value=german_vat, country="GR")

    def test_accepts_a_greek_vat_with_the_el_prefix_for_a_greek_customer(self) -> None:
        value = "EL 094259216"

        result = validate_tax_id(type="eu_vat", value=value, country="gr")

        assert result == "EL094259216"

    def test_rewrites_a_greek_gr_prefix_to_el(self) -> None:
        value = "GR094259216"

        result = validate_tax_id(type="eu_vat", value=value, country="GR")

        assert result == "EL094259216"

    def test_accepts_a_matching_eu_vat_prefix(self) -> None:
        german_vat = "DE136695976"

        result = validate_tax_id(type="eu_vat", value=german_vat, country="DE")

        assert result == "DE136695976"

    def test_does_not_compare_the_prefix_with_a_country_outside_the_eu(self) -> None:
        german_vat = "DE136695976"

        result = validate_tax_id(type="eu_vat", value=german_vat, country="US")

        assert result == "DE136695976"

    def test_accepts_a_northern_ireland_vat_with_the_xi_prefix(self) -> None:
        value = "XI 980 7806 84"

        result = validate_tax_id(type="eu_vat", value=value, country="GB")

        assert result == "XI980780684"

    def test_rejects_a_one_stop_shop_number_given_as_eu_vat(self) -> None:
        oss_number = "EU372022452"

        with pytest.raises(InvalidTaxId, match="eu_oss_vat"):
            validate_tax_id(type="eu_vat", value=oss_number)

    def test_accepts_a_type_without_stdnum_validator_after_basic_normalization(self) -> None:
        quebec_qst = "  1234567890 tq\t0001 "

        result = validate_tax_id(type="ca_qst", value=quebec_qst)

        assert result == "1234567890 TQ 0001"

    def test_rejects_an_empty_value(self) -> None:
        blank = "   "

        with pytest.raises(InvalidTaxId, match="empty"):
            validate_tax_id(type="za_vat", value=blank)

    def test_rejects_a_value_longer_than_64_characters(self) -> None:
        too_long = "4" * 65

        with pytest.raises(InvalidTaxId, match="longer than 64"):
            validate_tax_id(type="za_vat", value=too_long)


class TestTaxIdCountry:
    def test_takes_the_country_from_the_type_prefix(self) -> None:
        uk_vat = "980780684"

        country = tax_id_country(type="gb_vat", value=uk_vat)

        assert country == "GB"

    def test_takes_the_country_from_the_vat_prefix_for_eu_vat(self) -> None:
        german_vat = "DE136695976"

        country = tax_id_country(type="eu_vat", value=german_vat)

        assert country == "DE"

    def test_maps_the_greek_el_prefix_to_gr(self) -> None:
        greek_vat = "EL094259216"

        country = tax_id_country(type="eu_vat", value=greek_vat)

        assert country == "GR"

    def test_maps_the_northern_ireland_xi_prefix_to_gb(self) -> None:
        northern_ireland_vat = "XI980780684"

        country = tax_id_country(type="eu_vat", value=northern_ireland_vat)

        assert country == "GB"

    def test_returns_none_for_an_eu_vat_without_an_eu_prefix(self) -> None:
        unprefixed = "136695976"

        country = tax_id_country(type="eu_vat", value=unprefixed)

        assert country is None

    def test_returns_none_for_an_eu_wide_one_stop_shop_number(self) -> None:
        oss_number = "EU372022452"

        country = tax_id_country(type="eu_oss_vat", value=oss_number)

        assert country is None

    def test_returns_an_iso_3166_country_for_every_type_but_the_eu_wide_ones(self) -> None:
        country_types = sorted(TAX_ID_TYPES - {"eu_vat", "eu_oss_vat"})

        countries = {t: tax_id_country(type=t, value="123") for t in country_types}

        not_iso = {
            t: c for t, c in countries.items() if c is None or pycountry.countries.get(alpha_2=c) is None
        }
        assert not_iso == {}

    def test_rejects_an_unknown_type(self) -> None:
        tax_id_type = "xx_vat"

        with pytest.raises(InvalidTaxId, match="unknown tax ID type"):
            tax_id_country(type=tax_id_type, value="123")

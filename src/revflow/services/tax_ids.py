"""Customer tax ID validation.

Tax ID types use Stripe's names (``eu_vat``, ``gb_vat``, ``us_ein``, ...). :data:`TAX_ID_TYPES` is the
``type`` enum of Stripe's create-tax-ID endpoints in API version 2023-08-16 (the legacy read-only
``unknown`` type is not accepted).

Most types are checked with the python-stdnum module for that number (format, length and check
digits; no online lookup such as VIES) and come back in that module's compact form. The types python-stdnum
has no validator for — ``ae_trn``, ``au_arn``, ``bg_uic``, ``bo_tin``, ``ca_pst_bc``, ``ca_pst_mb``,
``ca_pst_sk``, ``ca_qst``, ``ge_vat``, ``hk_br``, ``hu_tin``, ``jp_rn``, ``jp_trn``, ``my_frp``,
``my_itn``, ``my_sst``, ``ph_tin``, ``ru_kpp``, ``sa_vat``, ``sg_gst``, ``ua_vat`` and ``za_vat`` — are
accepted after basic normalization only: surrounding whitespace stripped, inner whitespace collapsed
to one space, upper-cased.

Every value must be 1 to 64 printable characters once whitespace is normalized.

>>> validate_tax_id(type="eu_vat", value="fr 61 954 506 077")
'FR61954506077'
>>> validate_tax_id(type="eu_vat", value="GR 094259216")  # Greek VAT numbers use the EL prefix
'EL094259216'
>>> tax_id_country(type="eu_vat", value="EL094259216")
'GR'
>>> validate_tax_id(type="ae_trn", value=" 100 123  456 ")  # no stdnum validator: normalized only
'100 123 456'
>>> validate_tax_id(type="gb_vat", value="802311781")
Traceback (most recent call last):
...
revflow.services.tax_ids.InvalidTaxId: invalid gb_vat tax ID: the number's checksum or check digit is invalid
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Protocol

import stdnum.ad.nrt
import stdnum.ar.cuit
import stdnum.au.abn
import stdnum.br.cnpj
import stdnum.br.cpf
import stdnum.ca.bn
import stdnum.ch.uid
import stdnum.ch.vat
import stdnum.cl.rut
import stdnum.cn.uscc
import stdnum.co.nit
import stdnum.cr.cpf
import stdnum.cr.cpj
import stdnum.cr.cr
import stdnum.do.cedula
import stdnum.do.rnc
import stdnum.ec.ruc
import stdnum.eg.tn
import stdnum.es.cif
import stdnum.eu.oss
import stdnum.eu.vat
import stdnum.gb.vat
import stdnum.id.npwp
import stdnum.il.hp
import stdnum.il.idnr
import stdnum.in_.gstin
import stdnum.is_.vsk
import stdnum.jp.cn
import stdnum.ke.pin
import stdnum.kr.brn
import stdnum.mx.rfc
import stdnum.no.mva
import stdnum.nz.ird
import stdnum.pe.ruc
import stdnum.ro.cf
import stdnum.rs.pib
import stdnum.ru.inn
import stdnum.sg.uen
import stdnum.si.ddv
import stdnum.sv.nit
import stdnum.th.tin
import stdnum.tr.tckimlik
import stdnum.tr.vkn
import stdnum.tw.ubn
import stdnum.us.ein
import stdnum.uy.rut
import stdnum.ve.rif
import stdnum.vn.mst
from stdnum.exceptions import InvalidLength, ValidationError

from revflow.domain.errors import InvalidInput

__all__ = ["TAX_ID_TYPES", "InvalidTaxId", "tax_id_country", "validate_tax_id"]

#: Every tax ID type accepted: Stripe's create-tax-ID ``type`` enum (API version 2023-08-16).
TAX_ID_TYPES: Final[frozenset[str]] = frozenset(
    {
        "ad_nrt", "ae_trn", "ar_cuit", "au_abn", "au_arn", "bg_uic", "bo_tin", "br_cnpj", "br_cpf",
        "ca_bn", "ca_gst_hst", "ca_pst_bc", "ca_pst_mb", "ca_pst_sk", "ca_qst", "ch_vat", "cl_tin",
        "cn_tin", "co_nit", "cr_tin", "do_rcn", "ec_ruc", "eg_tin", "es_cif", "eu_oss_vat", "eu_vat",
        "gb_vat", "ge_vat", "hk_br", "hu_tin", "id_npwp", "il_vat", "in_gst", "is_vat", "jp_cn",
        "jp_rn", "jp_trn", "ke_pin", "kr_brn", "li_uid", "mx_rfc", "my_frp", "my_itn", "my_sst",
        "no_vat", "nz_gst", "pe_ruc", "ph_tin", "ro_tin", "rs_pib", "ru_inn", "ru_kpp", "sa_vat",
        "sg_gst", "sg_uen", "si_tin", "sv_nit", "th_vat", "tr_tin", "tw_vat", "ua_vat", "us_ein",
        "uy_ruc", "ve_rif", "vn_tin", "za_vat",
    }
)  # fmt: skip

#: Longest value accepted, after whitespace normalization.
_MAX_LENGTH: Final = 64


class _Validator(Protocol):
    """What a python-stdnum number module offers: ``validate`` returns the compact form or raises."""

    def validate(self, number: str) -> str: ...


# Type -> the python-stdnum modules that validate it. When several are listed (a country whose tax ID is
# one of several numbers, e.g. a company number or a personal ID), a value is valid if any accepts it.
_VALIDATORS: Final[Mapping[str, tuple[_Validator, ...]]] = MappingProxyType(
    {
        "ad_nrt": (stdnum.ad.nrt,),
        "ar_cuit": (stdnum.ar.cuit,),
        "au_abn": (stdnum.au.abn,),
        "br_cnpj": (stdnum.br.cnpj,),
        "br_cpf": (stdnum.br.cpf,),
        "ca_bn": (stdnum.ca.bn,),
        "ca_gst_hst": (stdnum.ca.bn,),  # BN15 with the RT program, e.g. 123456789RT0001
        "ch_vat": (stdnum.ch.vat,),
        "cl_tin": (stdnum.cl.rut,),
        "cn_tin": (stdnum.cn.uscc,),
        "co_nit": (stdnum.co.nit,),
        "cr_tin": (stdnum.cr.cpj, stdnum.cr.cpf, stdnum.cr.cr),
        "do_rcn": (stdnum.do.rnc, stdnum.do.cedula),
        "ec_ruc": (stdnum.ec.ruc,),
        "eg_tin": (stdnum.eg.tn,),
        "es_cif": (stdnum.es.cif,),
        "eu_oss_vat": (stdnum.eu.oss,),
        "eu_vat": (stdnum.eu.vat,),
        "gb_vat": (stdnum.gb.vat,),
        "id_npwp": (stdnum.id.npwp,),
        "il_vat": (stdnum.il.hp, stdnum.il.idnr),
        "in_gst": (stdnum.in_.gstin,),
        "is_vat": (stdnum.is_.vsk,),
        "jp_cn": (stdnum.jp.cn,),
        "ke_pin": (stdnum.ke.pin,),
        "kr_brn": (stdnum.kr.brn,),
        "li_uid": (stdnum.ch.uid,),  # Liechtenstein UIDs are issued in the Swiss CHE register
        "mx_rfc": (stdnum.mx.rfc,),
        "no_vat": (stdnum.no.mva,),
        "nz_gst": (stdnum.nz.ird,),  # the GST number is the IRD number
        "pe_ruc": (stdnum.pe.ruc,),
        "ro_tin": (stdnum.ro.cf,),  # CUI/CIF for companies, CNP for individuals
        "rs_pib": (stdnum.rs.pib,),
        "ru_inn": (stdnum.ru.inn,),
        "sg_uen": (stdnum.sg.uen,),
        "si_tin": (stdnum.si.ddv,),  # the davčna številka is both tax and VAT number
        "sv_nit": (stdnum.sv.nit,),
        "th_vat": (stdnum.th.tin,),
        "tr_tin": (stdnum.tr.vkn, stdnum.tr.tckimlik),
        "tw_vat": (stdnum.tw.ubn,),
        "us_ein": (stdnum.us.ein,),
        "uy_ruc": (stdnum.uy.rut,),
        "ve_rif": (stdnum.ve.rif,),
        "vn_tin": (stdnum.vn.mst,),
    }
)

# EU VAT prefix -> ISO 3166 country. Greece uses EL; XI is Northern Ireland (GB) under the Windsor
# Framework. Built from the member states python-stdnum validates, which list Greece as "gr".
_EU_VAT_PREFIX_COUNTRY: Final[Mapping[str, str]] = MappingProxyType(
    {
        ("EL" if cc == "gr" else cc.upper()): ("GB" if cc == "xi" else cc.upper())
        for cc in sorted(stdnum.eu.vat.MEMBER_STATES)
    }
)

# EU member state (ISO 3166) -> the prefix its VAT numbers carry.
_EU_COUNTRY_VAT_PREFIX: Final[Mapping[str, str]] = MappingProxyType(
    {country: prefix for prefix, country in _EU_VAT_PREFIX_COUNTRY.items() if prefix != "XI"}
)


class InvalidTaxId(InvalidInput):
    """A tax ID's type is unknown, or its value is malformed or fails its check digits (422)."""

    code = "invalid_tax_id"


def validate_tax_id(*, type: str, value: str, country: str | None = None) -> str:
    """Validate a customer tax ID and return its normalized value.

    ``type`` is a Stripe tax ID type (see :data:`TAX_ID_TYPES`). ``value`` may contain the usual
    separators (spaces, dots, dashes, slashes); for ``eu_vat`` it must start with the country's VAT
    prefix (``DE123456789``, ``EL...`` for Greece, ``XI...`` for Northern Ireland; a ``GR`` prefix is
    accepted and rewritten to ``EL``). ``country``, the customer's ISO 3166 alpha-2 country, is only used
    for ``eu_vat``: when it is an EU member state, the VAT prefix must be that country's.

    Returns the compact value from the python-stdnum module for the type (separators removed,
    upper-cased, e.g. ``FR61954506077``), or for types without a validator the value stripped,
    with inner whitespace collapsed to single spaces, and upper-cased.

    Raises InvalidTaxId (code ``invalid_tax_id``) when the type is unknown, the value is empty, longer
    than 64 characters or not printable, the value fails validation (the message carries
    python-stdnum's reason, e.g. an invalid checksum), or an ``eu_vat`` prefix does not match
    ``country``. Its ``details`` hold one entry whose ``field`` is ``type`` or ``value``, relative to the
    tax ID, for callers to prefix (e.g. ``tax_ids[0].value``).
    """
    _ensure_known_type(type)
    normalized = _normalize(value)
    validators = _VALIDATORS.get(type)
    if validators is None:
        return normalized
    compact = _run_validators(type, normalized, validators)
    if type == "eu_vat":
        compact = _check_eu_vat(compact, country)
    return compact


def tax_id_country(*, type: str, value: str) -> str | None:
    """Return the ISO 3166 alpha-2 country a tax ID belongs to, or None when it has none.

    The country comes from the type's prefix (``gb_vat`` → ``GB``, ``li_uid`` → ``LI``), except for
    ``eu_vat``, whose country comes from the value's VAT prefix (``DE...`` → ``DE``, ``EL...`` →
    ``GR``, ``XI...`` → ``GB``; None if the prefix is not an EU VAT prefix), and ``eu_oss_vat``, which
    is EU-wide and returns None. The value is not validated.

    Raises InvalidTaxId (code ``invalid_tax_id``) when the type is unknown.
    """
    _ensure_known_type(type)
    if type == "eu_vat":
        prefix = "".join(value.split()).upper()[:2]
        return "GR" if prefix == "GR" else _EU_VAT_PREFIX_COUNTRY.get(prefix)
    prefix = type.partition("_")[0]
    return None if prefix == "eu" else prefix.upper()


def _ensure_known_type(type: str) -> None:
    if type not in TAX_ID_TYPES:
        message = f"unknown tax ID type {type!r}; expected one of Stripe's tax ID types, e.g. 'eu_vat'"
        raise _invalid(message, field="type")


def _normalize(value: str) -> str:
    normalized = " ".join(value.split()).upper()
    if not normalized:
        raise _invalid("tax ID value is empty", field="value")
    if len(normalized) > _MAX_LENGTH:
        raise _invalid(f"tax ID value is longer than {_MAX_LENGTH} characters", field="value")
    if not normalized.isprintable():
        raise _invalid("tax ID value contains non-printable characters", field="value")
    return normalized


def _run_validators(type: str, value: str, validators: tuple[_Validator, ...]) -> str:
    """Return the first validator's compact form; if all reject, raise with the most telling reason."""
    errors: list[ValidationError] = []
    for validator in validators:
        try:
            return validator.validate(value)
        except ValidationError as exc:
            errors.append(exc)
    # With alternatives (say a 10-digit company number or an 11-digit personal one), "invalid length"
    # from the wrong alternative says less than a checksum or format failure from the right one.
    error = next((e for e in errors if not isinstance(e, InvalidLength)), errors[0])
    raise _invalid(f"invalid {type} tax ID: {_reason(error)}", field="value") from error


def _check_eu_vat(compact: str, country: str | None) -> str:
    """Reject prefixes python-stdnum accepts that are not EU VAT, rewrite GR to EL, check ``country``."""
    prefix = compact[:2]
    if prefix in ("EU", "IM"):
        raise _invalid(
            f"{prefix}-prefixed numbers are One Stop Shop numbers; use the eu_oss_vat type", field="value"
        )
    if prefix == "GR":
        prefix, compact = "EL", "EL" + compact[2:]
    if country is not None:
        expected = _EU_COUNTRY_VAT_PREFIX.get(country.strip().upper())
        if expected is not None and expected != prefix:
            raise _invalid(
                f"EU VAT number has prefix {prefix} but the country {country.strip().upper()} "
                f"requires prefix {expected}",
                field="value",
            )
    return compact


def _reason(error: ValidationError) -> str:
    """python-stdnum's message as a lower-case clause: "the number's checksum ... is invalid"."""
    message = str(error).strip().rstrip(".") or "the number is invalid"
    return message[0].lower() + message[1:]


def _invalid(message: str, *, field: str) -> InvalidTaxId:
    return InvalidTaxId(message, details=[{"field": field, "code": InvalidTaxId.code, "message": message}])

"""Revflow's CRM dataclasses ↔ Salesforce Account / Opportunity field values.

Amounts are ``Decimal`` both ways: outbound they are written as JSON numbers digit for digit
(``client.json_body``), inbound numbers are parsed with ``parse_float=Decimal``; no float ever holds
money. Blank property values clear the Salesforce field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from revflow.adapters.crm.salesforce.consts import (
    BILLING_FIELD_MAP,
    DATE_PROPERTIES,
    DEFAULT_STAGE,
    LOST_STAGE,
    NUMBER_PROPERTIES,
    WON_STAGE,
)
from revflow.services.ports import CrmCompany, CrmDeal

__all__ = [
    "UnmappableValue",
    "account_fields",
    "company_from_record",
    "creation_defaults",
    "deal_from_record",
    "format_soql_datetime",
    "opportunity_fields",
    "parse_datetime",
]

Obj = Mapping[str, Any]


class UnmappableValue(ValueError):
    """A Revflow value that has no Salesforce representation (unknown property, bad number or date)."""


def _property_values(properties: Mapping[str, str], *, multi_currency: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in properties.items():
        field = BILLING_FIELD_MAP.get(name)
        if field is None:
            raise UnmappableValue(
                f"property {name!r} has no Salesforce field (known: {sorted(BILLING_FIELD_MAP)})"
            )
        if field == "CurrencyIsoCode" and not multi_currency:
            continue
        if value is None or value == "":
            out[field] = None
        elif name in NUMBER_PROPERTIES:
            try:
                number = Decimal(value)
            except InvalidOperation as exc:
                raise UnmappableValue(f"property {name!r} is not a decimal number: {value!r}") from exc
            if not number.is_finite():
                raise UnmappableValue(f"property {name!r} is not a finite number: {value!r}")
            out[field] = number
        elif name in DATE_PROPERTIES:
            try:
                out[field] = date.fromisoformat(value[:10]).isoformat()
            except ValueError as exc:
                raise UnmappableValue(f"property {name!r} is not an ISO date: {value!r}") from exc
        elif name == "currency":
            out[field] = value.upper()
        else:
            out[field] = value
    return out


def account_fields(company: CrmCompany, *, multi_currency: bool = True) -> dict[str, Any]:
    """Account field values for ``company`` (``Revflow_Id__c`` included when the company has one)."""
    fields: dict[str, Any] = {"Name": company.name}
    if company.domain is not None:
        fields["Website"] = company.domain or None
    fields.update(_property_values(company.properties, multi_currency=multi_currency))
    return fields


def opportunity_fields(deal: CrmDeal, *, multi_currency: bool = True) -> dict[str, Any]:
    """Opportunity field values for ``deal``. ``plan_code`` wins over ``properties["plan"]``, ``currency``
    over ``properties["currency"]``; ``won`` without a stage means the won stage."""
    fields: dict[str, Any] = {"Name": deal.name}
    fields.update(_property_values(deal.properties, multi_currency=multi_currency))
    if deal.company_external_id is not None:
        fields["AccountId"] = deal.company_external_id
    if deal.stage is not None:
        fields["StageName"] = deal.stage
    elif deal.won:
        fields["StageName"] = WON_STAGE
    if deal.plan_code is not None:
        fields[BILLING_FIELD_MAP["plan"]] = deal.plan_code
    if deal.amount is not None:
        fields["Amount"] = deal.amount
    if deal.currency is not None and multi_currency:
        fields["CurrencyIsoCode"] = deal.currency.upper()
    return fields


def creation_defaults(today: date) -> dict[str, Any]:
    """What a new Opportunity needs when Revflow has no value for it: Salesforce requires StageName and
    CloseDate on insert. Sent only when the upsert would create (so a rep's close date is never
    overwritten)."""
    return {"StageName": DEFAULT_STAGE, "CloseDate": today.isoformat()}


def parse_datetime(value: str) -> datetime:
    """``2026-01-01T12:00:00.000+0000`` (Salesforce JSON) → an aware datetime."""
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


def format_soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (UTC, to the second: Salesforce audit fields carry no fraction)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(value: Any) -> str:
    if isinstance(value, Decimal):  # Salesforce answers doubles: 99.9, 10.0; Revflow reads "99.9", "10"
        return format(value.normalize(), "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _properties(record: Obj) -> dict[str, str]:
    return {
        name: _str(record[field])
        for name, field in BILLING_FIELD_MAP.items()
        if record.get(field) is not None
    }


def _domain(website: Any) -> str | None:
    if not website:
        return None
    text = str(website)
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    return text.rstrip("/") or None


def company_from_record(record: Obj) -> CrmCompany:
    """An Account record (REST JSON) as a CrmCompany; ``properties`` carry the non-empty billing fields."""
    modified = record.get("LastModifiedDate")
    return CrmCompany(
        external_id=str(record["Id"]),
        name=str(record.get("Name") or ""),
        domain=_domain(record.get("Website")),
        properties=_properties(record),
        updated_at=parse_datetime(modified) if modified else None,
    )


def deal_from_record(record: Obj) -> CrmDeal:
    """An Opportunity record as a CrmDeal. ``won`` and ``closed`` are Salesforce's own ``IsWon`` and
    ``IsClosed`` (any stage the org marks Closed/Won or Closed), falling back to the default won and lost
    stages' names when they were not selected."""
    modified = record.get("LastModifiedDate")
    amount = record.get("Amount")
    is_won = record.get("IsWon")
    is_closed = record.get("IsClosed")
    stage = record.get("StageName")
    won = bool(is_won) if is_won is not None else stage == WON_STAGE
    return CrmDeal(
        external_id=str(record["Id"]),
        name=str(record.get("Name") or ""),
        company_external_id=record.get("AccountId"),
        stage=stage,
        won=won,
        closed=bool(is_closed) if is_closed is not None else won or stage == LOST_STAGE,
        plan_code=record.get(BILLING_FIELD_MAP["plan"]),
        amount=Decimal(str(amount)) if amount is not None else None,
        currency=record.get("CurrencyIsoCode"),
        properties=_properties(record),
        updated_at=parse_datetime(modified) if modified else None,
    )

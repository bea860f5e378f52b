"""Revflow's CRM dataclasses ↔ HubSpot properties.

Revflow's billing fields (``services.ports.BILLING_FIELDS``) live in custom properties named ``revflow_*`` on
companies and deals (``consts.FIELD_PROPERTIES``); the standard ones map to HubSpot's own (``name``,
``domain``, ``dealname``, ``dealstage``, ``amount``, ``deal_currency_code``). Values are strings both ways,
as HubSpot's API carries them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from revflow.adapters.crm.hubspot.consts import CLOSED_STAGES, FIELD_PROPERTIES, WON_STAGES
from revflow.services.ports import BILLING_FIELDS, CrmCompany, CrmDeal

__all__ = [
    "company_from_hubspot",
    "company_to_hubspot",
    "deal_from_hubspot",
    "deal_to_hubspot",
    "parse_timestamp",
    "property_definitions",
    "revflow_property_name",
]

_FROM_HUBSPOT = {v: k for k, v in FIELD_PROPERTIES.items()}
_STANDARD = {
    "companies": {"name": "name", "domain": "domain"},
    "deals": {
        "dealname": "name",
        "dealstage": "stage",
        "amount": "amount",
        "deal_currency_code": "currency",
    },
}

#: How each billing field is typed in HubSpot (type, fieldType, label).
_DEFINITIONS: dict[str, tuple[str, str, str, str]] = {
    "revflow_id": ("string", "text", "Revflow ID", "Revflow's id for this object (set by Revflow; unique)."),
    "plan": ("string", "text", "Revflow plan", "Revflow plan code. On a deal, changing it changes the plan."),
    "mrr": ("number", "number", "Revflow MRR", "Monthly recurring revenue, in major units of the currency."),
    "currency": ("string", "text", "Revflow currency", "ISO 4217 currency of the Revflow amounts."),
    "status": ("string", "text", "Revflow status", "Subscription status in Revflow (active, past_due, ...)."),
    "next_renewal": ("date", "date", "Revflow next renewal", "Date of the next renewal (UTC)."),
    "payment_status": ("string", "text", "Revflow payment status", "Latest payment status in Revflow."),
    "overdue_balance": ("number", "number", "Revflow overdue balance", "Overdue balance, in major units."),
    "last_invoice_number": (
        "string",
        "text",
        "Revflow last invoice",
        "Number of the latest finalized invoice of the subscription.",
    ),
    "last_invoice_total": (
        "number",
        "number",
        "Revflow last invoice total",
        "Total of the latest finalized invoice, in major units of the currency.",
    ),
    "last_invoice_status": (
        "string",
        "text",
        "Revflow last invoice status",
        "Status of the latest finalized invoice (open, paid, void, uncollectible).",
    ),
}


def property_definitions(object_type: str) -> list[dict[str, Any]]:
    """The custom properties Revflow needs on ``companies`` or ``deals``, as HubSpot's create-property body
    (``POST /crm/v3/properties/{objectType}``). They go in HubSpot's default information group."""
    group = "companyinformation" if object_type == "companies" else "dealinformation"
    out = []
    for field in BILLING_FIELDS:
        type_, field_type, label, description = _DEFINITIONS[field]
        out.append(
            {
                "name": FIELD_PROPERTIES[field],
                "label": label,
                "type": type_,
                "fieldType": field_type,
                "groupName": group,
                "description": description,
                "hasUniqueValue": field == "revflow_id",
                "formField": False,
            }
        )
    return out


def _billing(properties: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in properties.items():
        hubspot_name = FIELD_PROPERTIES.get(name)
        if hubspot_name is None:
            raise ValueError(f"{name!r} is not a Revflow billing field ({', '.join(BILLING_FIELDS)})")
        out[hubspot_name] = value
    return out


def company_to_hubspot(company: CrmCompany) -> dict[str, str]:
    """HubSpot properties for ``company``. Raises ValueError for a property that is not a billing field."""
    props = {"name": company.name, **_billing(company.properties)}
    if company.domain is not None:
        props["domain"] = company.domain
    return props


def deal_to_hubspot(deal: CrmDeal) -> dict[str, str]:
    """HubSpot properties for ``deal``; ``plan_code`` wins over ``properties["plan"]``. Raises ValueError for
    a property that is not a billing field."""
    props = {"dealname": deal.name, **_billing(deal.properties)}
    if deal.stage is not None:
        props["dealstage"] = deal.stage
    if deal.plan_code is not None:
        props[FIELD_PROPERTIES["plan"]] = deal.plan_code
    if deal.amount is not None:
        props["amount"] = format(deal.amount, "f")
    if deal.currency is not None:
        props["deal_currency_code"] = deal.currency.upper()
    return props


def parse_timestamp(value: Any) -> datetime | None:
    """HubSpot timestamps: ISO 8601 (``2024-05-01T10:00:00.123Z``), epoch milliseconds, or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _revflow_fields(properties: Mapping[str, str | None]) -> dict[str, str]:
    return {_FROM_HUBSPOT[k]: v for k, v in properties.items() if k in _FROM_HUBSPOT and v not in (None, "")}


def company_from_hubspot(
    object_id: str, properties: Mapping[str, str | None], updated_at: Any = None
) -> CrmCompany:
    return CrmCompany(
        external_id=object_id,
        name=properties.get("name") or "",
        domain=properties.get("domain") or None,
        properties=_revflow_fields(properties),
        updated_at=parse_timestamp(properties.get("hs_lastmodifieddate") or updated_at),
    )


def deal_from_hubspot(
    object_id: str,
    properties: Mapping[str, str | None],
    *,
    company_id: str | None = None,
    updated_at: Any = None,
) -> CrmDeal:
    """A HubSpot deal as a ``CrmDeal``. Raises ValueError when ``amount`` is not a number."""
    stage = properties.get("dealstage") or None
    raw_amount = properties.get("amount")
    try:
        amount = Decimal(raw_amount) if raw_amount not in (None, "") else None
    except InvalidOperation as exc:
        raise ValueError(f"deal {object_id} has a non-numeric amount {raw_amount!r}") from exc
    fields = _revflow_fields(properties)
    won = stage in WON_STAGES or properties.get("hs_is_closed_won") == "true"
    return CrmDeal(
        external_id=object_id,
        name=properties.get("dealname") or "",
        company_external_id=company_id,
        stage=stage,
        won=won,
        closed=won or stage in CLOSED_STAGES or properties.get("hs_is_closed") == "true",
        plan_code=fields.get("plan"),
        amount=amount,
        currency=(properties.get("deal_currency_code") or None),
        properties=fields,
        updated_at=parse_timestamp(properties.get("hs_lastmodifieddate") or updated_at),
    )


def revflow_property_name(object_type: str, hubspot_name: str) -> str:
    """The name a webhook's ``propertyName`` has in Revflow: billing fields and the standard ones by Revflow's
    name (``revflow_plan`` → ``plan``, ``dealstage`` → ``stage``), any other property unchanged."""
    if hubspot_name in _FROM_HUBSPOT:
        return _FROM_HUBSPOT[hubspot_name]
    return _STANDARD.get(object_type, {}).get(hubspot_name, hubspot_name)

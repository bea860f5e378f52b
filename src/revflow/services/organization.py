"""The caller's own organization: seller details printed on documents and billing settings."""

from __future__ import annotations

from typing import Any

import pycountry

from revflow.domain.errors import InvalidInput
from revflow.services.context import Ctx
from revflow.services.recorder import diff, record
from revflow.services.tax_ids import tax_id_country, validate_tax_id
from revflow.storage.models import Organization

__all__ = ["SETTINGS", "organization_view", "update_organization"]

#: Fields an organization may change about itself.
SETTINGS = (
    "name",
    "email",
    "address",
    "tax_ids",
    "invoice_prefix",
    "credit_note_prefix",
    "quote_prefix",
    "default_net_days",
    "invoice_grace_hours",
)


def organization_view(org: Organization) -> dict[str, Any]:
    """The organization as the API shows it."""
    return {
        "id": org.id,
        "object": "organization",
        **{k: getattr(org, k) for k in SETTINGS},
        "metadata": org.metadata_,
        "created_at": org.created_at,
    }


def update_organization(ctx: Ctx, *, changes: dict[str, Any]) -> Organization:
    """Change the organization's details or billing settings; returns it.

    A new prefix applies to documents finalized from now on (numbers keep counting, so they stay gapless).
    Raises InvalidInput for an unknown country or an invalid tax id.
    """
    org = ctx.get(Organization, ctx.org_id, for_update=True, label="organization")
    before = {k: getattr(org, k) for k in SETTINGS}
    for key, value in changes.items():
        if key == "address" and value is not None:
            country = value.get("country")
            if country is not None:
                found = pycountry.countries.get(alpha_2=country.upper())
                if found is None:
                    raise InvalidInput(
                        f"'{country}' is not an ISO 3166-1 alpha-2 code",
                        code="invalid_country",
                        details=[{"field": "address.country", "code": "invalid_country"}],
                    )
                value = {**value, "country": found.alpha_2}
            value = {k: v for k, v in value.items() if v is not None}
        if key == "tax_ids" and value is not None:
            checked = []
            for i, t in enumerate(value):
                try:
                    number = validate_tax_id(type=t["type"], value=t["value"])
                except InvalidInput as exc:
                    raise InvalidInput(
                        exc.message,
                        code=exc.code,
                        details=[{"field": f"tax_ids[{i}].value", "code": exc.code}],
                    ) from exc
                checked.append(
                    {
                        "type": t["type"],
                        "value": number,
                        "country": tax_id_country(type=t["type"], value=number) or "",
                    }
                )
            value = checked
        setattr(org, key, value)
    ctx.session.flush()
    record(
        ctx,
        action="organization.update",
        object_type="organization",
        object_id=org.id,
        changes=diff(before, {k: getattr(org, k) for k in SETTINGS}),
        event_type="organization.updated",
        data={k: v for k, v in organization_view(org).items() if k != "created_at"},
    )
    return org

"""/v1/organization: the caller's own organization."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator

from revflow.api.routers._common import CtxDep, router
from revflow.api.schemas import Address, Email, Name, TaxId, _In
from revflow.services import organization as svc
from revflow.storage.models import Organization

api = router("organization")

Prefix = Annotated[StrictStr, Field(min_length=1, max_length=12, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")]


class OrganizationView(BaseModel):
    id: str
    object: Literal["organization"] = "organization"
    name: str
    email: str | None
    address: dict[str, str]
    tax_ids: list[dict[str, str]]
    invoice_prefix: str
    credit_note_prefix: str
    quote_prefix: str
    default_net_days: int
    invoice_grace_hours: int
    metadata: dict[str, str]
    created_at: datetime


class OrganizationUpdate(_In):
    name: Name | None = None
    email: Email | None = None
    address: Address | None = None
    tax_ids: Annotated[list[TaxId], Field(max_length=10)] | None = None
    invoice_prefix: Prefix | None = Field(default=None, description="e.g. INV- gives INV-000001")
    credit_note_prefix: Prefix | None = None
    quote_prefix: Prefix | None = None
    default_net_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    invoice_grace_hours: Annotated[StrictInt, Field(ge=0, le=720)] | None = Field(
        default=None, description="Hours a draft made by the billing engine waits before it finalizes itself."
    )

    @field_validator(
        "name",
        "invoice_prefix",
        "credit_note_prefix",
        "quote_prefix",
        "default_net_days",
        "invoice_grace_hours",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


@api.get("/organization", response_model=OrganizationView, summary="Retrieve your organization")
def get_organization(ctx: CtxDep) -> dict[str, Any]:
    return svc.organization_view(ctx.get(Organization, ctx.org_id, label="organization"))


@api.patch(
    "/organization",
    response_model=OrganizationView,
    summary="Update seller details and billing settings (prefixes, net days, grace period)",
)
def update_organization(body: OrganizationUpdate, ctx: CtxDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if body.address is not None:
        changes["address"] = body.address.model_dump(exclude_none=True)
    if body.tax_ids is not None:
        changes["tax_ids"] = [t.model_dump() for t in body.tax_ids]
    return svc.organization_view(svc.update_organization(ctx, changes=changes))

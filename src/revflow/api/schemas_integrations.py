"""Request bodies of integrations (connected CRMs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictStr

from revflow.api.schemas import _In

__all__ = ["IntegrationCreate", "IntegrationUpdate"]

Credentials = Annotated[
    dict[Annotated[str, Field(max_length=40)], Annotated[StrictStr, Field(max_length=2000)]],
    Field(max_length=10),
]


class IntegrationSettings(_In):
    #: How plan changes from the CRM are prorated: ``always_invoice`` (default), ``create_prorations``,
    #: ``none``.
    proration_behavior: Literal["always_invoice", "create_prorations", "none"] | None = None
    poll_interval_seconds: Annotated[int | None, Field(ge=10, le=86_400)] = None
    #: Who hears about upgrades coming from the CRM (an email address).
    customer_success_email: Annotated[StrictStr | None, Field(max_length=320)] = None
    #: Push customers and subscriptions to the CRM when they change (default true).
    push: StrictBool | None = None
    #: The CRM's stage for a won deal/opportunity (default ``closedwon`` / ``Closed Won``).
    won_stage: Annotated[StrictStr | None, Field(max_length=100)] = None
    lost_stage: Annotated[StrictStr | None, Field(max_length=100)] = None
    #: Hours between two reconciliations with the CRM (default 24).
    reconcile_interval_hours: Annotated[int | None, Field(ge=1, le=168)] = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class IntegrationCreate(_In):
    system: Literal["hubspot", "salesforce"]
    #: Write-only. HubSpot: ``access_token``, ``client_secret``; Salesforce: ``username``, ``password``,
    #: ``security_token`` (or ``instance_url`` + ``session_id``).
    credentials: Credentials
    owner: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(min_length=1, max_length=2000)]
    enabled: StrictBool = True
    settings: IntegrationSettings = Field(default_factory=IntegrationSettings)


class IntegrationUpdate(_In):
    credentials: Credentials | None = None
    owner: Annotated[StrictStr | None, Field(min_length=1, max_length=200)] = None
    description: Annotated[StrictStr | None, Field(min_length=1, max_length=2000)] = None
    enabled: StrictBool | None = None
    settings: IntegrationSettings | None = None

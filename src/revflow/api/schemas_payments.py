"""Request bodies of payments, payment methods, refunds and dunning policies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from revflow.api.schemas import PositiveAmount, _In

__all__ = [
    "DunningPolicyCreate",
    "DunningPolicyUpdate",
    "PaymentMethodAttach",
    "RefundCreate",
    "SetupSessionCreate",
]

Id = Annotated[StrictStr, Field(max_length=40)]
RetryDays = Annotated[list[Annotated[StrictInt, Field(ge=1, le=365)]], Field(min_length=1, max_length=20)]
FinalAction = Literal["cancel", "pause", "mark_uncollectible"]


class SetupSessionCreate(_In):
    method_types: Annotated[list[Literal["card", "us_bank_account"]], Field(min_length=1)] = ["card"]


class PaymentMethodAttach(_In):
    token: Annotated[StrictStr, Field(min_length=3, max_length=100, description="Gateway token, e.g. pm_...")]
    set_default: StrictBool = True


class RefundCreate(_In):
    amount: PositiveAmount | None = Field(default=None, description="Defaults to what is left to refund.")
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class DunningPolicyCreate(_In):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    retry_days: RetryDays = Field(description="Days after the first failure on which each retry runs.")
    max_attempts: Annotated[StrictInt, Field(ge=1, le=21)] | None = Field(
        default=None, description="Charges in all, the first included; default len(retry_days) + 1."
    )
    final_action: FinalAction = "cancel"
    is_default: StrictBool = False
    send_emails: StrictBool = True
    templates: dict[StrictStr, dict[StrictStr, StrictStr]] = Field(default_factory=dict)
    plan_ids: list[Id] = Field(default_factory=list)
    customer_ids: list[Id] = Field(default_factory=list)


class DunningPolicyUpdate(_In):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    retry_days: RetryDays | None = None
    max_attempts: Annotated[StrictInt, Field(ge=1, le=21)] | None = None
    final_action: FinalAction | None = None
    is_default: StrictBool | None = None
    send_emails: StrictBool | None = None
    templates: dict[StrictStr, dict[StrictStr, StrictStr]] | None = None
    plan_ids: list[Id] | None = None
    customer_ids: list[Id] | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

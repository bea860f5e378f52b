"""Public shapes of payment methods, refunds, disputes, dunning and emails."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from revflow.services.views import PaymentView, _View
from revflow.storage import payment_models as pm

__all__ = [
    "DisputeView",
    "DunningPolicyView",
    "DunningView",
    "EmailView",
    "PaymentMethodView",
    "RefundView",
    "SetupSessionView",
]


class PaymentMethodView(_View):
    id: str
    object: Literal["payment_method"] = "payment_method"
    customer_id: str
    gateway: str
    token: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    bank_name: str | None
    is_default: bool
    status: str
    created_at: datetime

    @classmethod
    def of(cls, m: pm.PaymentMethod) -> PaymentMethodView:
        return cls.model_validate(m)


class SetupSessionView(_View):
    id: str
    object: Literal["setup_session"] = "setup_session"
    customer_id: str
    gateway: str
    client_secret: str | None
    url: str | None
    status: str | None


class RefundView(_View):
    id: str
    object: Literal["refund"] = "refund"
    payment_id: str
    invoice_id: str
    amount: int
    currency: str
    status: str
    gateway_ref: str | None
    reason: str | None
    credit_note_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: pm.Refund) -> RefundView:
        return cls.model_validate(r)


class DisputeView(_View):
    id: str
    object: Literal["dispute"] = "dispute"
    payment_id: str
    invoice_id: str
    gateway_ref: str
    amount: int
    currency: str
    reason: str | None
    status: str
    created_at: datetime

    @classmethod
    def of(cls, d: pm.Dispute) -> DisputeView:
        return cls.model_validate(d)


class DunningPolicyView(_View):
    id: str
    object: Literal["dunning_policy"] = "dunning_policy"
    name: str
    retry_days: list[int]
    max_attempts: int
    final_action: str
    is_default: bool
    send_emails: bool
    templates: dict[str, Any]
    plan_ids: list[str]
    customer_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, p: pm.DunningPolicy, *, plan_ids: list[str], customer_ids: list[str]) -> DunningPolicyView:
        fields = {
            k: getattr(p, k) for k in cls.model_fields if k not in {"object", "plan_ids", "customer_ids"}
        }
        return cls(**fields, plan_ids=plan_ids, customer_ids=customer_ids)


class DunningView(_View):
    """Collection of one invoice: its dunning case (if any), every attempt and what comes next."""

    object: Literal["invoice_collection"] = "invoice_collection"
    invoice_id: str
    invoice_status: str
    collection_method: str
    amount_remaining: int
    status: str  # "none" | "active" | "recovered" | "exhausted" | "closed"
    policy: dict[str, Any] | None
    attempts: int
    mode: str | None
    next_action: str | None
    next_action_at: datetime | None
    final_action: str | None
    started_at: datetime | None
    ended_at: datetime | None
    #: Every retry the schedule still plans, as dates (the first may already be a pending payment).
    schedule: list[datetime]
    payments: list[PaymentView]
    disputed: bool


class EmailView(_View):
    id: str
    object: Literal["email"] = "email"
    to: str | None
    subject: str
    body: str
    template: str
    object_type: str | None
    object_id: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, e: pm.Email) -> EmailView:
        return cls.model_validate(e)

"""The public shape of usage metering objects."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from revflow.domain.usage import from_micros
from revflow.services.views import _View
from revflow.storage import usage_models as um

__all__ = [
    "BillableMetricView",
    "CustomerUsageView",
    "SubscriptionUsageView",
    "UsageEventView",
    "UsageLineView",
    "UsageThresholdView",
]


class BillableMetricView(_View):
    id: str
    object: Literal["billable_metric"] = "billable_metric"
    code: str
    name: str
    description: str | None
    aggregation: str
    property: str | None
    filters: dict[str, list[str]]
    group_by: str | None
    recurring: bool
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, m: um.BillableMetric) -> BillableMetricView:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            description=m.description,
            aggregation=m.aggregation,
            property=m.property,
            filters=m.filters,
            group_by=m.group_by,
            recurring=m.recurring,
            metadata=m.metadata_,
            created_at=m.created_at,
        )


class LateView(_View):
    subscription_id: str
    warning: Literal["period_invoiced"] = "period_invoiced"
    invoice_id: str | None
    settled_invoice_id: str | None
    settled_at: datetime | None

    @classmethod
    def of(cls, late: um.UsageLateEvent) -> LateView:
        return cls(
            subscription_id=late.subscription_id,
            invoice_id=late.invoice_id,
            settled_invoice_id=late.settled_invoice_id,
            settled_at=late.settled_at,
        )


class UsageEventView(_View):
    id: str
    object: Literal["usage_event"] = "usage_event"
    transaction_id: str
    metric_code: str
    customer_id: str | None
    external_customer_id: str | None
    subscription_id: str | None
    timestamp: datetime
    value: Decimal | None
    group: str | None
    #: As sent: non-integer numbers are exact Decimals (see :meth:`payload`).
    properties: dict[str, Any]
    status: str
    reason: str | None
    #: Set when the event arrived after its period was invoiced: ``invoice_id`` billed the period,
    #: ``settled_invoice_id`` carries the correction (None until the next billing point).
    late: LateView | None = None
    created_at: datetime

    exact_fields = ("properties",)

    @classmethod
    def of(cls, e: um.UsageEvent, *, late: um.UsageLateEvent | None = None) -> UsageEventView:
        return cls(
            id=e.id,
            transaction_id=e.transaction_id,
            metric_code=e.metric_code,
            customer_id=e.customer_id,
            external_customer_id=e.external_customer_id,
            subscription_id=e.subscription_id,
            timestamp=e.timestamp,
            value=None if e.value is None else from_micros(e.value),
            group=e.group_key or None,
            properties=e.properties,
            status=e.status,
            reason=e.reason,
            late=None if late is None else LateView.of(late),
            created_at=e.created_at,
        )


class UsageThresholdView(_View):
    id: str
    object: Literal["usage_threshold"] = "usage_threshold"
    subscription_id: str
    metric_code: str | None
    kind: str
    value: Decimal
    invoice: bool
    recurring: bool
    last_period_start: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, t: um.UsageThreshold) -> UsageThresholdView:
        return cls(
            id=t.id,
            subscription_id=t.subscription_id,
            metric_code=t.metric_code,
            kind=t.kind,
            value=t.value,
            invoice=t.invoice,
            recurring=t.recurring,
            last_period_start=t.last_period_start,
            created_at=t.created_at,
        )


class UsageLineView(_View):
    price_id: str
    metric_code: str | None
    aggregation: str | None
    units: Decimal
    amount: int
    projected_units: Decimal
    projected_amount: int
    groups: dict[str, Decimal]


class SubscriptionUsageView(_View):
    subscription_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    amount: int
    projected_amount: int
    lines: list[UsageLineView]


class CustomerUsageView(_View):
    object: Literal["customer_usage"] = "customer_usage"
    customer_id: str
    as_of: datetime
    subscriptions: list[SubscriptionUsageView]

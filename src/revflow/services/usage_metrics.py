"""Billable metrics: create, list, retrieve. A metric's definition never changes once created (events
were rolled up under it); a different definition is a new metric code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from revflow.domain.errors import Conflict, InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.usage import Aggregation
from revflow.services.context import Ctx
from revflow.services.pagination import Page, paginate
from revflow.services.recorder import record
from revflow.services.views_usage import BillableMetricView
from revflow.storage.usage_models import BillableMetric

__all__ = ["MetricCodeTaken", "create_metric", "get_metric", "list_metrics", "metrics_by_code"]


class MetricCodeTaken(Conflict):
    """Another billable metric of the organization has this code."""

    code = "metric_code_taken"


def _field_error(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"field": field, "code": code}])


def create_metric(
    ctx: Ctx,
    *,
    code: str,
    name: str,
    aggregation: str,
    property: str | None = None,
    filters: dict[str, list[str]] | None = None,
    group_by: str | None = None,
    recurring: bool = False,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> BillableMetric:
    """Create a billable metric and return it, then recover the organization's events that were
    waiting for this metric code.

    ``count`` reads no property; every other aggregation needs ``property``. Raises InvalidInput for an
    inconsistent definition, MetricCodeTaken when the code is in use.
    """
    try:
        agg = Aggregation(aggregation)
    except ValueError:
        raise _field_error(
            "aggregation", "invalid_aggregation", f"unknown aggregation {aggregation!r}"
        ) from None
    if agg is Aggregation.COUNT and property is not None:
        raise _field_error("property", "unused_property", "a count metric reads no property")
    if agg is not Aggregation.COUNT and not property:
        raise _field_error("property", "property_required", f"a {agg} metric needs a property")
    taken = ctx.session.scalar(
        select(BillableMetric.id).where(BillableMetric.org_id == ctx.org_id, BillableMetric.code == code)
    )
    if taken is not None:
        raise MetricCodeTaken(
            f"A billable metric with code '{code}' already exists",
            details=[{"field": "code", "code": "metric_code_taken"}],
        )
    now = ctx.now()
    metric = BillableMetric(
        id=new_id("bm"),
        org_id=ctx.org_id,
        code=code,
        name=name,
        description=description,
        aggregation=agg.value,
        property=property,
        filters={k: list(v) for k, v in (filters or {}).items()},
        group_by=group_by,
        recurring=recurring,
        metadata_=metadata or {},
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(metric)
    ctx.session.flush()
    record(
        ctx,
        action="billable_metric.create",
        object_type="billable_metric",
        object_id=metric.id,
        changes={"code": {"before": None, "after": code}},
        event_type="billable_metric.created",
        data=BillableMetricView.of(metric).payload(),
    )
    from revflow.services.usage_recovery import recover_metric

    recover_metric(ctx, metric)
    return metric


def get_metric(ctx: Ctx, metric_id: str) -> BillableMetric:
    """The metric with ``metric_id``; raises NotFound."""
    return ctx.get(BillableMetric, metric_id, label="billable metric")


def list_metrics(
    ctx: Ctx, *, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
) -> Page[BillableMetric]:
    """One page of the organization's metrics, newest first."""
    stmt = select(BillableMetric).where(BillableMetric.org_id == ctx.org_id)
    return paginate(
        ctx, stmt, BillableMetric, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def metrics_by_code(ctx: Ctx, codes: Any = None) -> dict[str, BillableMetric]:
    """The organization's metrics by code (all of them, or those in ``codes``)."""
    stmt = select(BillableMetric).where(BillableMetric.org_id == ctx.org_id)
    if codes is not None:
        stmt = stmt.where(BillableMetric.code.in_(list(codes)))
    return {m.code: m for m in ctx.session.scalars(stmt)}

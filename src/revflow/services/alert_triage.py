"""Working through alerts: list them, acknowledge them, resolve them (raising them is
:mod:`revflow.services.alerts`)."""

from __future__ import annotations

from sqlalchemy import select

from revflow.domain.alerts import AlertStatus, ensure_transition
from revflow.services.context import Ctx
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.recorder import record
from revflow.services.views_quotes import AlertView
from revflow.storage.models import Alert

__all__ = ["acknowledge_alert", "list_alerts", "resolve_alert"]


def list_alerts(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    type: str | None = None,
    status: str | None = None,
    object_id: str | None = None,
) -> Page[Alert]:
    """One page of the organization's alerts, newest first, optionally of one type, status or object."""
    stmt = filtered(
        select(Alert).where(Alert.org_id == ctx.org_id),
        (Alert.type, type),
        (Alert.status, status),
        (Alert.object_id, object_id),
    )
    return paginate(ctx, stmt, Alert, limit=limit, starting_after=starting_after, ending_before=ending_before)


def _move(ctx: Ctx, alert_id: str, target: AlertStatus) -> Alert:
    alert = ctx.get(Alert, alert_id, for_update=True, label="alert")
    if alert.status == target:
        return alert  # safe to repeat
    ensure_transition(alert.status, target)
    before = alert.status
    now = ctx.now()
    alert.status = target.value
    if target is AlertStatus.ACKNOWLEDGED:
        alert.acknowledged_at = now
    else:
        alert.resolved_at = now
    ctx.session.flush()
    record(
        ctx,
        action=f"alert.{'acknowledge' if target is AlertStatus.ACKNOWLEDGED else 'resolve'}",
        object_type="alert",
        object_id=alert.id,
        changes={"status": {"before": before, "after": alert.status}},
        event_type=f"alert.{target.value}",
        data=AlertView.of(alert).payload(),
    )
    return alert


def acknowledge_alert(ctx: Ctx, alert_id: str) -> Alert:
    """Mark an open alert as being looked at and return it; acknowledging twice changes nothing.

    Raises NotFound, and InvalidTransition (409 ``invalid_state``) for a resolved alert.
    """
    return _move(ctx, alert_id, AlertStatus.ACKNOWLEDGED)


def resolve_alert(ctx: Ctx, alert_id: str) -> Alert:
    """Mark an open or acknowledged alert as dealt with and return it; resolving twice changes nothing.

    Raises NotFound. An alert resolved here opens again if the same problem is raised again.
    """
    return _move(ctx, alert_id, AlertStatus.RESOLVED)

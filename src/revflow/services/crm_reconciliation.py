"""CRM reconciliation: compare what Revflow holds with what each connected CRM shows.

Runs as the integration's recurring ``reconcile`` sync job (so it gets the jobs' retries, rate-limit
handling and visibility). For every mapped customer (company/account) and subscription (deal/opportunity)
it reads the CRM object and compares the key fields — name; plan, MRR, status; on deals also payment
status, overdue balance and the latest finalized invoice (number, total, status). Each mismatch is an
open ``crm_discrepancy`` alert carrying both values (one per object and field, refreshed on every run); a
discrepancy that is gone on the next run resolves its alert. A mapped object missing from the CRM is a
discrepancy of field ``exists``, unless its deletion was already reported (a mapping marked
``deleted_in_crm_at`` has its own ``crm_object_deleted`` alert).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow import metrics
from revflow.services.alerts import raise_alert
from revflow.services.ports import ConnectorError, CrmConnector
from revflow.storage.connector_models import Integration
from revflow.storage.hub_models import EntityMapping
from revflow.storage.models import Alert

__all__ = ["Mismatch", "compare", "record_mismatches"]

COMPANY_FIELDS = ("name", "plan", "mrr", "status")
DEAL_FIELDS = (
    "plan",
    "mrr",
    "status",
    "payment_status",
    "overdue_balance",
    "last_invoice_number",
    "last_invoice_total",
    "last_invoice_status",
)
NUMERIC = frozenset({"mrr", "overdue_balance", "last_invoice_total"})


@dataclass(frozen=True)
class Mismatch:
    object_type: str  # customer | subscription
    object_id: str
    external_id: str
    field: str
    revflow: str | None
    crm: str | None


def _same(field: str, a: str | None, b: str | None) -> bool:
    if field in NUMERIC:
        try:
            return Decimal(a or "0") == Decimal(b or "0")
        except InvalidOperation:
            return a == b
    return (a or "") == (b or "")


def compare(
    *,
    object_type: str,
    object_id: str,
    external_id: str,
    expected: dict[str, str],
    actual: dict[str, str] | None,
    fields: tuple[str, ...],
) -> list[Mismatch]:
    """The fields of ``expected`` (Revflow) that ``actual`` (the CRM; None: the object is gone) lacks or
    shows differently. Fields Revflow has no value for are not compared."""
    if actual is None:
        return [Mismatch(object_type, object_id, external_id, "exists", "yes", "no")]
    return [
        Mismatch(object_type, object_id, external_id, f, expected.get(f), actual.get(f))
        for f in fields
        if expected.get(f) not in (None, "") and not _same(f, expected.get(f), actual.get(f))
    ]


def fetch(connector: CrmConnector, object_type: str, external_id: str) -> dict[str, str] | None:
    """The CRM object's comparable fields (None when the CRM says it does not exist)."""
    try:
        if object_type == "customer":
            company = connector.get_company(external_id)
            return {**company.properties, "name": company.name}
        deal = connector.get_deal(external_id)
        return {**deal.properties, "plan": deal.plan_code or ""}
    except ConnectorError as exc:
        if exc.status == 404 or exc.code in ("object_not_found", "not_found", "NOT_FOUND"):
            return None
        raise


def mappings(session: Session, integ: Integration) -> list[tuple[str, str, str]]:
    """(object_type, object_id, external_id) of every customer and subscription mapped in the system,
    but those whose CRM object was reported deleted."""
    rows = session.execute(
        select(
            EntityMapping.object_type,
            EntityMapping.object_id,
            EntityMapping.external_id,
            EntityMapping.metadata_,
        )
        .where(
            EntityMapping.org_id == integ.org_id,
            EntityMapping.system == integ.system,
            EntityMapping.object_type.in_(("customer", "subscription")),
        )
        .order_by(EntityMapping.object_type, EntityMapping.object_id)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows if not (r[3] or {}).get("deleted_in_crm_at")]


def record_mismatches(
    session: Session, integ: Integration, mismatches: list[Mismatch], *, checked: list[str], now: datetime
) -> int:
    """Raise one alert per mismatch, resolve the alerts of ``checked`` objects whose fields now agree;
    returns the number of mismatches."""
    prefix = f"crm_discrepancy:{integ.id}:"
    current = set()
    for m in mismatches:
        key = f"{prefix}{m.object_id}:{m.field}"
        current.add(key)
        raise_alert(
            session,
            org_id=integ.org_id,
            type="crm_discrepancy",
            message=(
                f"{integ.system} {m.external_id} differs from Revflow {m.object_id} on {m.field}: "
                f"Revflow {m.revflow!r}, {integ.system} {m.crm!r}"
            ),
            dedupe_key=key,
            now=now,
            object_type=m.object_type,
            object_id=m.object_id,
            details={
                "system": integ.system,
                "integration": integ.id,
                "external_id": m.external_id,
                "field": m.field,
                "revflow": m.revflow,
                "crm": m.crm,
            },
        )
    if mismatches:
        metrics.RECONCILIATION_DISCREPANCIES.labels(integ.system).inc(len(mismatches))
    checked_set = set(checked)
    stale: list[Any] = list(
        session.scalars(
            select(Alert).where(
                Alert.org_id == integ.org_id,
                Alert.type == "crm_discrepancy",
                Alert.status != "resolved",
                Alert.dedupe_key.like(f"{prefix}%"),
            )
        )
    )
    for alert in stale:
        if alert.dedupe_key not in current and alert.object_id in checked_set:
            alert.status, alert.resolved_at = "resolved", now
    return len(mismatches)

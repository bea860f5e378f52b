"""Payment reconciliation: Revflow's payments and refunds against the gateway's records.

Each discrepancy becomes an alert (deduplicated by kind and gateway reference, so a daily run refreshes
rather than repeats it): ``missing_in_revflow`` (the gateway took money Revflow has no record of),
``missing_at_gateway``, ``amount_mismatch``, ``status_mismatch`` and ``refund_mismatch``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from revflow.services.alerts import raise_alert
from revflow.services.ports import GatewayPayment, PaymentGateway
from revflow.storage.models import Organization, Payment
from revflow.storage.payment_models import Refund

__all__ = ["Discrepancy", "ReconciliationReport", "reconcile"]

log = structlog.get_logger("revflow.reconciliation")

#: Revflow states that are still waiting for the gateway's answer: not a mismatch yet.
_IN_FLIGHT = frozenset({"pending", "sending", "unknown"})


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    org_id: str
    gateway_ref: str
    payment_id: str | None
    details: dict[str, Any]


@dataclass
class ReconciliationReport:
    compared: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)


def reconcile(
    sessions: Callable[[], Session], gateway: PaymentGateway, *, since: datetime, now: datetime
) -> ReconciliationReport:
    """Compare every payment since ``since`` on both sides and raise an alert per discrepancy."""
    theirs: dict[str, GatewayPayment] = {g.gateway_ref: g for g in gateway.list_payments(since=since)}
    report = ReconciliationReport()
    with sessions() as session:
        ours = list(
            session.scalars(
                select(Payment).where(Payment.gateway == gateway.name, Payment.gateway_ref.is_not(None))
            )
        )
        refunded = dict(
            session.execute(
                select(Refund.payment_id, func.sum(Refund.amount))
                .where(Refund.status != "failed")
                .group_by(Refund.payment_id)
            ).all()
        )
        by_ref = {p.gateway_ref: p for p in ours}
        by_id = {p.id: p for p in ours}
        for ref, g in theirs.items():
            report.compared += 1
            p = by_ref.get(ref)
            if p is None:
                org_id = g.metadata.get("revflow_org_id")
                known = by_id.get(g.metadata.get("revflow_payment_id", ""))
                if org_id is None or session.get(Organization, org_id) is None:
                    log.warning("reconciliation_unattributed_payment", gateway_ref=ref)
                    continue
                if known is None or known.status not in _IN_FLIGHT:
                    report.discrepancies.append(
                        Discrepancy(
                            "missing_in_revflow",
                            org_id,
                            ref,
                            g.metadata.get("revflow_payment_id"),
                            {"amount": g.amount, "currency": g.currency, "status": g.status},
                        )
                    )
                continue
            if p.status in _IN_FLIGHT:
                continue
            if p.amount != g.amount or p.currency.upper() != g.currency.upper():
                report.discrepancies.append(
                    Discrepancy(
                        "amount_mismatch",
                        p.org_id,
                        ref,
                        p.id,
                        {"revflow": p.amount, "at_gateway": g.amount, "currency": g.currency},
                    )
                )
            if p.status != g.status:
                report.discrepancies.append(
                    Discrepancy(
                        "status_mismatch", p.org_id, ref, p.id, {"revflow": p.status, "at_gateway": g.status}
                    )
                )
            ours_refunded = int(refunded.get(p.id) or 0)
            if ours_refunded != g.amount_refunded or p.amount_refunded != g.amount_refunded:
                report.discrepancies.append(
                    Discrepancy(
                        "refund_mismatch",
                        p.org_id,
                        ref,
                        p.id,
                        {"revflow": ours_refunded, "at_gateway": g.amount_refunded},
                    )
                )
        for ref_, p in by_ref.items():
            if ref_ is not None and ref_ not in theirs and p.created_at >= since:
                report.discrepancies.append(
                    Discrepancy(
                        "missing_at_gateway",
                        p.org_id,
                        str(ref),
                        p.id,
                        {"amount": p.amount, "status": p.status},
                    )
                )
        for d in report.discrepancies:
            raise_alert(
                session,
                org_id=d.org_id,
                type="payment_discrepancy",
                message=f"Payment reconciliation: {d.kind.replace('_', ' ')} for {d.gateway_ref}",
                dedupe_key=f"payment_recon:{d.kind}:{d.gateway_ref}",
                now=now,
                object_type="payment" if d.payment_id else None,
                object_id=d.payment_id,
                details={"kind": d.kind, "gateway": gateway.name, "gateway_ref": d.gateway_ref, **d.details},
                severity="critical" if d.kind in ("missing_in_revflow", "amount_mismatch") else "warning",
            )
        session.commit()
    if report.discrepancies:
        log.warning("payment_discrepancies", count=len(report.discrepancies))
    return report

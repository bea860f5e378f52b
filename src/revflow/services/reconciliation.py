"""Payment reconciliation: Revflow's payments and refunds against the gateway's records.

Each discrepancy becomes an alert (deduplicated by kind and gateway reference, so a daily run refreshes
rather than repeats it): ``missing_in_revflow`` (the gateway took money Revflow has no record of),
``missing_at_gateway``, ``amount_mismatch``, ``status_mismatch`` and ``refund_mismatch``.

Per invoice paid through the gateway, ``invoice_total_mismatch`` compares what the invoice says it was paid
through the gateway with what the gateway shows for the invoice's payments (succeeded amounts minus
refunds), so an invoice whose ``amount_paid`` / status drifted from its payments is found even when every
payment agrees (ADR 0036).

A payment Revflow still has ``processing`` that the gateway lists as settled (``succeeded`` / ``failed``)
is an ACH settlement whose webhook is still on its way, not a mismatch: reconciliation asks the gateway
again (``retrieve_charge``, the list may be stale) and applies the confirmed outcome exactly as the webhook
would (``payments.apply_outcome``; the webhook, when it comes, finds nothing left to do). An alert of a
discrepancy that no longer holds on a later run is resolved (ADR 0035).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from revflow.services import payments
from revflow.services.alerts import raise_alert
from revflow.services.ports import GatewayError, GatewayPayment, PaymentGateway
from revflow.storage.models import Alert, CustomerBalanceTransaction, Invoice, Organization, Payment
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
    #: ``processing`` payments re-checked with the gateway (settled from its answer when it confirmed)
    rechecked: list[str] = field(default_factory=list)
    #: ids of discrepancy alerts resolved because the discrepancy no longer holds
    resolved: list[str] = field(default_factory=list)


#: Gateway outcomes that end an ACH ``processing`` payment.
_SETTLED = frozenset({"succeeded", "failed"})


def _settle_in_flight(session: Session, gateway: PaymentGateway, p: Payment, *, now: datetime) -> bool:
    """``p`` is ``processing`` here and settled in the gateway's list: confirm with the gateway and apply
    the outcome as the settlement webhook would. Returns True when the two sides agree afterwards."""
    try:
        fresh = gateway.retrieve_charge(str(p.gateway_ref))
    except GatewayError as exc:
        log.warning("reconciliation_recheck_failed", gateway_ref=p.gateway_ref, error=str(exc))
        return False
    if fresh.status == "processing":
        return True  # the list was stale: both sides still wait for the bank
    if fresh.status not in _SETTLED:
        return False
    session.refresh(p, with_for_update=True)
    at = payments.clock_time(session, p.test_clock_id, now)
    payments.apply_outcome(payments.ctx_at(session, p.org_id, at), p, fresh, at=at)
    return p.status == fresh.status


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
            # the gateway's fresh answer, applied: the list's status is older than the state compared now
            agreed = (
                p.status == "processing"
                and g.status in _SETTLED
                and _settle_in_flight(session, gateway, p, now=now)
            )
            if agreed:
                report.rechecked.append(p.id)
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
            if p.status != g.status and not agreed:
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
        compared = set(theirs)
        for ref_, p in by_ref.items():
            if ref_ is not None and p.created_at >= since:
                compared.add(ref_)
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
        report.discrepancies += _invoice_discrepancies(session, gateway.name, theirs, ours)
        for d in report.discrepancies:
            raise_alert(
                session,
                org_id=d.org_id,
                type="payment_discrepancy",
                message=f"Payment reconciliation: {d.kind.replace('_', ' ')} for {d.gateway_ref}"
                + (f" (invoice {d.details['invoice_id']})" if "invoice_id" in d.details else ""),
                dedupe_key=f"payment_recon:{d.kind}:{d.gateway_ref}",
                now=now,
                object_type="invoice" if "invoice_id" in d.details else "payment" if d.payment_id else None,
                object_id=d.details.get("invoice_id") or d.payment_id,
                details={"kind": d.kind, "gateway": gateway.name, "gateway_ref": d.gateway_ref, **d.details},
                severity="critical"
                if d.kind in ("missing_in_revflow", "amount_mismatch", "invoice_total_mismatch")
                else "warning",
            )
        report.resolved = _resolve_cleared(session, gateway.name, report, compared, now=now)
        session.commit()
    if report.discrepancies:
        log.warning("payment_discrepancies", count=len(report.discrepancies))
    if report.resolved:
        log.info("payment_discrepancies_resolved", count=len(report.resolved))
    return report


#: Invoices compared per query (keeps IN lists well under the databases' parameter limits).
_CHUNK = 500


def _invoice_discrepancies(
    session: Session, gateway: str, theirs: dict[str, GatewayPayment], ours: list[Payment]
) -> list[Discrepancy]:
    """``invoice_total_mismatch`` for each invoice whose gateway payments are all in ``theirs`` and settled
    on both sides, when the part of ``amount_paid`` that came through the gateway differs from the
    gateway's net (succeeded amounts minus refunds).

    Revflow's side is ``amount_paid`` plus what its payments overpaid (kept as customer balance), minus
    payments recorded outside the gateway, minus refunds that became credit notes (refunding a paid
    invoice leaves ``amount_paid`` as it was; refunding a partly paid one lowers it). Disputed invoices
    follow the dispute's lifecycle instead (ADR 0035) and are left out."""
    invoice_ids = sorted({p.invoice_id for p in ours if p.gateway_ref in theirs})
    out: list[Discrepancy] = []
    for i in range(0, len(invoice_ids), _CHUNK):
        chunk = invoice_ids[i : i + _CHUNK]
        pays: dict[str, list[Payment]] = {}
        for p in session.scalars(select(Payment).where(Payment.invoice_id.in_(chunk))):
            pays.setdefault(p.invoice_id, []).append(p)
        overpaid = _sums(
            session,
            select(CustomerBalanceTransaction.invoice_id, func.sum(CustomerBalanceTransaction.amount))
            .where(
                CustomerBalanceTransaction.invoice_id.in_(chunk),
                CustomerBalanceTransaction.type == "overpayment",
            )
            .group_by(CustomerBalanceTransaction.invoice_id),
        )
        credited = _sums(
            session,
            select(Refund.invoice_id, func.sum(Refund.amount))
            .where(
                Refund.invoice_id.in_(chunk), Refund.status != "failed", Refund.credit_note_id.is_not(None)
            )
            .group_by(Refund.invoice_id),
        )
        for inv in session.scalars(select(Invoice).where(Invoice.id.in_(chunk)).order_by(Invoice.id)):
            if inv.dispute_status is not None:
                continue
            mine = pays.get(inv.id, [])
            at_gateway = [p for p in mine if p.gateway == gateway and p.gateway_ref is not None]
            if any(
                p.gateway_ref not in theirs or p.status in _IN_FLIGHT or p.status == "processing"
                for p in at_gateway
            ):
                continue  # outside this run's window, or not settled yet: compared on a later run
            net = sum(
                theirs[str(p.gateway_ref)].amount - theirs[str(p.gateway_ref)].amount_refunded
                for p in at_gateway
                if theirs[str(p.gateway_ref)].status == "succeeded"
            )
            elsewhere = sum(p.amount for p in mine if p.gateway != gateway and p.status == "succeeded")
            revflow = inv.amount_paid + overpaid.get(inv.id, 0) - elsewhere - credited.get(inv.id, 0)
            if revflow == net:
                continue
            first = min(at_gateway, key=lambda p: (p.created_at, p.id))
            out.append(
                Discrepancy(
                    "invoice_total_mismatch",
                    inv.org_id,
                    str(first.gateway_ref),
                    None,
                    {
                        "invoice_id": inv.id,
                        "revflow": revflow,
                        "at_gateway": net,
                        "invoice_status": inv.status,
                        "amount_paid": inv.amount_paid,
                        "currency": inv.currency,
                    },
                )
            )
    return out


def _sums(session: Session, stmt: Any) -> dict[str, int]:
    """``{key: sum}`` of a two-column grouped select."""
    return {str(k): int(v or 0) for k, v in session.execute(stmt).all() if k is not None}


def _resolve_cleared(
    session: Session, gateway: str, report: ReconciliationReport, compared: set[str], *, now: datetime
) -> list[str]:
    """Resolve the open discrepancy alerts of ``gateway`` whose payment was compared on this run and whose
    discrepancy was not found again. Alerts of payments outside this run's window stay as they are."""
    found = {f"payment_recon:{d.kind}:{d.gateway_ref}" for d in report.discrepancies}
    resolved: list[str] = []
    open_alerts = session.scalars(
        select(Alert).where(Alert.type == "payment_discrepancy", Alert.status != "resolved")
    )
    for alert in open_alerts:
        details = alert.details or {}
        if details.get("gateway") != gateway or details.get("gateway_ref") not in compared:
            continue
        if alert.dedupe_key in found:
            continue
        alert.status, alert.resolved_at = "resolved", now
        alert.details = {**details, "resolved_by": "reconciliation"}
        resolved.append(alert.id)
    return resolved

"""Inbound gateway events (webhooks and the sandbox's own events): stored once per gateway event id and
applied in the same transaction, in whatever order they arrive.

Duplicates are refused by the unique (gateway, event_id) key: a concurrent duplicate waits for the first
transaction and then finds the row, so an event is applied exactly once. Order does not matter because
outcomes are applied by status precedence and the gateway's own timestamps (``payments.apply_outcome``).
Events about objects Revflow does not know are recorded as ``unmatched`` and acknowledged.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.services import payment_methods, payments, refunds
from revflow.services.ports import GatewayEvent
from revflow.storage.models import Payment
from revflow.storage.payment_models import GatewayEventRecord, PaymentMethod, Refund

__all__ = ["receive"]

log = structlog.get_logger("revflow.gateway_events")


def receive(session: Session, *, gateway: str, event: GatewayEvent, now: datetime) -> str:
    """Store and apply ``event`` in one transaction (committed here). Returns ``processed``, ``ignored``,
    ``unmatched`` or ``duplicate``."""
    rec = GatewayEventRecord(
        id=new_id("gwe"),
        org_id=None,
        gateway=gateway,
        event_id=event.id,
        type=event.type,
        raw_type=event.raw_type[:80],
        object_ref=event.object_ref[:100],
        status="received",
        gateway_created=event.created,
        data=event.data,
        received_at=now,
    )
    session.add(rec)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return "duplicate"
    status, detail, org_id = _apply(session, event, now=now)
    rec.status, rec.detail, rec.org_id = status, detail, org_id
    session.commit()
    log.info("gateway_event", gateway=gateway, event_id=event.id, type=event.raw_type, status=status)
    return status


def _payment(session: Session, event: GatewayEvent) -> Payment | None:
    refs = [
        r
        for r in (event.payment_ref, event.object_ref, event.charge.gateway_ref if event.charge else None)
        if r
    ]
    for ref in refs:
        found = session.scalar(select(Payment).where(Payment.gateway_ref == ref).limit(1))
        if found is not None:
            return found
    payment_id = event.metadata.get("revflow_payment_id")
    if payment_id:
        return session.get(Payment, payment_id)
    return None


def _apply(session: Session, event: GatewayEvent, *, now: datetime) -> tuple[str, str | None, str | None]:
    if event.type.startswith("payment_method."):
        token = event.payment_method.token if event.payment_method else event.object_ref
        pm = session.scalar(select(PaymentMethod).where(PaymentMethod.token == token).limit(1))
        if pm is None:
            return "unmatched", f"no payment method {token}", None
        ctx = payments.ctx_at(session, pm.org_id, now)
        payment_methods.sync_from_gateway(
            ctx, pm, event.payment_method, detached=event.type == "payment_method.detached", at=now
        )
        return "processed", None, pm.org_id
    if event.type == "other":
        return "ignored", f"event type {event.raw_type} is not used", None
    p = _payment(session, event)
    if p is None:
        return "unmatched", f"no payment for {event.object_ref}", None
    session.refresh(p, with_for_update=True)
    at = payments.clock_time(session, p.test_clock_id, now)
    ctx = payments.ctx_at(session, p.org_id, at)
    if event.type.startswith("payment."):
        if event.charge is None:
            return "ignored", "no charge in the event", p.org_id
        if p.gateway_ref is None and event.charge.gateway_ref:
            p.gateway_ref = event.charge.gateway_ref
        changed = payments.apply_outcome(ctx, p, event.charge, at=at, reported_at=event.created)
        return (
            ("processed" if changed else "ignored"),
            None if changed else f"payment is {p.status}",
            p.org_id,
        )
    if event.type == "charge.refunded":
        known = {r.gateway_ref for r in session.scalars(select(Refund).where(Refund.payment_id == p.id))}
        if event.refund is not None and event.refund.gateway_ref not in known:
            missing = (event.amount_refunded or event.refund.amount) - p.amount_refunded
            if missing > 0 and p.status == "succeeded":
                refunds.record_refund(
                    ctx,
                    p,
                    amount=min(missing, p.amount - p.amount_refunded),
                    reason=None,
                    gateway_ref=event.refund.gateway_ref,
                    status=event.refund.status,
                )
                return "processed", None, p.org_id
        return "ignored", "refund already recorded", p.org_id
    if event.type == "dispute.created":
        refunds.record_dispute(
            ctx,
            p,
            gateway_ref=event.object_ref,
            amount=event.dispute_amount,
            reason=event.dispute_reason,
            at=at,
        )
        return "processed", None, p.org_id
    if event.type == "refund.updated":
        if event.refund is None:
            return "ignored", "no refund in the event", p.org_id
        changed = refunds.update_refund(ctx, p, event.refund, at=at)
        return ("processed", None, p.org_id) if changed else ("ignored", "refund is up to date", p.org_id)
    if event.type in ("dispute.updated", "dispute.closed"):
        changed = refunds.update_dispute(
            ctx,
            p,
            gateway_ref=event.object_ref,
            status=event.dispute_status or "needs_response",
            amount=event.dispute_amount,
            reason=event.dispute_reason,
            at=at,
        )
        return ("processed", None, p.org_id) if changed else ("ignored", "dispute is up to date", p.org_id)
    return "ignored", None, p.org_id

"""Voiding a usage event before its period is invoiced (audited). After invoicing, the event stays and
the correction is a credit note on the invoice (see docs/usage.md)."""

from __future__ import annotations

from sqlalchemy import and_, select

from revflow.domain.errors import Conflict
from revflow.domain.usage import floor_hour
from revflow.services.context import Ctx
from revflow.services.recorder import record
from revflow.services.usage_recovery import rebuild_buckets
from revflow.services.usage_source import owner_at
from revflow.services.views_usage import UsageEventView
from revflow.storage.models import Invoice, InvoiceLineItem, Price
from revflow.storage.usage_models import UsageEvent, UsageLateEvent

__all__ = ["PeriodInvoiced", "invoiced_on", "void_event"]


#: Invoices that bill usage before its period ends; the period-end invoice diffs against them.
EARLY_REASONS = ("usage_in_advance", "usage_threshold")


class PeriodInvoiced(Conflict):
    """The event's period was already invoiced: correct it with a credit note instead."""

    code = "period_invoiced"


def invoiced_on(ctx: Ctx, event: UsageEvent) -> str | None:
    """The id of an invoice that billed this event's metric, on the subscription the event counts for
    (ADR 0033), for a period holding the event, if any."""
    if event.customer_id is None:
        return None
    late = ctx.session.get(UsageLateEvent, (ctx.org_id, event.id))
    if late is not None and late.settled_at is None:
        return None  # a late event not billed yet (ADR 0034): the next invoice re-measures without it
    owner = event.subscription_id or owner_at(
        ctx, customer_id=event.customer_id, code=event.metric_code, at=event.timestamp
    )
    if owner is None:
        return None
    return ctx.session.scalar(
        select(InvoiceLineItem.invoice_id)
        .join(Price, Price.id == InvoiceLineItem.price_id)
        .join(Invoice, Invoice.id == InvoiceLineItem.invoice_id)
        .where(
            # usage billed before the period end (in advance, progressive) is re-measured and diffed at
            # the period end, so a void until then is credited there (ADR 0034)
            Invoice.billing_reason.not_in(EARLY_REASONS),
            InvoiceLineItem.org_id == ctx.org_id,
            InvoiceLineItem.kind == "usage",
            InvoiceLineItem.subscription_id == owner,
            Price.metric_code == event.metric_code,
            and_(
                InvoiceLineItem.period_start <= event.timestamp, InvoiceLineItem.period_end > event.timestamp
            ),
        )
        .limit(1)
    )


def void_event(ctx: Ctx, event_id: str) -> UsageEvent:
    """Void the event: it stops counting (rollups are rebuilt) and stays listed as ``voided``; its
    transaction id stays taken. Voiding twice is a no-op. Raises NotFound, PeriodInvoiced (409)."""
    event = ctx.get(UsageEvent, event_id, for_update=True, label="usage event")
    if event.status == "voided":
        return event
    invoice_id = invoiced_on(ctx, event)
    if invoice_id is not None:
        raise PeriodInvoiced(
            f"The period of this event was invoiced on {invoice_id}; issue a credit note on that invoice to "
            "correct it.",
            details=[{"field": "id", "code": "period_invoiced", "invoice_id": invoice_id}],
        )
    before = event.status
    event.status, event.reason = "voided", "voided"
    ctx.session.flush()
    if before == "billable" and event.customer_id is not None:
        rebuild_buckets(ctx, {(event.customer_id, event.metric_code, floor_hour(event.timestamp))})
    record(
        ctx,
        action="usage_event.void",
        object_type="usage_event",
        object_id=event.id,
        changes={"status": {"before": before, "after": "voided"}},
        event_type="usage_event.voided",
        data=UsageEventView.of(event).payload(),
    )
    return event

"""The upcoming-invoice preview: what the next billing point of a subscription will invoice."""

from __future__ import annotations

from typing import Any

from revflow.domain.invoices import compute_totals
from revflow.services import billing
from revflow.services.context import Ctx
from revflow.services.subscriptions import now_for
from revflow.services.views import InvoiceLineView
from revflow.storage.models import Subscription

__all__ = ["upcoming_invoice"]


def upcoming_invoice(ctx: Ctx, subscription_id: str) -> dict[str, Any]:
    """Preview the invoice the subscription's next billing point will create, including pending
    prorations, with discounts applied. Writes nothing. Raises NotFound; Conflict ``invalid_state``
    when nothing more will be billed."""
    sub = ctx.get(Subscription, subscription_id, label="subscription")
    at = sub.next_billing_at
    if at is None:
        from revflow.domain.errors import Conflict

        raise Conflict(f"subscription {sub.id} has no upcoming invoice", code="invalid_state")
    now = now_for(ctx, sub.test_clock_id)
    at = max(at, now) if at < now else at
    with ctx.session.no_autoflush:
        batch = billing.Batch(ctx, [sub.customer_id], now=at)
        drafts = billing.lines_at(batch, sub, at)
        rows = billing._line_rows(ctx, sub, drafts, batch.prices, batch.products)
        billing.discount_rows(batch, sub.customer_id, [sub], rows, persist=False)
    discount = sum(r.discount_amount for r in rows)
    totals = compute_totals(line_amounts=[r.amount for r in rows], discount=discount, tax=0)
    return {
        "object": "upcoming_invoice",
        "customer_id": sub.customer_id,
        "subscription_id": sub.id,
        "currency": sub.currency,
        "billing_at": at.isoformat().replace("+00:00", "Z"),
        "lines": [
            {
                **InvoiceLineView.of(r).payload(),
                "kind": r.kind,
                "discount_amount": r.discount_amount,
                "price_id": r.price_id,
            }
            for r in rows
        ],
        "subtotal": totals.subtotal,
        "discount": totals.discount,
        "tax": 0,
        "total": totals.total,
    }

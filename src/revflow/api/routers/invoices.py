"""/v1/invoices"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import Response

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, pdf_response, pdf_route, router
from revflow.api.schemas import InvoiceCreate, InvoiceLinesAdd, InvoiceUpdate, ListOf, PaymentCreate
from revflow.services import invoices as svc
from revflow.services.documents import invoice_document
from revflow.services.views import InvoiceView, PaymentView
from revflow.storage.models import Invoice

api = router("invoices")

Status = Literal["draft", "open", "paid", "void", "uncollectible"]


def _items(items: list) -> list[dict[str, object]]:  # type: ignore[type-arg]
    return [i.model_dump(exclude_none=True) for i in items]


@api.post("/invoices", status_code=201, response_model=InvoiceView, summary="Create a draft invoice")
def create_invoice(body: InvoiceCreate, ctx: CtxDep) -> InvoiceView:
    inv = svc.create_invoice(
        ctx,
        customer_id=body.customer_id,
        items=_items(body.items),
        currency=body.currency,
        due_date=body.due_date,
        description=body.description,
        footer=body.footer,
        collection_method=body.collection_method,
        metadata=body.metadata,
    )
    return InvoiceView.of(inv)


@api.get("/invoices", response_model=ListOf[InvoiceView], summary="List invoices")
def list_invoices(
    ctx: CtxDep,
    page: ListParamsDep,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Status | None = None,
    disputed: bool | None = None,
) -> dict[str, object]:
    result = svc.list_invoices(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        customer_id=customer_id,
        status=status,
        disputed=disputed,
    )
    return envelope("/v1/invoices", [InvoiceView.of(i) for i in result.items], result.has_more)


@api.get(
    "/invoices/upcoming", summary="Preview the next invoice of a subscription, pending prorations included"
)
def upcoming_invoice(ctx: CtxDep, subscription_id: Annotated[str, Query(max_length=40)]) -> dict[str, object]:
    from revflow.services.upcoming import upcoming_invoice as preview

    return preview(ctx, subscription_id)


@api.get("/invoices/{invoice_id}", response_model=InvoiceView, summary="Retrieve an invoice")
def get_invoice(invoice_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(ctx.get(Invoice, invoice_id, label="invoice"))


@api.patch("/invoices/{invoice_id}", response_model=InvoiceView, summary="Update a draft invoice")
def update_invoice(invoice_id: str, body: InvoiceUpdate, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.update_invoice(ctx, invoice_id, changes=body.model_dump(exclude_unset=True)))


@api.delete("/invoices/{invoice_id}", response_model=InvoiceView, summary="Delete a draft invoice")
def delete_invoice(invoice_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.delete_draft(ctx, invoice_id))


@api.post("/invoices/{invoice_id}/lines", response_model=InvoiceView, summary="Add lines to a draft")
def add_lines(invoice_id: str, body: InvoiceLinesAdd, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.add_lines(ctx, invoice_id, items=_items(body.items)))


@api.delete(
    "/invoices/{invoice_id}/lines/{line_id}", response_model=InvoiceView, summary="Remove a draft line"
)
def delete_line(invoice_id: str, line_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.delete_line(ctx, invoice_id, line_id))


@api.post("/invoices/{invoice_id}/finalize", response_model=InvoiceView, summary="Finalize a draft")
def finalize(invoice_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.finalize_invoice(ctx, invoice_id))


@api.post("/invoices/{invoice_id}/void", response_model=InvoiceView, summary="Void an open invoice")
def void(invoice_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.void_invoice(ctx, invoice_id))


@api.post(
    "/invoices/{invoice_id}/mark_uncollectible",
    response_model=InvoiceView,
    summary="Mark an open invoice uncollectible",
)
def mark_uncollectible(invoice_id: str, ctx: CtxDep) -> InvoiceView:
    return InvoiceView.of(svc.mark_uncollectible(ctx, invoice_id))


@api.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    response_model=PaymentView,
    summary="Record a payment received outside Revflow",
)
def record_payment(invoice_id: str, body: PaymentCreate, ctx: CtxDep) -> PaymentView:
    _, payment = svc.pay_out_of_band(
        ctx,
        invoice_id,
        amount=body.amount,
        method=body.method,
        reference=body.reference,
        paid_at=body.paid_at,
        metadata=body.metadata,
    )
    return PaymentView.of(payment)


@pdf_route(api, "/invoices/{invoice_id}/pdf", document="invoice")
def invoice_pdf(invoice_id: str, ctx: CtxDep, request: Request) -> Response:
    inv = ctx.get(Invoice, invoice_id, label="invoice")
    data = request.app.state.container.pdf.render_invoice(invoice_document(ctx, inv))
    return pdf_response(data, filename=inv.number or inv.id)

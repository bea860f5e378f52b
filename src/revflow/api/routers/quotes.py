"""/v1/quotes and the quote check of a subscription's invoices"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import Response

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, pdf_response, pdf_route, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_quotes import QuoteAccept, QuoteCreate, QuoteUpdate
from revflow.services import quotes as svc
from revflow.services.quote_documents import quote_document
from revflow.services.quote_matching import check_subscription_invoices
from revflow.services.views_quotes import AlertView, QuoteView
from revflow.storage.models import Quote

api = router("quotes")

Status = Literal["draft", "open", "accepted", "canceled"]


@api.post("/quotes", status_code=201, response_model=QuoteView, summary="Create a draft quote")
def create_quote(body: QuoteCreate, ctx: CtxDep) -> QuoteView:
    data = body.model_dump(exclude={"lines"}, exclude_none=True)
    lines = None if body.lines is None else [li.model_dump(exclude_none=True) for li in body.lines]
    return QuoteView.of(svc.create_quote(ctx, **data, lines=lines))


@api.get("/quotes", response_model=ListOf[QuoteView], summary="List quotes")
def list_quotes(
    ctx: CtxDep,
    page: ListParamsDep,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Status | None = None,
) -> dict[str, object]:
    result = svc.list_quotes(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        customer_id=customer_id,
        status=status,
    )
    return envelope("/v1/quotes", [QuoteView.of(q) for q in result.items], result.has_more)


@api.get("/quotes/{quote_id}", response_model=QuoteView, summary="Retrieve a quote")
def get_quote(quote_id: str, ctx: CtxDep) -> QuoteView:
    return QuoteView.of(ctx.get(Quote, quote_id, label="quote"))


@api.patch("/quotes/{quote_id}", response_model=QuoteView, summary="Update a draft quote")
def update_quote(quote_id: str, body: QuoteUpdate, ctx: CtxDep) -> QuoteView:
    changes = body.model_dump(exclude_unset=True)
    if body.lines is not None:
        changes["lines"] = [li.model_dump(exclude_none=True) for li in body.lines]
    return QuoteView.of(svc.update_quote(ctx, quote_id, changes=changes))


@api.post(
    "/quotes/{quote_id}/finalize", response_model=QuoteView, summary="Finalize a draft: number and freeze it"
)
def finalize_quote(quote_id: str, ctx: CtxDep) -> QuoteView:
    return QuoteView.of(svc.finalize_quote(ctx, quote_id))


@api.post(
    "/quotes/{quote_id}/accept",
    response_model=QuoteView,
    summary="Accept an open quote: it becomes a subscription with the quoted prices and discount",
)
def accept_quote(quote_id: str, body: QuoteAccept, ctx: CtxDep) -> QuoteView:
    quote = svc.accept_quote(
        ctx, quote_id, acceptor_name=body.acceptor_name, acceptor_email=body.acceptor_email
    )
    return QuoteView.of(quote)


@api.post("/quotes/{quote_id}/cancel", response_model=QuoteView, summary="Cancel a draft or open quote")
def cancel_quote(quote_id: str, ctx: CtxDep) -> QuoteView:
    return QuoteView.of(svc.cancel_quote(ctx, quote_id))


@pdf_route(api, "/quotes/{quote_id}/pdf", document="quote")
def quote_pdf(quote_id: str, ctx: CtxDep, request: Request) -> Response:
    quote = ctx.get(Quote, quote_id, label="quote")
    data = request.app.state.container.pdf.render_quote(quote_document(ctx, quote))
    return pdf_response(data, filename=quote.number or quote.id)


@api.post(
    "/subscriptions/{subscription_id}/check_quote",
    response_model=ListOf[AlertView],
    summary="Check every invoice of a subscription made from a quote against the quote",
)
def check_quote(subscription_id: str, ctx: CtxDep) -> dict[str, object]:
    alerts = check_subscription_invoices(ctx, subscription_id)
    url = f"/v1/subscriptions/{subscription_id}/check_quote"
    return envelope(url, [AlertView.of(a) for a in alerts], False)

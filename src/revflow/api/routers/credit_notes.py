"""/v1/credit_notes"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import CreditNoteCreate, ListOf
from revflow.services import credit_notes as svc
from revflow.services.views import CreditNoteView
from revflow.storage.models import CreditNote

api = router("credit_notes")


@api.post("/credit_notes", status_code=201, response_model=CreditNoteView, summary="Credit an invoice")
def create_credit_note(body: CreditNoteCreate, ctx: CtxDep) -> CreditNoteView:
    note = svc.create_credit_note(
        ctx,
        invoice_id=body.invoice_id,
        amount=body.amount,
        lines=[li.model_dump() for li in body.lines] if body.lines else None,
        reason=body.reason,
        memo=body.memo,
        metadata=body.metadata,
    )
    return CreditNoteView.of(note)


@api.get("/credit_notes", response_model=ListOf[CreditNoteView], summary="List credit notes")
def list_credit_notes(
    ctx: CtxDep,
    page: ListParamsDep,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, object]:
    result = svc.list_credit_notes(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        invoice_id=invoice_id,
        customer_id=customer_id,
    )
    return envelope("/v1/credit_notes", [CreditNoteView.of(n) for n in result.items], result.has_more)


@api.get("/credit_notes/{credit_note_id}", response_model=CreditNoteView, summary="Retrieve a credit note")
def get_credit_note(credit_note_id: str, ctx: CtxDep) -> CreditNoteView:
    return CreditNoteView.of(ctx.get(CreditNote, credit_note_id, label="credit note"))

"""/v1/customers"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy import select

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import CustomerCreate, CustomerUpdate, ListOf
from revflow.services import customers as svc
from revflow.services.pagination import paginate
from revflow.services.views import BalanceTransactionView, CustomerView
from revflow.storage.models import Customer, CustomerBalanceTransaction

api = router("customers")


@api.post("/customers", status_code=201, response_model=CustomerView, summary="Create a customer")
def create_customer(body: CustomerCreate, ctx: CtxDep) -> CustomerView:
    data = body.model_dump(exclude_none=True)
    if body.address is not None:
        data["address"] = body.address.model_dump(exclude_none=True)
    customer = svc.create_customer(ctx, **data)
    return svc.customer_view(ctx, customer)


@api.get("/customers", response_model=ListOf[CustomerView], summary="List customers")
def list_customers(
    ctx: CtxDep,
    page: ListParamsDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    external_id: Annotated[str | None, Query(max_length=200, description="Id in a connected system")] = None,
    external_system: Annotated[str | None, Query(max_length=40, description="e.g. hubspot")] = None,
) -> dict[str, object]:
    result = svc.list_customers(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        email=email,
        external_id=external_id,
        external_system=external_system,
    )
    return envelope("/v1/customers", [svc.customer_view(ctx, c) for c in result.items], result.has_more)


@api.get("/customers/lookup", response_model=CustomerView, summary="Find a customer by external id")
def lookup_customer(
    ctx: CtxDep,
    system: Annotated[str, Query(max_length=40, description="e.g. hubspot, salesforce, stripe")],
    external_id: Annotated[str, Query(max_length=200)],
) -> CustomerView:
    return svc.customer_view(ctx, svc.find_by_external_id(ctx, system=system, external_id=external_id))


@api.get("/customers/{customer_id}", response_model=CustomerView, summary="Retrieve a customer")
def get_customer(customer_id: str, ctx: CtxDep) -> CustomerView:
    return svc.customer_view(ctx, ctx.get(Customer, customer_id, label="customer"))


@api.patch("/customers/{customer_id}", response_model=CustomerView, summary="Update a customer")
def update_customer(customer_id: str, body: CustomerUpdate, ctx: CtxDep) -> CustomerView:
    changes = body.model_dump(exclude_unset=True)
    if body.address is not None:
        changes["address"] = body.address.model_dump(exclude_none=True)
    return svc.customer_view(ctx, svc.update_customer(ctx, customer_id, changes=changes))


@api.post("/customers/{customer_id}/archive", response_model=CustomerView, summary="Archive a customer")
def archive_customer(customer_id: str, ctx: CtxDep) -> CustomerView:
    return svc.customer_view(ctx, svc.archive_customer(ctx, customer_id))


@api.get(
    "/customers/{customer_id}/balance_transactions",
    response_model=ListOf[BalanceTransactionView],
    summary="List a customer's credit balance movements",
)
def balance_transactions(customer_id: str, ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    ctx.get(Customer, customer_id, label="customer")
    stmt = select(CustomerBalanceTransaction).where(
        CustomerBalanceTransaction.org_id == ctx.org_id, CustomerBalanceTransaction.customer_id == customer_id
    )
    result = paginate(
        ctx,
        stmt,
        CustomerBalanceTransaction,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
    )
    return envelope(
        f"/v1/customers/{customer_id}/balance_transactions",
        [BalanceTransactionView.model_validate(t) for t in result.items],
        result.has_more,
    )

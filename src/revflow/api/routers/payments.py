"""/v1/payments, payment methods, refunds, disputes, dunning policies, invoice collection and emails."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from revflow.api.routers._common import CtxDep, ListParamsDep, envelope, router
from revflow.api.schemas import ListOf
from revflow.api.schemas_payments import (
    DunningPolicyCreate,
    DunningPolicyUpdate,
    PaymentMethodAttach,
    RefundCreate,
    SetupSessionCreate,
)
from revflow.bootstrap import Container
from revflow.services import dunning, emails, payment_methods, payments, refunds
from revflow.services.ports import PaymentGateway
from revflow.services.views import PaymentView
from revflow.services.views_payments import (
    DisputeView,
    DunningPolicyView,
    DunningView,
    EmailView,
    PaymentMethodView,
    RefundView,
    SetupSessionView,
)
from revflow.storage.models import Payment
from revflow.storage.payment_models import Dispute, DunningPolicy, Email, Refund

api = router("payments")


def _gateway(request: Request) -> PaymentGateway:
    container: Container = request.app.state.container
    return container.gateway


# --- payments ------------------------------------------------------------------------------------


@api.get("/payments/{payment_id}", response_model=PaymentView, summary="Retrieve a payment")
def get_payment(payment_id: str, ctx: CtxDep) -> PaymentView:
    return PaymentView.of(ctx.get(Payment, payment_id, label="payment"))


@api.post(
    "/invoices/{invoice_id}/charge",
    status_code=202,
    response_model=PaymentView,
    summary="Charge an open invoice on the customer's default payment method (sent by the worker)",
)
def charge_invoice(invoice_id: str, ctx: CtxDep) -> PaymentView:
    return PaymentView.of(payments.charge_invoice(ctx, invoice_id))


@api.get(
    "/invoices/{invoice_id}/collection",
    response_model=DunningView,
    summary="Collection of an invoice: attempts, dunning schedule and outcome",
)
def invoice_collection(invoice_id: str, ctx: CtxDep) -> DunningView:
    return dunning.collection_of(ctx, invoice_id)


@api.post(
    "/payments/{payment_id}/refunds",
    status_code=201,
    response_model=RefundView,
    summary="Refund a payment (in full or in part); issues a credit note",
)
def refund_payment(payment_id: str, body: RefundCreate, ctx: CtxDep, request: Request) -> RefundView:
    refund = refunds.refund_payment(
        ctx, payment_id, _gateway(request), amount=body.amount, reason=body.reason
    )
    return RefundView.of(refund)


@api.get("/refunds/{refund_id}", response_model=RefundView, summary="Retrieve a refund")
def get_refund(refund_id: str, ctx: CtxDep) -> RefundView:
    return RefundView.of(ctx.get(Refund, refund_id, label="refund"))


@api.get("/disputes/{dispute_id}", response_model=DisputeView, summary="Retrieve a dispute")
def get_dispute(dispute_id: str, ctx: CtxDep) -> DisputeView:
    return DisputeView.of(ctx.get(Dispute, dispute_id, label="dispute"))


# --- payment methods -----------------------------------------------------------------------------


@api.post(
    "/customers/{customer_id}/setup_sessions",
    status_code=201,
    response_model=SetupSessionView,
    summary="Start collecting a payment method at the gateway",
)
def create_setup_session(
    customer_id: str, body: SetupSessionCreate, ctx: CtxDep, request: Request
) -> SetupSessionView:
    gateway = _gateway(request)
    s = payment_methods.setup_session(ctx, customer_id, gateway, method_types=list(body.method_types))
    return SetupSessionView(
        id=s.id,
        customer_id=customer_id,
        gateway=gateway.name,
        client_secret=s.client_secret,
        url=s.url,
        status=s.status,
    )


@api.post(
    "/customers/{customer_id}/payment_methods",
    status_code=201,
    response_model=PaymentMethodView,
    summary="Attach a tokenised payment method",
)
def attach_payment_method(
    customer_id: str, body: PaymentMethodAttach, ctx: CtxDep, request: Request
) -> PaymentMethodView:
    pm = payment_methods.attach(
        ctx, customer_id, _gateway(request), token=body.token, set_default=body.set_default
    )
    return PaymentMethodView.of(pm)


@api.get(
    "/customers/{customer_id}/payment_methods",
    response_model=ListOf[PaymentMethodView],
    summary="List a customer's payment methods (default first)",
)
def list_payment_methods(customer_id: str, ctx: CtxDep) -> dict[str, object]:
    rows = payment_methods.list_methods(ctx, customer_id)
    return envelope(
        f"/v1/customers/{customer_id}/payment_methods", [PaymentMethodView.of(p) for p in rows], False
    )


@api.post(
    "/customers/{customer_id}/payment_methods/{payment_method_id}/default",
    response_model=PaymentMethodView,
    summary="Make a payment method the default (retries dunning at once)",
)
def set_default_payment_method(customer_id: str, payment_method_id: str, ctx: CtxDep) -> PaymentMethodView:
    return PaymentMethodView.of(payment_methods.set_default(ctx, customer_id, payment_method_id))


@api.delete(
    "/customers/{customer_id}/payment_methods/{payment_method_id}",
    response_model=PaymentMethodView,
    summary="Remove a payment method",
)
def remove_payment_method(
    customer_id: str, payment_method_id: str, ctx: CtxDep, request: Request
) -> PaymentMethodView:
    return PaymentMethodView.of(
        payment_methods.remove(ctx, customer_id, payment_method_id, _gateway(request))
    )


# --- dunning policies ----------------------------------------------------------------------------


def _policy_view(ctx: CtxDep, p: DunningPolicy) -> DunningPolicyView:
    plans, customers = dunning.assignments_of(ctx, p.id)
    return DunningPolicyView.of(p, plan_ids=plans, customer_ids=customers)


@api.post(
    "/dunning_policies", status_code=201, response_model=DunningPolicyView, summary="Create a dunning policy"
)
def create_policy(body: DunningPolicyCreate, ctx: CtxDep) -> DunningPolicyView:
    p = dunning.create_policy(
        ctx,
        name=body.name,
        retry_days=list(body.retry_days),
        max_attempts=body.max_attempts,
        final_action=body.final_action,
        is_default=body.is_default,
        send_emails=body.send_emails,
        templates=body.templates,
        plan_ids=list(body.plan_ids),
        customer_ids=list(body.customer_ids),
    )
    return _policy_view(ctx, p)


@api.get("/dunning_policies", response_model=ListOf[DunningPolicyView], summary="List dunning policies")
def list_policies(ctx: CtxDep, page: ListParamsDep) -> dict[str, object]:
    result = dunning.list_policies(
        ctx, limit=page.limit, starting_after=page.starting_after, ending_before=page.ending_before
    )
    return envelope("/v1/dunning_policies", [_policy_view(ctx, p) for p in result.items], result.has_more)


@api.get(
    "/dunning_policies/{policy_id}", response_model=DunningPolicyView, summary="Retrieve a dunning policy"
)
def get_policy(policy_id: str, ctx: CtxDep) -> DunningPolicyView:
    return _policy_view(ctx, ctx.get(DunningPolicy, policy_id, label="dunning policy"))


@api.patch(
    "/dunning_policies/{policy_id}", response_model=DunningPolicyView, summary="Update a dunning policy"
)
def update_policy(policy_id: str, body: DunningPolicyUpdate, ctx: CtxDep) -> DunningPolicyView:
    return _policy_view(ctx, dunning.update_policy(ctx, policy_id, changes=body.changes()))


# --- emails --------------------------------------------------------------------------------------


@api.get("/emails", response_model=ListOf[EmailView], summary="List emails (sent, stored or queued)")
def list_emails(
    ctx: CtxDep, page: ListParamsDep, object_id: Annotated[str | None, Query(max_length=40)] = None
) -> dict[str, object]:
    result = emails.list_emails(
        ctx,
        limit=page.limit,
        starting_after=page.starting_after,
        ending_before=page.ending_before,
        object_id=object_id,
    )
    return envelope("/v1/emails", [EmailView.of(e) for e in result.items], result.has_more)


@api.get("/emails/{email_id}", response_model=EmailView, summary="Retrieve an email")
def get_email(email_id: str, ctx: CtxDep) -> EmailView:
    return EmailView.of(ctx.get(Email, email_id, label="email"))

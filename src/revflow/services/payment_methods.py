"""Payment methods: a gateway customer per Revflow customer, setup sessions, attach by token, default, remove.

Revflow keeps only the gateway token and what a person needs to recognise the method (brand, last 4,
expiry, bank name); card numbers never reach it (the API refuses them, see ``api/card_guard.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select

from revflow.domain.errors import InvalidInput, NotFound, RevflowError
from revflow.domain.ids import new_id
from revflow.services import dunning
from revflow.services.context import Ctx
from revflow.services.ports import (
    GatewayError,
    GatewayUnavailable,
    PaymentGateway,
    PaymentMethodInfo,
    SetupSession,
)
from revflow.services.recorder import record
from revflow.storage.models import Customer, CustomerExternalId
from revflow.storage.payment_models import PaymentMethod

__all__ = [
    "GatewayDown",
    "GatewayRefused",
    "attach",
    "ensure_gateway_customer",
    "gateway_errors",
    "list_methods",
    "remove",
    "set_default",
    "setup_session",
    "sync_from_gateway",
]


class GatewayRefused(InvalidInput):
    """The gateway refused the request (a bad token, a method of another customer)."""

    code = "gateway_error"


class GatewayDown(RevflowError):
    code = "gateway_unavailable"
    status = 503


@contextmanager
def gateway_errors() -> Iterator[None]:
    """Translate gateway errors at the service boundary: 404 → NotFound, others → 422/503."""
    try:
        yield
    except GatewayUnavailable as exc:
        raise GatewayDown(f"the payment gateway did not answer: {exc}") from exc
    except GatewayError as exc:
        if exc.status == 404:
            raise NotFound(str(exc), code=exc.code or "resource_missing") from exc
        raise GatewayRefused(str(exc), code=exc.code or "gateway_error") from exc


def ensure_gateway_customer(ctx: Ctx, customer: Customer, gateway: PaymentGateway) -> str:
    """The customer's id at the gateway, created on first use and kept as an external id."""
    existing = ctx.session.scalar(
        select(CustomerExternalId).where(
            CustomerExternalId.customer_id == customer.id, CustomerExternalId.system == gateway.name
        )
    )
    if existing is not None:
        return existing.external_id
    with gateway_errors():
        ref = gateway.ensure_customer(
            customer_id=customer.id, email=customer.email, name=customer.name, existing_ref=None
        )
    ctx.session.add(
        CustomerExternalId(org_id=ctx.org_id, customer_id=customer.id, system=gateway.name, external_id=ref)
    )
    ctx.session.flush()
    return ref


def setup_session(
    ctx: Ctx, customer_id: str, gateway: PaymentGateway, *, method_types: list[str]
) -> SetupSession:
    """Start a gateway flow that collects a payment method without Revflow seeing it."""
    customer = ctx.get(Customer, customer_id, label="customer")
    ref = ensure_gateway_customer(ctx, customer, gateway)
    with gateway_errors():
        return gateway.create_setup_session(customer_ref=ref, method_types=method_types)


def _record(ctx: Ctx, pm: PaymentMethod, action: str, event: str) -> None:
    ctx.session.flush()
    record(
        ctx,
        action=action,
        object_type="payment_method",
        object_id=pm.id,
        changes={"is_default": pm.is_default, "status": pm.status},
        event_type=event,
        data={"id": pm.id, "customer_id": pm.customer_id, "type": pm.type, "last4": pm.last4},
    )


def _default_changed(ctx: Ctx, customer_id: str) -> None:
    dunning.on_payment_method_updated(ctx, customer_id, at=ctx.now())


def attach(
    ctx: Ctx, customer_id: str, gateway: PaymentGateway, *, token: str, set_default: bool = True
) -> PaymentMethod:
    """Attach a tokenised payment method to the customer and keep its description; the first one (or any
    with ``set_default``) becomes the default, which retries the customer's dunning cases at once."""
    customer = ctx.get(Customer, customer_id, for_update=True, label="customer")
    ref = ensure_gateway_customer(ctx, customer, gateway)
    with gateway_errors():
        info = gateway.attach_payment_method(customer_ref=ref, token=token)
    pm = ctx.session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.org_id == ctx.org_id,
            PaymentMethod.gateway == gateway.name,
            PaymentMethod.token == info.token,
        )
    )
    now = ctx.now()
    if pm is None:
        pm = PaymentMethod(
            id=new_id("pm"),
            org_id=ctx.org_id,
            customer_id=customer.id,
            gateway=gateway.name,
            token=info.token,
            created_at=now,
            is_default=False,
        )
        ctx.session.add(pm)
    elif pm.customer_id != customer.id:
        raise NotFound(
            f"No such payment method: '{token}'", details=[{"field": "token", "code": "resource_missing"}]
        )
    _describe(pm, info)
    pm.status, pm.detached_at, pm.updated_at = "active", None, now
    has_default = ctx.session.scalar(
        select(PaymentMethod.id).where(
            PaymentMethod.customer_id == customer.id,
            PaymentMethod.status == "active",
            PaymentMethod.is_default.is_(True),
            PaymentMethod.id != pm.id,
        )
    )
    make_default = set_default or has_default is None
    _record(ctx, pm, "payment_method.attach", "payment_method.attached")
    if make_default:
        _make_default(ctx, pm)
    return pm


def _describe(pm: PaymentMethod, info: PaymentMethodInfo) -> None:
    pm.type, pm.brand, pm.last4 = info.type, info.brand, info.last4
    pm.exp_month, pm.exp_year, pm.bank_name = info.exp_month, info.exp_year, info.bank_name


def _make_default(ctx: Ctx, pm: PaymentMethod) -> None:
    for other in ctx.session.scalars(
        select(PaymentMethod).where(
            PaymentMethod.customer_id == pm.customer_id,
            PaymentMethod.is_default.is_(True),
            PaymentMethod.id != pm.id,
        )
    ):
        other.is_default = False
    pm.is_default, pm.updated_at = True, ctx.now()
    _record(ctx, pm, "payment_method.set_default", "customer.default_payment_method_updated")
    _default_changed(ctx, pm.customer_id)


def _own(ctx: Ctx, customer_id: str, pm_id: str) -> PaymentMethod:
    ctx.get(Customer, customer_id, label="customer")
    pm = ctx.get(PaymentMethod, pm_id, for_update=True, label="payment method")
    if pm.customer_id != customer_id or pm.status != "active":
        raise NotFound(
            f"No such payment method: '{pm_id}'", details=[{"field": "id", "code": "resource_missing"}]
        )
    return pm


def set_default(ctx: Ctx, customer_id: str, pm_id: str) -> PaymentMethod:
    """Make ``pm_id`` the customer's default (and retry its dunning cases at once). Raises NotFound when the
    method is not the customer's."""
    pm = _own(ctx, customer_id, pm_id)
    if not pm.is_default:
        _make_default(ctx, pm)
    return pm


def remove(ctx: Ctx, customer_id: str, pm_id: str, gateway: PaymentGateway) -> PaymentMethod:
    """Detach the method at the gateway and mark it detached; the customer may be left without a default."""
    pm = _own(ctx, customer_id, pm_id)
    with gateway_errors():
        gateway.detach_payment_method(pm.token)
    pm.status, pm.is_default, pm.detached_at = "detached", False, ctx.now()
    pm.updated_at = ctx.now()
    _record(ctx, pm, "payment_method.detach", "payment_method.detached")
    return pm


def list_methods(ctx: Ctx, customer_id: str) -> list[PaymentMethod]:
    """The customer's active payment methods, default first."""
    ctx.get(Customer, customer_id, label="customer")
    rows = ctx.session.scalars(
        select(PaymentMethod).where(
            PaymentMethod.org_id == ctx.org_id,
            PaymentMethod.customer_id == customer_id,
            PaymentMethod.status == "active",
        )
    )
    return sorted(rows, key=lambda pm: (not pm.is_default, pm.created_at, pm.id))


def sync_from_gateway(
    ctx: Ctx, pm: PaymentMethod, info: PaymentMethodInfo | None, *, detached: bool, at: datetime
) -> None:
    """Apply a gateway payment_method.* event (updated expiry, detached elsewhere).

    A new expiry on the customer's default method (the card account updater, or the customer updating
    the card at the gateway) is a payment method update: the customer's dunning cases are retried at once,
    as when a method is attached through the API."""
    before = (pm.exp_month, pm.exp_year, pm.last4)
    if info is not None:
        _describe(pm, info)
    if detached and pm.status == "active":
        pm.status, pm.is_default, pm.detached_at = "detached", False, at
    pm.updated_at = at
    _record(ctx, pm, "payment_method.sync", "payment_method.updated")
    renewed = info is not None and (pm.exp_month, pm.exp_year, pm.last4) != before
    if renewed and pm.status == "active" and pm.is_default:
        dunning.on_payment_method_updated(ctx, pm.customer_id, at=at)

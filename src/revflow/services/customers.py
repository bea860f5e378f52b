"""Customers: create, update, archive, look up by external id, credit balance."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import pycountry
from babel import Locale, UnknownLocaleError
from sqlalchemy import func, select

from revflow.domain.errors import Conflict, InvalidInput
from revflow.domain.ids import new_id
from revflow.domain.metadata import merge_metadata
from revflow.domain.money import Currency
from revflow.services import entity_mappings
from revflow.services.context import Ctx
from revflow.services.pagination import Page, paginate
from revflow.services.recorder import diff, record
from revflow.services.tax_ids import tax_id_country, validate_tax_id
from revflow.services.usage_recovery import recover_customer
from revflow.services.views import CustomerView
from revflow.storage.models import (
    Customer,
    CustomerBalanceTransaction,
    CustomerExternalId,
    Invoice,
    TestClock,
)

__all__ = [
    "ExternalIdTaken",
    "archive_customer",
    "balance_of",
    "create_customer",
    "customer_view",
    "find_by_external_id",
    "list_customers",
    "update_customer",
]

_UNSET: Any = object()


class ExternalIdTaken(Conflict):
    """Another customer of the organization already carries this external id."""

    code = "external_id_taken"


def _field_error(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code, details=[{"field": field, "code": code, "message": message}])


def _check_address(address: dict[str, Any]) -> dict[str, Any]:
    country = address.get("country")
    if country is not None:
        found = pycountry.countries.get(alpha_2=country.upper())
        if found is None:
            raise _field_error(
                "address.country", "invalid_country", f"'{country}' is not an ISO 3166-1 alpha-2 code"
            )
        address = {**address, "country": found.alpha_2}
    return {k: v for k, v in address.items() if v is not None}


def _check_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _field_error("timezone", "invalid_timezone", f"'{tz}' is not an IANA time zone") from None
    if tz not in available_timezones() and tz != "UTC":
        raise _field_error("timezone", "invalid_timezone", f"'{tz}' is not an IANA time zone")
    return tz


def _check_locale(locale: str) -> str:
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise _field_error("locale", "invalid_locale", f"'{locale}' is not a known locale") from None


def _check_currency(code: str) -> str:
    try:
        return Currency.of(code).code
    except InvalidInput as exc:
        raise _field_error("currency", exc.code, exc.message) from None


def _check_tax_ids(tax_ids: list[dict[str, str]], country: str | None) -> list[dict[str, str]]:
    out = []
    for i, t in enumerate(tax_ids):
        try:
            value = validate_tax_id(type=t["type"], value=t["value"], country=None)
        except InvalidInput as exc:
            field = exc.details[0].get("field", "value") if exc.details else "value"  # "type" or "value"
            raise InvalidInput(
                exc.message,
                code=exc.code,
                details=[{"field": f"tax_ids[{i}].{field}", "code": exc.code, "message": exc.message}],
            ) from exc
        out.append(
            {"type": t["type"], "value": value, "country": tax_id_country(type=t["type"], value=value) or ""}
        )
    return out


def balance_of(ctx: Ctx, customer_id: str) -> int:
    """Return the customer's credit balance in minor units (positive: credit the customer can use)."""
    total = ctx.session.scalar(
        select(func.coalesce(func.sum(CustomerBalanceTransaction.amount), 0)).where(
            CustomerBalanceTransaction.org_id == ctx.org_id,
            CustomerBalanceTransaction.customer_id == customer_id,
        )
    )
    return int(total or 0)


def customer_view(ctx: Ctx, customer: Customer) -> CustomerView:
    """The customer's public representation, with its current balance."""
    return CustomerView.of(customer, balance=balance_of(ctx, customer.id))


def _set_external_ids(ctx: Ctx, customer: Customer, external_ids: dict[str, str | None]) -> None:
    current = {e.system: e for e in customer.external_ids}
    for system, ext in external_ids.items():
        if ext is None:
            if system in current:
                customer.external_ids.remove(current[system])
            entity_mappings.mirror_customer_id(ctx, customer_id=customer.id, system=system, external_id=None)
            continue
        owner = ctx.session.scalar(
            select(CustomerExternalId.customer_id).where(
                CustomerExternalId.org_id == ctx.org_id,
                CustomerExternalId.system == system,
                CustomerExternalId.external_id == ext,
            )
        )
        if owner is not None and owner != customer.id:
            raise ExternalIdTaken(
                f"customer {owner} already has {system} id '{ext}'",
                details=[{"field": f"external_ids.{system}", "code": "external_id_taken"}],
            )
        if system in current:
            current[system].external_id = ext
        else:
            customer.external_ids.append(
                CustomerExternalId(org_id=ctx.org_id, system=system, external_id=ext)
            )
        entity_mappings.mirror_customer_id(ctx, customer_id=customer.id, system=system, external_id=ext)


def _snapshot(c: Customer) -> dict[str, Any]:
    return {
        "name": c.name,
        "email": c.email,
        "address": dict(c.address),
        "currency": c.currency,
        "timezone": c.timezone,
        "locale": c.locale,
        "tax_ids": list(c.tax_ids),
        "external_ids": {e.system: e.external_id for e in c.external_ids},
        "metadata": dict(c.metadata_),
    }


def create_customer(
    ctx: Ctx,
    *,
    name: str,
    email: str | None = None,
    address: dict[str, Any] | None = None,
    currency: str | None = None,
    timezone: str = "UTC",
    locale: str = "en_US",
    tax_ids: list[dict[str, str]] | None = None,
    external_ids: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    test_clock_id: str | None = None,
) -> Customer:
    """Create a customer and return it; with ``test_clock_id`` it lives on that test clock's time.

    Raises InvalidInput (bad country, zone, locale, currency, tax id), NotFound (clock), ExternalIdTaken."""
    now = ctx.now()
    addr = _check_address(address or {})
    customer = Customer(
        id=new_id("cus"),
        org_id=ctx.org_id,
        name=name,
        email=email,
        address=addr,
        currency=_check_currency(currency) if currency else None,
        timezone=_check_timezone(timezone),
        locale=_check_locale(locale),
        tax_ids=_check_tax_ids(tax_ids or [], addr.get("country")),
        metadata_=metadata or {},
        test_clock_id=ctx.get(TestClock, test_clock_id, label="test clock").id if test_clock_id else None,
        created_at=now,
        updated_at=now,
    )
    customer.external_ids = []
    ctx.session.add(customer)
    _set_external_ids(ctx, customer, dict(external_ids or {}))
    ctx.session.flush()
    recover_customer(ctx, customer)  # usage events that waited for this customer's external id
    record(
        ctx,
        action="customer.create",
        object_type="customer",
        object_id=customer.id,
        changes=diff({}, _snapshot(customer)),
        event_type="customer.created",
        data=CustomerView.of(customer, balance=0).payload(),
    )
    return customer


def update_customer(ctx: Ctx, customer_id: str, *, changes: dict[str, Any]) -> Customer:
    """Apply ``changes`` (only the fields given) and return the customer.

    ``external_ids`` merges per system (a ``null`` value unlinks). Raises NotFound, InvalidInput,
    ExternalIdTaken, and Conflict ``currency_locked`` when changing the currency after invoicing.
    """
    c = ctx.get(Customer, customer_id, for_update=True, label="customer")
    before = _snapshot(c)
    if "name" in changes:
        c.name = changes["name"]
    if "email" in changes:
        c.email = changes["email"]
    if "address" in changes:
        c.address = _check_address(changes["address"] or {})
    if "currency" in changes and changes["currency"] != c.currency:
        new = _check_currency(changes["currency"]) if changes["currency"] else None
        has_invoices = ctx.session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.org_id == ctx.org_id, Invoice.customer_id == c.id)
        )
        if has_invoices and new != c.currency:
            raise Conflict(
                "the customer's currency cannot change once it has invoices", code="currency_locked"
            )
        c.currency = new
    if "timezone" in changes:
        c.timezone = _check_timezone(changes["timezone"])
    if "locale" in changes:
        c.locale = _check_locale(changes["locale"])
    if "tax_ids" in changes:
        c.tax_ids = _check_tax_ids(changes["tax_ids"] or [], c.address.get("country"))
    if "metadata" in changes:
        c.metadata_ = merge_metadata(c.metadata_, changes["metadata"])
    if "external_ids" in changes:
        _set_external_ids(ctx, c, changes["external_ids"] or {})
    c.updated_at = ctx.now()
    ctx.session.flush()
    if "external_ids" in changes:
        recover_customer(ctx, c)
    record(
        ctx,
        action="customer.update",
        object_type="customer",
        object_id=c.id,
        changes=diff(before, _snapshot(c)),
        event_type="customer.updated",
        data=customer_view(ctx, c).payload(),
    )
    return c


def archive_customer(ctx: Ctx, customer_id: str) -> Customer:
    """Archive the customer (kept for its documents; no new invoices). Archiving twice is a no-op."""
    c = ctx.get(Customer, customer_id, for_update=True, label="customer")
    if c.archived_at is None:
        c.archived_at = ctx.now()
        c.updated_at = c.archived_at
        ctx.session.flush()
        record(
            ctx,
            action="customer.archive",
            object_type="customer",
            object_id=c.id,
            changes={"archived": {"before": False, "after": True}},
            event_type="customer.archived",
            data=customer_view(ctx, c).payload(),
        )
    return c


def find_by_external_id(ctx: Ctx, *, system: str, external_id: str) -> Customer:
    """Return the customer linked to ``external_id`` in ``system``; raises NotFound."""
    cid = ctx.session.scalar(
        select(CustomerExternalId.customer_id).where(
            CustomerExternalId.org_id == ctx.org_id,
            CustomerExternalId.system == system,
            CustomerExternalId.external_id == external_id,
        )
    )
    return ctx.get(Customer, cid or f"{system}:{external_id}", label="customer")


def list_customers(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    email: str | None = None,
    external_system: str | None = None,
    external_id: str | None = None,
    include_archived: bool = True,
) -> Page[Customer]:
    """One page of customers, newest first, optionally filtered."""
    stmt = select(Customer).where(Customer.org_id == ctx.org_id)
    if email is not None:
        stmt = stmt.where(func.lower(Customer.email) == email.lower())
    if external_id is not None:
        sub = select(CustomerExternalId.customer_id).where(
            CustomerExternalId.org_id == ctx.org_id, CustomerExternalId.external_id == external_id
        )
        if external_system is not None:
            sub = sub.where(CustomerExternalId.system == external_system)
        stmt = stmt.where(Customer.id.in_(sub))
    if not include_archived:
        stmt = stmt.where(Customer.archived_at.is_(None))
    return paginate(
        ctx, stmt, Customer, limit=limit, starting_after=starting_after, ending_before=ending_before
    )

"""Quotes: what sales offers a customer, frozen when finalized, turned into a subscription when accepted.

A quote holds a plan or lines (prices with quantities and, for flat and per-unit prices, a negotiated
amount), a coupon, a term and a start. Its statuses move by :mod:`revflow.domain.quotes`: ``draft`` (editable)
→ ``open`` (numbered ``Q-000001``, frozen) → ``accepted`` or ``canceled``. Accepting makes a custom price
for every negotiated line and a subscription (``quote_id`` set) billing exactly the quoted prices and
coupon; :mod:`revflow.services.quote_matching` checks its invoices against the quote.

Quote times (``finalized_at``, ``accepted_at``, ...) are the customer's test-clock time when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import select

from revflow.domain.errors import Conflict, InvalidInput, NotFound
from revflow.domain.ids import new_id
from revflow.domain.metadata import merge_metadata
from revflow.domain.money import CurrencyMismatch
from revflow.domain.quotes import QuoteStatus, ensure_acceptable, ensure_transition
from revflow.services.catalog import get_plan_version
from revflow.services.context import Ctx
from revflow.services.coupons import CouponCurrencyMismatch, CouponExpired, CouponRedemptionLimit
from revflow.services.numbering import next_number
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.quote_matching import (
    QuotedLine,
    check_invoice_against_quote,
    check_subscription_invoices,
    quoted_lines,
    quoted_terms,
)
from revflow.services.recorder import diff, record
from revflow.services.subscriptions import create_subscription, now_for
from revflow.services.views_catalog import PriceView
from revflow.services.views_quotes import QuoteView
from revflow.storage.models import Coupon, Customer, Organization, Plan, Price, Quote

__all__ = [
    "COLLECTION_METHODS",
    "accept_quote",
    "cancel_quote",
    "check_invoice_against_quote",
    "check_subscription_invoices",
    "create_quote",
    "finalize_quote",
    "list_quotes",
    "update_quote",
]

COLLECTION_METHODS: Final = frozenset({"charge_automatically", "send_invoice"})
_MAX_LINES: Final = 20
_Q = QuoteStatus


def _error(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code, details=[{"field": field, "code": code, "message": message}])


def _dec_str(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


# --- validation -------------------------------------------------------------------------------------


def _decimal(value: object, field: str, code: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _error(field, code, f"{field} must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _error(field, code, f"{field} must be a decimal string, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise _error(field, code, f"{field} must be a finite amount of at least 0")
    return number


def _line(ctx: Ctx, raw: Mapping[str, Any], i: int) -> tuple[Price, Decimal, Decimal | None]:
    field = f"lines[{i}]"
    try:
        price = ctx.get(Price, str(raw.get("price_id")), label="price")
    except NotFound as exc:
        raise NotFound(
            exc.message, details=[{"field": f"{field}.price_id", "code": "resource_missing"}]
        ) from None
    if not price.active or price.custom:
        raise _error(f"{field}.price_id", "price_inactive", f"price {price.id} cannot be quoted")
    quantity = _decimal(raw.get("quantity", 1), f"{field}.quantity", "invalid_quantity")
    override = None
    if raw.get("unit_amount") is not None:
        override = _decimal(raw["unit_amount"], f"{field}.unit_amount", "invalid_unit_amount")
        try:
            quoted_terms(price, override)
        except InvalidInput as exc:
            raise _error(f"{field}.unit_amount", exc.code, exc.message) from None
    return price, quantity, override


def _plan_lines(ctx: Ctx, plan_id: str, currency: str | None) -> list[tuple[Price, Decimal, Decimal | None]]:
    plan = ctx.get(Plan, plan_id, label="plan")
    version = get_plan_version(ctx, plan.id, version=plan.current_version)
    prices = {
        p.id: p
        for p in ctx.session.scalars(select(Price).where(Price.id.in_([i.price_id for i in version.items])))
    }
    found = [(prices[i.price_id], i.quantity, None) for i in version.items]
    chosen = currency or (found[0][0].currency if found else None)
    return [(p, q, o) for p, q, o in found if p.currency == chosen]


def _check_lines(lines: Sequence[tuple[Price, Decimal, Decimal | None]], currency: str) -> None:
    seen: set[str] = set()
    for i, (price, _, _) in enumerate(lines):
        if price.id in seen:
            raise _error(f"lines[{i}].price_id", "duplicate_price", f"price {price.id} is quoted twice")
        seen.add(price.id)
        if price.currency != currency:
            raise CurrencyMismatch(
                f"price {price.id} is in {price.currency}; the quote is in {currency}",
                details=[{"field": f"lines[{i}].price_id", "code": "currency_mismatch"}],
            )
    recurring = {(p.interval, p.interval_count) for p, _, _ in lines if p.type == "recurring"}
    if not recurring:
        raise _error("lines", "no_recurring_price", "a quote needs at least one recurring price")
    if len(recurring) > 1:
        raise _error("lines", "interval_mismatch", "all recurring prices of a quote must share one interval")


def _check_coupon(ctx: Ctx, coupon_id: str, currency: str, now: datetime) -> None:
    try:
        coupon = ctx.get(Coupon, coupon_id, label="coupon")
    except NotFound as exc:
        raise NotFound(exc.message, details=[{"field": "coupon_id", "code": "resource_missing"}]) from None
    if coupon.redeem_by is not None and coupon.redeem_by <= now:
        raise CouponExpired(f"coupon {coupon.id} can no longer be redeemed (redeem_by has passed)")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponRedemptionLimit(f"coupon {coupon.id} has been redeemed {coupon.times_redeemed} times")
    if coupon.amount_off is not None and coupon.currency != currency:
        raise CouponCurrencyMismatch(
            f"coupon {coupon.id} takes {coupon.currency} off, but the quote is in {currency}",
            details=[{"field": "coupon_id", "code": "coupon_currency_mismatch"}],
        )


def _check_terms(values: Mapping[str, Any], now: datetime) -> None:
    checks = [
        ("term_months", 1, 120),
        ("trial_days", 1, 730),
        ("days_until_due", 0, 365),
    ]
    for field, lo, hi in checks:
        value = values.get(field)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi
        ):
            raise _error(field, f"invalid_{field}", f"{field} must be between {lo} and {hi}")
    if values.get("collection_method") not in COLLECTION_METHODS:
        raise _error(
            "collection_method",
            "invalid_collection_method",
            f"collection_method must be one of {sorted(COLLECTION_METHODS)}",
        )
    for field in ("start_at", "expires_at"):
        value = values.get(field)
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise _error(field, f"invalid_{field}", f"{field} must carry a time zone")
    expires = values.get("expires_at")
    if expires is not None and expires <= now:
        raise _error("expires_at", "invalid_expires_at", "expires_at must be in the future")


def _apply(ctx: Ctx, q: Quote, customer: Customer, values: Mapping[str, Any], now: datetime) -> None:
    """Check ``values`` (every field of a quote) and write them to ``q``; raises InvalidInput, NotFound,
    CurrencyMismatch and the coupon errors. Nothing is written when it raises."""
    plan_id, raw_lines = values.get("plan_id"), values.get("lines")
    if (plan_id is None) == (not raw_lines):
        raise _error("plan_id", "parameter_missing", "give either plan_id or lines")
    if raw_lines is not None and len(raw_lines) > _MAX_LINES:
        raise _error("lines", "too_many_lines", f"a quote holds at most {_MAX_LINES} lines")
    given = values.get("currency")
    currency = (given or customer.currency or "").upper() or None
    if plan_id is not None:
        lines = _plan_lines(ctx, plan_id, currency)
        if not lines:
            raise CurrencyMismatch(
                f"plan {plan_id} has no prices in {currency}",
                details=[{"field": "plan_id", "code": "currency_mismatch"}],
            )
    else:
        lines = [_line(ctx, raw, i) for i, raw in enumerate(raw_lines or [])]
    currency = currency or lines[0][0].currency
    if customer.currency is not None and customer.currency != currency:
        raise CurrencyMismatch(
            f"customer {customer.id} is billed in {customer.currency}, not {currency}",
            details=[{"field": "currency", "code": "currency_mismatch"}],
        )
    _check_lines(lines, currency)
    _check_terms(values, now)
    if values.get("coupon_id") is not None:
        _check_coupon(ctx, values["coupon_id"], currency, now)
    stored = []
    for price, quantity, override in lines:
        entry = {"price_id": price.id, "quantity": _dec_str(quantity)}
        if override is not None:
            entry["unit_amount"] = _dec_str(override)
        stored.append(entry)
    q.plan_id, q.lines, q.currency = plan_id, stored, currency
    q.coupon_id = values.get("coupon_id")
    q.term_months, q.auto_renew = values.get("term_months"), bool(values.get("auto_renew", True))
    q.start_at, q.trial_days = values.get("start_at"), values.get("trial_days")
    q.collection_method, q.days_until_due = values["collection_method"], values.get("days_until_due")
    q.expires_at = values.get("expires_at")


_FIELDS: Final = (
    "plan_id",
    "lines",
    "currency",
    "coupon_id",
    "term_months",
    "auto_renew",
    "start_at",
    "trial_days",
    "collection_method",
    "days_until_due",
    "expires_at",
)


def _values(q: Quote) -> dict[str, Any]:
    lines = None if q.plan_id is not None else [dict(li) for li in q.lines]
    return {
        "plan_id": q.plan_id,
        "lines": lines,
        "currency": q.currency,
        "coupon_id": q.coupon_id,
        "term_months": q.term_months,
        "auto_renew": q.auto_renew,
        "start_at": q.start_at,
        "trial_days": q.trial_days,
        "collection_method": q.collection_method,
        "days_until_due": q.days_until_due,
        "expires_at": q.expires_at,
    }


def _snapshot(q: Quote) -> dict[str, Any]:
    return {k: v for k, v in QuoteView.of(q).payload().items() if k not in ("created_at", "updated_at")}


def _record(ctx: Ctx, q: Quote, verb: str, before: dict[str, Any], event: str, at: datetime) -> None:
    q.updated_at = at
    ctx.session.flush()
    record(
        ctx,
        action=f"quote.{verb}",
        object_type="quote",
        object_id=q.id,
        changes=diff(before, _snapshot(q)),
        event_type=event,
        data=QuoteView.of(q).payload(),
    )


# --- use cases --------------------------------------------------------------------------------------


def create_quote(
    ctx: Ctx,
    *,
    customer_id: str,
    plan_id: str | None = None,
    lines: Sequence[Mapping[str, Any]] | None = None,
    currency: str | None = None,
    coupon_id: str | None = None,
    term_months: int | None = None,
    auto_renew: bool = True,
    start_at: datetime | None = None,
    trial_days: int | None = None,
    collection_method: str = "send_invoice",
    days_until_due: int | None = None,
    expires_at: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Quote:
    """Create a draft quote for the customer and return it (event ``quote.created``).

    Give ``plan_id`` (its current version's prices in the quote's currency, at list price) or ``lines``:
    ``{"price_id", "quantity", "unit_amount"?}`` where ``unit_amount`` (minor units, a decimal string) is
    the negotiated unit amount of a per-unit price or flat amount of a flat price. The currency is the
    given one, else the customer's, else the first price's. Raises NotFound (customer, price, plan,
    coupon), Conflict ``customer_archived``, CurrencyMismatch, InvalidInput (``parameter_missing``,
    ``price_inactive``, ``duplicate_price``, ``no_recurring_price``, ``interval_mismatch``,
    ``override_not_supported``, ``invalid_unit_amount``, ``invalid_quantity``, ``invalid_expires_at``, ...)
    and the coupon errors (``coupon_expired``, ``coupon_redemption_limit``, ``coupon_currency_mismatch``).
    """
    customer = ctx.get(Customer, customer_id, label="customer")
    if customer.archived_at is not None:
        raise Conflict(f"customer {customer.id} is archived", code="customer_archived")
    now = now_for(ctx, customer.test_clock_id)
    q = Quote(
        id=new_id("qt"),
        org_id=ctx.org_id,
        customer_id=customer.id,
        number=None,
        status=_Q.DRAFT.value,
        metadata_=dict(metadata or {}),
        created_at=now,
        updated_at=now,
    )
    values = {
        "plan_id": plan_id,
        "lines": None if lines is None else [dict(li) for li in lines],
        "currency": currency,
        "coupon_id": coupon_id,
        "term_months": term_months,
        "auto_renew": auto_renew,
        "start_at": start_at,
        "trial_days": trial_days,
        "collection_method": collection_method,
        "days_until_due": days_until_due,
        "expires_at": expires_at,
    }
    _apply(ctx, q, customer, values, now)
    ctx.session.add(q)
    _record(ctx, q, "create", {}, "quote.created", now)
    return q


def update_quote(ctx: Ctx, quote_id: str, *, changes: Mapping[str, Any]) -> Quote:
    """Change a draft quote and return it (event ``quote.updated``). ``changes`` holds any field of
    :func:`create_quote` but ``customer_id``; null clears an optional field; ``plan_id`` and ``lines``
    replace each other; ``metadata`` is merged (null or "" removes a key).

    Raises Conflict ``invalid_state`` unless the quote is a draft, and the errors of :func:`create_quote`.
    """
    q = ctx.get(Quote, quote_id, for_update=True, label="quote")
    if q.status != _Q.DRAFT:
        raise Conflict(f"a {q.status} quote cannot be changed; only a draft can", code="invalid_state")
    unknown = sorted(set(changes) - {*_FIELDS, "metadata"})
    if unknown:
        raise _error(unknown[0], "invalid_field", f"{unknown[0]} cannot be changed")
    customer = ctx.get(Customer, q.customer_id, label="customer")
    now = now_for(ctx, customer.test_clock_id)
    before = _snapshot(q)
    values = {**_values(q), **{k: v for k, v in changes.items() if k != "metadata"}}
    if "plan_id" in changes and changes["plan_id"] is not None and "lines" not in changes:
        values["lines"] = None
    if changes.get("lines") and "plan_id" not in changes:
        values["plan_id"] = None
    if "currency" not in changes and ("plan_id" in changes or "lines" in changes):
        values["currency"] = None if customer.currency is None else q.currency
    if values.get("collection_method") is None:
        values["collection_method"] = "send_invoice"
    if values.get("auto_renew") is None:
        values["auto_renew"] = True
    _apply(ctx, q, customer, values, now)
    if "metadata" in changes:
        q.metadata_ = merge_metadata(q.metadata_, changes["metadata"])
    _record(ctx, q, "update", before, "quote.updated", now)
    return q


def finalize_quote(ctx: Ctx, quote_id: str) -> Quote:
    """Finalize a draft: it gets the organization's next quote number (``quote_prefix`` + 6 digits) and
    can no longer change. Returns the quote (event ``quote.finalized``).

    Its prices and coupon are checked again. Raises InvalidTransition (``invalid_state``) unless it is a
    draft, QuoteExpired when past its ``expires_at``, and the errors of :func:`create_quote`.
    """
    q = ctx.get(Quote, quote_id, for_update=True, label="quote")
    ensure_transition(q.status, _Q.OPEN)
    customer = ctx.get(Customer, q.customer_id, label="customer")
    now = now_for(ctx, customer.test_clock_id)
    ensure_acceptable(expires_at=q.expires_at, as_of=now)
    before = _snapshot(q)
    _apply(ctx, q, customer, _values(q), now)
    org = ctx.get(Organization, ctx.org_id, label="organization")
    q.number = next_number(ctx, kind="quote", prefix=org.quote_prefix)
    q.status, q.finalized_at = _Q.OPEN.value, now
    _record(ctx, q, "finalize", before, "quote.finalized", now)
    return q


def _custom_price(ctx: Ctx, q: Quote, line: QuotedLine, now: datetime) -> Price:
    """A new price for a negotiated line: the list price's product, model and cadence, the quoted amount."""
    base = line.list_price
    price = Price(
        id=new_id("price"),
        org_id=ctx.org_id,
        product_id=base.product_id,
        nickname=base.nickname,
        currency=base.currency,
        type=base.type,
        model=base.model,
        unit_amount=line.terms.unit_amount,
        flat_amount=line.terms.flat_amount,
        tiers=[],
        package_size=None,
        package_rounding=base.package_rounding,
        interval=base.interval,
        interval_count=base.interval_count,
        billing_timing=base.billing_timing,
        metric_code=base.metric_code,
        event_min_amount=base.event_min_amount,
        event_max_amount=base.event_max_amount,
        custom=True,
        active=True,
        metadata_={"quote_id": q.id, "list_price_id": base.id},
        created_at=now,
    )
    ctx.session.add(price)
    ctx.session.flush()
    view = PriceView.of(price)
    record(
        ctx,
        action="price.create",
        object_type="price",
        object_id=price.id,
        changes=diff({}, view.payload()),
        event_type="price.created",
        data=view.payload(),
    )
    return price


def _plan_matches(ctx: Ctx, q: Quote, lines: list[QuotedLine]) -> bool:
    """Whether the quote's plan still has exactly the quoted prices and quantities (then the subscription
    is made on the plan, so it stays linked to it)."""
    if q.plan_id is None or any(li.unit_amount is not None for li in lines):
        return False
    current = _plan_lines(ctx, q.plan_id, q.currency)
    return [(p.id, qty) for p, qty, _ in current] == [(li.list_price.id, li.quantity) for li in lines]


def accept_quote(ctx: Ctx, quote_id: str, *, acceptor_name: str, acceptor_email: str) -> Quote:
    """Accept an open quote on the customer's behalf and return it (event ``quote.accepted``).

    Records who accepted and when (the customer's test-clock time, if any), makes a custom price for every
    negotiated line and creates the subscription (``quote_id`` set) with the quoted prices, quantities,
    coupon, term, start and trial; the subscription bills what is due at once.

    Raises QuoteAlreadyAccepted (409 ``quote_already_accepted``) for a quote accepted before,
    InvalidTransition (409 ``invalid_state``) for a draft or canceled quote, QuoteExpired (409
    ``quote_expired``) past its ``expires_at``, and the errors of
    :func:`revflow.services.subscriptions.create_subscription` and of redeeming the coupon. Nothing
    changes when it raises (the work runs in a savepoint).
    """
    q = ctx.get(Quote, quote_id, for_update=True, label="quote")
    ensure_transition(q.status, _Q.ACCEPTED)
    customer = ctx.get(Customer, q.customer_id, label="customer")
    now = now_for(ctx, customer.test_clock_id)
    ensure_acceptable(expires_at=q.expires_at, as_of=now)
    before = _snapshot(q)
    lines = quoted_lines(ctx, q)
    on_plan = _plan_matches(ctx, q, lines)
    with ctx.session.begin_nested():  # all or nothing, even for callers that do not roll back
        specs: list[tuple[Price, Decimal]] = []
        stored = []
        for line in lines:
            entry = dict(q.lines[line.index])
            price = line.list_price
            if line.unit_amount is not None:
                price = _custom_price(ctx, q, line, now)
                entry["custom_price_id"] = price.id
            specs.append((price, line.quantity))
            stored.append(entry)
        # Accepted before the subscription exists, so the checks of its first invoice see the quote's prices.
        q.lines = stored
        q.status, q.accepted_at = _Q.ACCEPTED.value, now
        q.acceptor_name, q.acceptor_email = acceptor_name, acceptor_email
        ctx.session.flush()
        sub = create_subscription(
            ctx,
            customer_id=customer.id,
            plan_id=q.plan_id if on_plan else None,
            price_specs=None if on_plan else specs,
            currency=q.currency,
            start_at=q.start_at,
            trial_days=q.trial_days,
            collection_method=q.collection_method,
            days_until_due=q.days_until_due,
            term_months=q.term_months,
            auto_renew=q.auto_renew,
            quote_id=q.id,
            coupon_id=q.coupon_id,
            metadata={"quote_id": q.id},
        )
        q.subscription_id = sub.id
        _record(ctx, q, "accept", before, "quote.accepted", now)
    return q


def cancel_quote(ctx: Ctx, quote_id: str) -> Quote:
    """Cancel a draft or open quote and return it (event ``quote.canceled``); it can no longer be accepted.

    Raises InvalidTransition (``invalid_state``) for an accepted or canceled quote.
    """
    q = ctx.get(Quote, quote_id, for_update=True, label="quote")
    ensure_transition(q.status, _Q.CANCELED)
    customer = ctx.get(Customer, q.customer_id, label="customer")
    now = now_for(ctx, customer.test_clock_id)
    before = _snapshot(q)
    q.status, q.canceled_at = _Q.CANCELED.value, now
    _record(ctx, q, "cancel", before, "quote.canceled", now)
    return q


def list_quotes(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
) -> Page[Quote]:
    """One page of quotes, newest first, optionally of one customer or in one status."""
    stmt = filtered(
        select(Quote).where(Quote.org_id == ctx.org_id),
        (Quote.customer_id, customer_id),
        (Quote.status, status),
    )
    return paginate(ctx, stmt, Quote, limit=limit, starting_after=starting_after, ending_before=ending_before)

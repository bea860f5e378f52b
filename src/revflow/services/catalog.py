"""Catalog: products, prices and plans (named bundles of prices, versioned).

Prices are facts once created: only ``active``, ``nickname`` and ``metadata`` change; new terms are a
new price. A plan's price list is versioned: replacing it makes version N+1 and leaves every earlier
version, and the subscriptions on it, untouched. Amounts are minor units as exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from revflow.domain.cycles import Interval
from revflow.domain.errors import Conflict, InvalidInput, NotFound
from revflow.domain.ids import new_id
from revflow.domain.metadata import merge_metadata
from revflow.domain.money import Currency
from revflow.domain.pricing import InvalidPricing, PackageRounding, PriceTerms, PricingModel, Tier
from revflow.services.context import Ctx
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.recorder import diff, record
from revflow.services.views_catalog import PlanVersionView, PlanView, PriceView, ProductView
from revflow.storage.models import Plan, PlanVersion, PlanVersionItem, Price, Product

__all__ = [
    "MAX_INTERVAL_COUNT",
    "BillingTiming",
    "CurrencyNotOffered",
    "IntervalMismatch",
    "PlanCodeTaken",
    "PlanItem",
    "PriceInactive",
    "PriceType",
    "create_plan",
    "create_plan_version",
    "create_price",
    "create_product",
    "get_plan_version",
    "list_plan_versions",
    "list_plans",
    "list_prices",
    "list_products",
    "plan_prices",
    "plan_version_view",
    "plan_view",
    "update_plan",
    "update_price",
    "update_product",
]


class PriceType(StrEnum):
    """``recurring`` prices bill every cycle; ``one_time`` prices bill once (setup fees)."""

    RECURRING = "recurring"
    ONE_TIME = "one_time"


class BillingTiming(StrEnum):
    """Whether a recurring price bills at the start of its period or at its end (usage: always the end)."""

    IN_ADVANCE = "in_advance"
    IN_ARREARS = "in_arrears"


#: The longest cycle per interval: a year (three for yearly prices, for multi-year prepaid terms).
MAX_INTERVAL_COUNT: Final[Mapping[Interval, int]] = {
    Interval.DAY: 365,
    Interval.WEEK: 52,
    Interval.MONTH: 12,
    Interval.QUARTER: 4,
    Interval.YEAR: 3,
}

_PRECISION: Final = 100


class PlanCodeTaken(Conflict):
    """Another plan of the organization already has this code."""

    code = "plan_code_taken"


class PriceInactive(InvalidInput):
    """An archived price cannot be added to a plan."""

    code = "price_inactive"


class IntervalMismatch(InvalidInput):
    """A plan's recurring prices in one currency do not share one interval and interval count."""

    code = "interval_mismatch"


class CurrencyNotOffered(InvalidInput):
    """The plan version has no price in the requested currency."""

    code = "currency_not_offered"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One price of a plan and the quantity a subscription starts with."""

    price_id: str
    quantity: Decimal = Decimal(1)


def _field_error(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code, details=[{"field": field, "code": code, "message": message}])


def _canonical(number: Decimal) -> Decimal:
    """The shortest exact form of ``number`` (``"0.0400"`` → ``0.04``, ``-0`` → ``0``)."""
    with localcontext() as c:
        c.prec = _PRECISION
        return (number + 0).normalize()


def _decimal(value: object, field: str) -> Decimal:
    """``value`` (Decimal, int or decimal string) as a finite Decimal; raises InvalidPricing."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidPricing(f"{field} must be a decimal string, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InvalidPricing(f"{field} must be a decimal string, got {value!r}") from None
    if not number.is_finite():
        raise InvalidPricing(f"{field} must be a finite amount, got {value!r}")
    return _canonical(number)


def _tier(raw: Mapping[str, Any], i: int) -> Tier:
    up_to = raw.get("up_to")
    if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int)):
        raise InvalidPricing(f"tiers[{i}].up_to must be a whole number or null")
    return Tier(
        up_to=None if up_to is None else Decimal(up_to),
        unit_amount=_decimal(raw.get("unit_amount", 0), f"tiers[{i}].unit_amount"),
        flat_amount=_decimal(raw.get("flat_amount", 0), f"tiers[{i}].flat_amount"),
    )


def _terms(
    *,
    model: str,
    unit_amount: object,
    flat_amount: object,
    tiers: Sequence[Mapping[str, Any]],
    package_size: int | None,
    package_rounding: str | None,
    event_min: object = None,
    event_max: object = None,
) -> PriceTerms:
    try:
        pricing_model = PricingModel(model)
    except ValueError:
        known = ", ".join(PricingModel)
        raise InvalidPricing(f"model must be one of {known}, got {model!r}") from None
    try:
        rounding = PackageRounding(package_rounding or PackageRounding.UP)
    except ValueError:
        raise InvalidPricing(f"package_rounding must be up or down, got {package_rounding!r}") from None
    return PriceTerms(
        model=pricing_model,
        unit_amount=_decimal(unit_amount, "unit_amount"),
        flat_amount=_decimal(flat_amount, "flat_amount"),
        tiers=tuple(_tier(t, i) for i, t in enumerate(tiers)),
        package_size=package_size,
        package_rounding=rounding,
        event_min=None if event_min is None else _decimal(event_min, "event_min_amount"),
        event_max=None if event_max is None else _decimal(event_max, "event_max_amount"),
    )


def _stored_tiers(terms: PriceTerms) -> list[dict[str, Any]]:
    return [
        {
            "up_to": None if t.up_to is None else format(t.up_to, "f"),
            "unit_amount": format(t.unit_amount, "f"),
            "flat_amount": format(t.flat_amount, "f"),
        }
        for t in terms.tiers
    ]


def _check_currency(code: str) -> str:
    try:
        return Currency.of(code).code
    except InvalidInput as exc:
        raise _field_error("currency", exc.code, exc.message) from None


def _check_type(value: str) -> PriceType:
    try:
        return PriceType(value)
    except ValueError:
        raise _field_error("type", "invalid_price_type", "type must be recurring or one_time") from None


def _check_cycle(
    price_type: PriceType, interval: str | None, interval_count: int | None
) -> tuple[Interval | None, int]:
    if price_type is PriceType.ONE_TIME:
        if interval is not None or interval_count is not None:
            raise _field_error(
                "interval", "invalid_interval", "a one_time price has no interval or interval_count"
            )
        return None, 1
    if interval is None:
        raise _field_error("interval", "invalid_interval", "a recurring price needs an interval")
    try:
        unit = Interval(interval)
    except ValueError:
        known = ", ".join(Interval)
        raise _field_error("interval", "invalid_interval", f"interval must be one of {known}") from None
    count = 1 if interval_count is None else interval_count
    limit = MAX_INTERVAL_COUNT[unit]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise _field_error(
            "interval_count",
            "invalid_interval",
            f"interval_count for a {unit} interval must be between 1 and {limit}, got {count!r}",
        )
    return unit, count


def _check_timing(
    price_type: PriceType, model: PricingModel, metric_code: str | None, billing_timing: str | None
) -> BillingTiming:
    try:
        timing = None if billing_timing is None else BillingTiming(billing_timing)
    except ValueError:
        raise _field_error(
            "billing_timing", "invalid_billing_timing", "billing_timing must be in_advance or in_arrears"
        ) from None
    if metric_code is not None:
        if price_type is not PriceType.RECURRING:
            raise _field_error("metric_code", "invalid_usage_price", "a usage price must be recurring")
        if model is PricingModel.FLAT:
            raise _field_error("metric_code", "invalid_usage_price", "a usage price cannot be flat")
    elif model is PricingModel.PERCENTAGE:
        raise _field_error("metric_code", "invalid_usage_price", "a percentage price needs a metric_code")
    if metric_code is not None:  # in_advance: each ingestion request's usage is invoiced at once
        return timing or BillingTiming.IN_ARREARS
    if price_type is PriceType.ONE_TIME and timing is BillingTiming.IN_ARREARS:
        raise _field_error(
            "billing_timing", "invalid_billing_timing", "a one_time price is billed in_advance"
        )
    return timing or BillingTiming.IN_ADVANCE


# --- products ---------------------------------------------------------------------------------------


def _product_snapshot(p: Product) -> dict[str, Any]:
    return {"name": p.name, "description": p.description, "active": p.active, "metadata": dict(p.metadata_)}


def create_product(
    ctx: Ctx,
    *,
    name: str,
    description: str | None = None,
    active: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> Product:
    """Create a product and return it (audit ``product.create``, event ``product.created``)."""
    now = ctx.now()
    product = Product(
        id=new_id("prod"),
        org_id=ctx.org_id,
        name=name,
        description=description,
        active=active,
        metadata_=dict(metadata or {}),
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(product)
    ctx.session.flush()
    record(
        ctx,
        action="product.create",
        object_type="product",
        object_id=product.id,
        changes=diff({}, _product_snapshot(product)),
        event_type="product.created",
        data=ProductView.of(product).payload(),
    )
    return product


def update_product(ctx: Ctx, product_id: str, *, changes: Mapping[str, Any]) -> Product:
    """Apply ``changes`` (any of name, description, active, metadata) and return the product.

    ``metadata`` merges (null or "" removes a key); ``active=False`` archives the product, after which it
    takes no new prices. Raises NotFound and InvalidInput ``metadata_too_large``.
    """
    p = ctx.get(Product, product_id, for_update=True, label="product")
    before = _product_snapshot(p)
    if "name" in changes:
        p.name = changes["name"]
    if "description" in changes:
        p.description = changes["description"]
    if "active" in changes:
        p.active = bool(changes["active"])
    if "metadata" in changes:
        p.metadata_ = merge_metadata(p.metadata_, changes["metadata"])
    p.updated_at = ctx.now()
    ctx.session.flush()
    record(
        ctx,
        action="product.update",
        object_type="product",
        object_id=p.id,
        changes=diff(before, _product_snapshot(p)),
        event_type="product.updated",
        data=ProductView.of(p).payload(),
    )
    return p


def list_products(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    active: bool | None = None,
) -> Page[Product]:
    """One page of products, newest first."""
    stmt = select(Product).where(Product.org_id == ctx.org_id)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    return paginate(
        ctx, stmt, Product, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


# --- prices -----------------------------------------------------------------------------------------


def _price_snapshot(p: Price) -> dict[str, Any]:
    return {"active": p.active, "nickname": p.nickname, "metadata": dict(p.metadata_)}


def create_price(
    ctx: Ctx,
    *,
    product_id: str,
    currency: str,
    type: str,
    model: str,
    unit_amount: Decimal | int | str | None = None,
    flat_amount: Decimal | int | str | None = None,
    tiers: Sequence[Mapping[str, Any]] | None = None,
    package_size: int | None = None,
    package_rounding: str | None = None,
    interval: str | None = None,
    interval_count: int | None = None,
    billing_timing: str | None = None,
    metric_code: str | None = None,
    nickname: str | None = None,
    metadata: Mapping[str, str] | None = None,
    event_min_amount: Decimal | int | str | None = None,
    event_max_amount: Decimal | int | str | None = None,
) -> Price:
    """Create a price of the product and return it (event ``price.created``).

    Amounts are minor units, exact and possibly sub-minor (``"0.04"``). ``tiers`` are
    ``{"up_to": int | None, "unit_amount", "flat_amount"}``. A ``recurring`` price needs an ``interval``
    (``interval_count`` defaults to 1, at most :data:`MAX_INTERVAL_COUNT`); a ``one_time`` price has none.
    A usage price (``metric_code`` set) is recurring, not flat, and billed ``in_arrears``; other prices
    default to ``in_advance``.

    Raises NotFound (product), InvalidPricing (``invalid_pricing``: terms the model refuses), and
    InvalidInput ``product_inactive``, ``invalid_price_type``, ``invalid_interval``,
    ``invalid_usage_price``, ``invalid_billing_timing`` or ``unknown_currency``.
    """
    product = ctx.get(Product, product_id, label="product")
    if not product.active:
        raise _field_error("product_id", "product_inactive", f"product {product.id} is archived")
    code = _check_currency(currency)
    price_type = _check_type(type)
    terms = _terms(
        model=model,
        unit_amount=0 if unit_amount is None else unit_amount,
        flat_amount=0 if flat_amount is None else flat_amount,
        tiers=tiers or (),
        package_size=package_size,
        package_rounding=package_rounding,
        event_min=event_min_amount,
        event_max=event_max_amount,
    )
    unit, count = _check_cycle(price_type, interval, interval_count)
    timing = _check_timing(price_type, terms.model, metric_code, billing_timing)
    price = Price(
        id=new_id("price"),
        org_id=ctx.org_id,
        product_id=product.id,
        nickname=nickname,
        currency=code,
        type=str(price_type),
        model=str(terms.model),
        unit_amount=terms.unit_amount,
        flat_amount=terms.flat_amount,
        tiers=_stored_tiers(terms),
        package_size=terms.package_size,
        package_rounding=str(terms.package_rounding),
        interval=None if unit is None else str(unit),
        interval_count=count,
        billing_timing=str(timing),
        metric_code=metric_code,
        event_min_amount=terms.event_min,
        event_max_amount=terms.event_max,
        custom=False,
        active=True,
        metadata_=dict(metadata or {}),
        created_at=ctx.now(),
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


def update_price(ctx: Ctx, price_id: str, *, changes: Mapping[str, Any]) -> Price:
    """Apply ``changes`` to the only mutable fields of a price (active, nickname, metadata); return it.

    Archiving (``active=False``) keeps the price on the plan versions and subscriptions that use it but
    keeps it out of new plan versions. Raises NotFound, InvalidInput ``metadata_too_large``, and
    InvalidInput ``price_immutable`` for any other field.
    """
    immutable = sorted(set(changes) - {"active", "nickname", "metadata"})
    if immutable:
        raise _field_error(
            immutable[0],
            "price_immutable",
            f"a price's {', '.join(immutable)} cannot change: create a new price",
        )
    p = ctx.get(Price, price_id, for_update=True, label="price")
    before = _price_snapshot(p)
    if "active" in changes:
        p.active = bool(changes["active"])
    if "nickname" in changes:
        p.nickname = changes["nickname"]
    if "metadata" in changes:
        p.metadata_ = merge_metadata(p.metadata_, changes["metadata"])
    ctx.session.flush()
    record(
        ctx,
        action="price.update",
        object_type="price",
        object_id=p.id,
        changes=diff(before, _price_snapshot(p)),
        event_type="price.updated",
        data=PriceView.of(p).payload(),
    )
    return p


def list_prices(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    product_id: str | None = None,
    currency: str | None = None,
    active: bool | None = None,
    type: str | None = None,
) -> Page[Price]:
    """One page of catalog prices (custom quote prices excluded), newest first, optionally filtered."""
    stmt = filtered(
        select(Price).where(Price.org_id == ctx.org_id, Price.custom.is_(False)),
        (Price.product_id, product_id),
        (Price.type, type),
    )
    if currency is not None:
        stmt = stmt.where(Price.currency == currency.upper())
    if active is not None:
        stmt = stmt.where(Price.active.is_(active))
    return paginate(ctx, stmt, Price, limit=limit, starting_after=starting_after, ending_before=ending_before)


# --- plans ------------------------------------------------------------------------------------------


def _prices_by_id(ctx: Ctx, ids: Iterable[str]) -> dict[str, Price]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = ctx.session.scalars(select(Price).where(Price.org_id == ctx.org_id, Price.id.in_(wanted)))
    return {p.id: p for p in rows}


def _resolve_items(ctx: Ctx, items: Sequence[PlanItem]) -> list[tuple[Price, Decimal]]:
    """The items' prices and quantities, checked: one of the org's active prices each, no duplicates,
    one billing cycle per currency with at least one recurring price."""
    if not items:
        raise _field_error("items", "plan_items_required", "a plan needs at least one price")
    resolved: list[tuple[Price, Decimal]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        field = f"items[{i}]"
        if item.price_id in seen:
            raise _field_error(
                f"{field}.price_id", "duplicate_price", f"price {item.price_id} is listed twice"
            )
        seen.add(item.price_id)
        try:
            price = ctx.get(Price, item.price_id, label="price")
        except NotFound as exc:
            raise NotFound(
                exc.message, details=[{"field": f"{field}.price_id", "code": "resource_missing"}]
            ) from None
        if not price.active:
            raise PriceInactive(
                f"price {price.id} is archived and cannot be added to a plan",
                details=[{"field": f"{field}.price_id", "code": "price_inactive"}],
            )
        quantity = item.quantity
        if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity < 0:
            raise _field_error(f"{field}.quantity", "invalid_quantity", "quantity must be at least 0")
        resolved.append((price, _canonical(quantity)))
    _check_plan_cycles([p for p, _ in resolved])
    return resolved


def _check_plan_cycles(prices: Sequence[Price]) -> None:
    cycles: dict[str, set[tuple[str, int]]] = {}
    for p in prices:
        found = cycles.setdefault(p.currency, set())
        if p.type == PriceType.RECURRING and p.interval is not None:
            found.add((p.interval, p.interval_count))
    for currency, found in sorted(cycles.items()):
        if len(found) > 1:
            listed = " and ".join(f"every {n} {unit}" for unit, n in sorted(found))
            raise IntervalMismatch(
                f"the plan's {currency} prices bill {listed}: one interval per currency",
                details=[{"field": "items", "code": "interval_mismatch", "currency": currency}],
            )
        if not found:
            raise _field_error(
                "items",
                "recurring_price_required",
                f"the plan's {currency} prices include no recurring price",
            )


def _add_version(ctx: Ctx, plan: Plan, items: Sequence[tuple[Price, Decimal]]) -> PlanVersion:
    version = PlanVersion(
        id=new_id("plnv"),
        org_id=ctx.org_id,
        plan_id=plan.id,
        version=plan.current_version,
        created_at=ctx.now(),
    )
    version.items = [
        PlanVersionItem(org_id=ctx.org_id, price_id=price.id, quantity=quantity, position=i)
        for i, (price, quantity) in enumerate(items)
    ]
    ctx.session.add(version)
    return version


def _current_version(ctx: Ctx, plan: Plan) -> PlanVersion:
    version = ctx.session.scalar(
        select(PlanVersion).where(
            PlanVersion.org_id == ctx.org_id,
            PlanVersion.plan_id == plan.id,
            PlanVersion.version == plan.current_version,
        )
    )
    if version is None:  # pragma: no cover - every plan is created with its first version
        raise NotFound(f"plan {plan.id} has no version {plan.current_version}")
    return version


def _plan_snapshot(p: Plan) -> dict[str, Any]:
    return {
        "code": p.code,
        "name": p.name,
        "description": p.description,
        "active": p.active,
        "metadata": dict(p.metadata_),
    }


def _items_snapshot(items: Sequence[tuple[Price, Decimal]]) -> list[dict[str, str]]:
    return [{"price_id": p.id, "quantity": format(q, "f")} for p, q in items]


def plan_view(ctx: Ctx, plan: Plan) -> PlanView:
    """The plan's public representation: its current version's prices, expanded."""
    version = _current_version(ctx, plan)
    return PlanView.of(plan, version=version, prices=_prices_by_id(ctx, (i.price_id for i in version.items)))


def plan_version_view(ctx: Ctx, version: PlanVersion) -> PlanVersionView:
    """One plan version's public representation, prices expanded."""
    return PlanVersionView.of(version, prices=_prices_by_id(ctx, (i.price_id for i in version.items)))


def create_plan(
    ctx: Ctx,
    *,
    code: str,
    name: str,
    items: Sequence[PlanItem],
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Plan:
    """Create a plan with version 1 holding ``items`` and return it (event ``plan.created``).

    A plan may hold prices in several currencies; in each currency its recurring prices share one
    interval and interval count, and there is at least one. Raises PlanCodeTaken, NotFound (a price of
    another organization), PriceInactive, IntervalMismatch, and InvalidInput ``plan_items_required``,
    ``duplicate_price``, ``invalid_quantity`` or ``recurring_price_required``.
    """
    taken = ctx.session.scalar(select(Plan.id).where(Plan.org_id == ctx.org_id, Plan.code == code))
    if taken is not None:
        raise PlanCodeTaken(
            f"plan {taken} already has code '{code}'", details=[{"field": "code", "code": "plan_code_taken"}]
        )
    resolved = _resolve_items(ctx, items)
    now = ctx.now()
    plan = Plan(
        id=new_id("plan"),
        org_id=ctx.org_id,
        code=code,
        name=name,
        description=description,
        current_version=1,
        active=True,
        metadata_=dict(metadata or {}),
        created_at=now,
        updated_at=now,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(plan)
            ctx.session.flush()
    except IntegrityError as exc:  # a concurrent request took the code between the check and the insert
        raise PlanCodeTaken(
            f"another plan already has code '{code}'", details=[{"field": "code", "code": "plan_code_taken"}]
        ) from exc
    _add_version(ctx, plan, resolved)
    ctx.session.flush()
    record(
        ctx,
        action="plan.create",
        object_type="plan",
        object_id=plan.id,
        changes=diff({}, {**_plan_snapshot(plan), "version": 1, "items": _items_snapshot(resolved)}),
        event_type="plan.created",
        data=plan_view(ctx, plan).payload(),
    )
    return plan


def update_plan(ctx: Ctx, plan_id: str, *, changes: Mapping[str, Any]) -> Plan:
    """Apply ``changes`` (any of name, description, active, metadata) without a new version; return it.

    ``active=False`` archives the plan. Raises NotFound and InvalidInput ``metadata_too_large``.
    """
    p = ctx.get(Plan, plan_id, for_update=True, label="plan")
    before = _plan_snapshot(p)
    if "name" in changes:
        p.name = changes["name"]
    if "description" in changes:
        p.description = changes["description"]
    if "active" in changes:
        p.active = bool(changes["active"])
    if "metadata" in changes:
        p.metadata_ = merge_metadata(p.metadata_, changes["metadata"])
    p.updated_at = ctx.now()
    ctx.session.flush()
    record(
        ctx,
        action="plan.update",
        object_type="plan",
        object_id=p.id,
        changes=diff(before, _plan_snapshot(p)),
        event_type="plan.updated",
        data=plan_view(ctx, p).payload(),
    )
    return p


def create_plan_version(ctx: Ctx, plan_id: str, *, items: Sequence[PlanItem]) -> PlanVersion:
    """Replace the plan's prices with ``items`` as version N+1 and return it (event
    ``plan.version_created`` carrying the plan). Earlier versions, and subscriptions on them, stay as
    they are. Raises NotFound and what :func:`create_plan` raises for its items."""
    plan = ctx.get(Plan, plan_id, for_update=True, label="plan")
    resolved = _resolve_items(ctx, items)
    previous = _current_version(ctx, plan)
    before_prices = _prices_by_id(ctx, (i.price_id for i in previous.items))
    before = _items_snapshot([(before_prices[i.price_id], i.quantity) for i in previous.items])
    plan.current_version += 1
    plan.updated_at = ctx.now()
    version = _add_version(ctx, plan, resolved)
    ctx.session.flush()
    record(
        ctx,
        action="plan.version_create",
        object_type="plan",
        object_id=plan.id,
        changes=diff(
            {"version": plan.current_version - 1, "items": before},
            {"version": plan.current_version, "items": _items_snapshot(resolved)},
        ),
        event_type="plan.version_created",
        data=plan_view(ctx, plan).payload(),
    )
    return version


def list_plans(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    active: bool | None = None,
    code: str | None = None,
) -> Page[Plan]:
    """One page of plans, newest first, optionally filtered."""
    stmt = filtered(select(Plan).where(Plan.org_id == ctx.org_id), (Plan.code, code))
    if active is not None:
        stmt = stmt.where(Plan.active.is_(active))
    return paginate(ctx, stmt, Plan, limit=limit, starting_after=starting_after, ending_before=ending_before)


def list_plan_versions(
    ctx: Ctx,
    plan_id: str,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Page[PlanVersion]:
    """One page of the plan's versions, newest first. Raises NotFound."""
    plan = ctx.get(Plan, plan_id, label="plan")
    stmt = select(PlanVersion).where(PlanVersion.org_id == ctx.org_id, PlanVersion.plan_id == plan.id)
    return paginate(
        ctx, stmt, PlanVersion, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def get_plan_version(ctx: Ctx, plan_id: str, *, version: int) -> PlanVersion:
    """Return version ``version`` of the plan. Raises NotFound (no such plan, or no such version)."""
    plan = ctx.get(Plan, plan_id, label="plan")
    found = ctx.session.scalar(
        select(PlanVersion).where(
            PlanVersion.org_id == ctx.org_id, PlanVersion.plan_id == plan.id, PlanVersion.version == version
        )
    )
    if found is None:
        raise NotFound(
            f"No such plan version: '{plan.id}' version {version}",
            details=[{"field": "version", "code": "resource_missing"}],
        )
    return found


def plan_prices(ctx: Ctx, *, plan_version_id: str, currency: str) -> list[tuple[Price, Decimal]]:
    """Return the version's prices in ``currency`` with their default quantities, in the plan's order.

    For the billing engine: prices archived since the version was made are still returned (existing
    subscriptions keep them). Raises NotFound (no such version in the organization) and
    CurrencyNotOffered when the version has no price in ``currency``.
    """
    version = ctx.get(PlanVersion, plan_version_id, label="plan version")
    code = currency.upper()
    prices = _prices_by_id(ctx, (i.price_id for i in version.items))
    found = [(prices[i.price_id], i.quantity) for i in version.items if prices[i.price_id].currency == code]
    if not found:
        offered = ", ".join(sorted({p.currency for p in prices.values()}))
        raise CurrencyNotOffered(
            f"plan version {version.id} has no price in {code} (offered: {offered})",
            details=[{"field": "currency", "code": "currency_not_offered"}],
        )
    return found

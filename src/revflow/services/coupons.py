"""Coupons, promotion codes and discounts (a coupon applied to a customer or a subscription).

Redeeming locks the coupon row (and the promotion code's) and counts the redemption in the same
transaction, so concurrent redemptions never go past ``max_redemptions``. How discounts reduce invoice
lines is :mod:`revflow.domain.discounts`; :func:`active_discounts` hands the billing engine their terms.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from revflow.domain.clock import utc
from revflow.domain.discounts import DiscountTerms, Duration, window_end
from revflow.domain.errors import Conflict, InvalidInput, NotFound
from revflow.domain.ids import new_id
from revflow.domain.metadata import merge_metadata
from revflow.domain.money import MAX_AMOUNT, Currency
from revflow.services.context import Ctx
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.recorder import diff, record
from revflow.services.views_discounts import CouponView, DiscountView, PromotionCodeView
from revflow.storage.models import (
    Coupon,
    Customer,
    Discount,
    Plan,
    Product,
    PromotionCode,
    Subscription,
    TestClock,
)

__all__ = [
    "CouponCurrencyMismatch",
    "CouponExpired",
    "CouponRedemptionLimit",
    "DiscountAlreadyApplied",
    "PromotionCodeInactive",
    "PromotionCodeRedemptionLimit",
    "PromotionCodeTaken",
    "active_discounts",
    "apply_discount",
    "coupon_view",
    "create_coupon",
    "create_promotion_code",
    "delete_coupon",
    "discount_view",
    "list_coupons",
    "list_discounts",
    "list_promotion_codes",
    "remove_discount",
    "set_applied_period",
    "update_coupon",
    "update_promotion_code",
]

#: Largest ``duration_in_months`` accepted (100 years).
MAX_MONTHS: Final = 1200
#: Promotion codes: letters, digits, ``-`` and ``_``; stored upper-case, matched case-insensitively.
_CODE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_HUNDRED: Final = Decimal(100)

T = TypeVar("T")


class CouponExpired(Conflict):
    """The coupon is past its ``redeem_by`` (or was deleted) and can no longer be redeemed."""

    code = "coupon_expired"


class CouponRedemptionLimit(Conflict):
    """The coupon has been redeemed ``max_redemptions`` times."""

    code = "coupon_redemption_limit"


class CouponCurrencyMismatch(InvalidInput):
    """A fixed-amount coupon in another currency than the customer's or the subscription's."""

    code = "coupon_currency_mismatch"


class DiscountAlreadyApplied(Conflict):
    """The coupon already applies to this customer or subscription."""

    code = "discount_already_applied"


class PromotionCodeTaken(Conflict):
    """Another promotion code of the organization has the same code (case-insensitively)."""

    code = "promotion_code_taken"


class PromotionCodeInactive(Conflict):
    """The promotion code was deactivated or is past its ``expires_at``."""

    code = "promotion_code_inactive"


class PromotionCodeRedemptionLimit(Conflict):
    """The promotion code has been redeemed ``max_redemptions`` times."""

    code = "promotion_code_redemption_limit"


def _error(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def _raise_all(errors: list[dict[str, str]]) -> None:
    """Raise InvalidInput carrying every error found (its code is the first one's)."""
    if errors:
        raise InvalidInput(errors[0]["message"], code=errors[0]["code"], details=errors)


def _missing(field: str, kind: str, obj_id: str) -> NotFound:
    return NotFound(f"No such {kind}: '{obj_id}'", details=[_error(field, "resource_missing", "not found")])


def _now_for(ctx: Ctx, test_clock_id: str | None) -> datetime:
    """The current instant for an object: its test clock's frozen time, else the real clock."""
    if test_clock_id is None:
        return ctx.now()
    return ctx.get(TestClock, test_clock_id, label="test clock").frozen_time


def _percent(value: Decimal | int | str, errors: list[dict[str, str]]) -> Decimal | None:
    message = "percent_off must be above 0 and at most 100, with at most 4 decimal places"
    try:
        percent = Decimal(value) if not isinstance(value, bool) else None
    except (InvalidOperation, TypeError, ValueError):
        percent = None
    if (
        percent is None
        or not percent.is_finite()
        or not Decimal(0) < percent <= _HUNDRED
        or percent.normalize().as_tuple().exponent < -4  # type: ignore[operator]
    ):
        errors.append(_error("percent_off", "invalid_percent_off", message))
        return None
    return percent.quantize(Decimal(1)) if percent == percent.to_integral_value() else percent.normalize()


def _check_value(
    percent_off: Decimal | int | str | None,
    amount_off: int | None,
    currency: str | None,
    errors: list[dict[str, str]],
) -> tuple[Decimal | None, str | None]:
    if (percent_off is None) == (amount_off is None):
        errors.append(
            _error("percent_off", "invalid_coupon_value", "give exactly one of percent_off or amount_off")
        )
        return None, None
    if percent_off is not None:
        if currency is not None:
            errors.append(
                _error("currency", "invalid_coupon_value", "currency goes with amount_off, not percent_off")
            )
        return _percent(percent_off, errors), None
    if isinstance(amount_off, bool) or not isinstance(amount_off, int) or not 0 < amount_off <= MAX_AMOUNT:
        errors.append(
            _error("amount_off", "invalid_amount_off", f"amount_off must be between 1 and {MAX_AMOUNT}")
        )
    if currency is None:
        errors.append(_error("currency", "currency_required", "amount_off needs a currency"))
        return None, None
    if not Currency.is_known(currency):
        errors.append(_error("currency", "unknown_currency", f"'{currency}' is not an ISO 4217 currency"))
        return None, None
    return None, Currency.of(currency).code


def _check_duration(duration: str, months: int | None, errors: list[dict[str, str]]) -> None:
    if duration not in {d.value for d in Duration}:
        errors.append(_error("duration", "invalid_duration", "duration must be once, repeating or forever"))
        return
    if duration == Duration.REPEATING:
        if months is None or isinstance(months, bool) or not 1 <= months <= MAX_MONTHS:
            errors.append(
                _error(
                    "duration_in_months",
                    "invalid_duration_in_months",
                    f"a repeating coupon needs duration_in_months between 1 and {MAX_MONTHS}",
                )
            )
    elif months is not None:
        errors.append(
            _error(
                "duration_in_months",
                "invalid_duration_in_months",
                "duration_in_months goes with duration=repeating only",
            )
        )


def _check_limit(field: str, value: int | None, errors: list[dict[str, str]]) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        errors.append(_error(field, f"invalid_{field}", f"{field} must be at least 1"))


def _check_future(field: str, value: datetime | None, now: datetime, errors: list[dict[str, str]]) -> None:
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(_error(field, f"invalid_{field}", f"{field} must carry a time zone"))
    elif value <= now:
        errors.append(_error(field, f"invalid_{field}", f"{field} must be in the future"))


def _owned_ids(ctx: Ctx, model: Any, ids: list[str] | None, field: str, kind: str) -> list[str]:
    """``ids`` without duplicates, once each is known to be one of the organization's; raises NotFound."""
    wanted = list(dict.fromkeys(ids or []))
    if not wanted:
        return []
    found = set(ctx.session.scalars(select(model.id).where(model.org_id == ctx.org_id, model.id.in_(wanted))))
    for i, obj_id in enumerate(wanted):
        if obj_id not in found:
            raise _missing(f"{field}[{i}]", kind, obj_id)
    return wanted


def _lock(ctx: Ctx, model: type[T], obj_id: str, *, label: str) -> T:
    """``ctx.get(..., for_update=True)`` that also reloads a row the session held before the lock, so the
    values checked are the locked ones (a plain query keeps an identity-mapped object's old values)."""
    held = ctx.session.identity_key(model, obj_id) in ctx.session.identity_map
    obj = ctx.get(model, obj_id, for_update=True, label=label)
    if held:
        ctx.session.refresh(obj)
    return obj


def coupon_view(ctx: Ctx, coupon: Coupon) -> CouponView:
    """The coupon's public representation (``valid`` as of now)."""
    return CouponView.of(coupon, now=ctx.now())


def discount_view(ctx: Ctx, discount: Discount) -> DiscountView:
    """The discount's public representation, with its coupon."""
    coupon = ctx.get(Coupon, discount.coupon_id, label="coupon")
    return DiscountView.of(discount, coupon=coupon, now=ctx.now())


def _coupon_snapshot(c: Coupon) -> dict[str, Any]:
    return {
        "name": c.name,
        "redeem_by": c.redeem_by.isoformat() if c.redeem_by else None,
        "metadata": dict(c.metadata_),
    }


def create_coupon(
    ctx: Ctx,
    *,
    name: str,
    duration: str,
    percent_off: Decimal | int | str | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration_in_months: int | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
    applies_to_products: list[str] | None = None,
    applies_to_plans: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> Coupon:
    """Create a coupon and return it.

    Exactly one of ``percent_off`` (0 < p ≤ 100, at most 4 decimal places) and ``amount_off`` with
    ``currency``. Raises InvalidInput carrying every broken rule (codes ``invalid_coupon_value``,
    ``invalid_percent_off``, ``invalid_amount_off``, ``currency_required``, ``unknown_currency``,
    ``invalid_duration``, ``invalid_duration_in_months``, ``invalid_max_redemptions``,
    ``invalid_redeem_by``), then NotFound for a product or plan the organization does not have.
    """
    now = ctx.now()
    errors: list[dict[str, str]] = []
    percent, code = _check_value(percent_off, amount_off, currency, errors)
    _check_duration(duration, duration_in_months, errors)
    _check_limit("max_redemptions", max_redemptions, errors)
    _check_future("redeem_by", redeem_by, now, errors)
    _raise_all(errors)
    coupon = Coupon(
        id=new_id("cpn"),
        org_id=ctx.org_id,
        name=name,
        percent_off=percent,
        amount_off=amount_off if percent is None else None,
        currency=code,
        duration=duration,
        duration_in_months=duration_in_months,
        max_redemptions=max_redemptions,
        times_redeemed=0,
        redeem_by=redeem_by,
        applies_to_products=_owned_ids(ctx, Product, applies_to_products, "applies_to_products", "product"),
        applies_to_plans=_owned_ids(ctx, Plan, applies_to_plans, "applies_to_plans", "plan"),
        metadata_=metadata or {},
        created_at=now,
    )
    ctx.session.add(coupon)
    ctx.session.flush()
    view = coupon_view(ctx, coupon)
    record(
        ctx,
        action="coupon.create",
        object_type="coupon",
        object_id=coupon.id,
        changes=diff({}, view.payload()),
        event_type="coupon.created",
        data=view.payload(),
    )
    return coupon


def update_coupon(ctx: Ctx, coupon_id: str, *, changes: dict[str, Any]) -> Coupon:
    """Rename the coupon or merge its ``metadata`` (null or "" removes a key) and return it.

    Its value, duration and limits never change once created. Raises NotFound and InvalidInput
    (``metadata_too_large``).
    """
    c = ctx.get(Coupon, coupon_id, for_update=True, label="coupon")
    before = _coupon_snapshot(c)
    if changes.get("name") is not None:
        c.name = changes["name"]
    if "metadata" in changes:
        c.metadata_ = merge_metadata(c.metadata_, changes["metadata"])
    ctx.session.flush()
    record(
        ctx,
        action="coupon.update",
        object_type="coupon",
        object_id=c.id,
        changes=diff(before, _coupon_snapshot(c)),
        event_type="coupon.updated",
        data=coupon_view(ctx, c).payload(),
    )
    return c


def delete_coupon(ctx: Ctx, coupon_id: str) -> Coupon:
    """Stop the coupon from being redeemed and return it: ``redeem_by`` becomes now (unless earlier) and
    its promotion codes are deactivated. Discounts already applied keep applying. Deleting twice is a
    no-op. Raises NotFound."""
    c = ctx.get(Coupon, coupon_id, for_update=True, label="coupon")
    now = ctx.now()
    before = _coupon_snapshot(c)
    changed = False
    if c.redeem_by is None or c.redeem_by > now:
        c.redeem_by = now
        changed = True
    codes = ctx.session.scalars(
        select(PromotionCode)
        .where(PromotionCode.org_id == ctx.org_id, PromotionCode.coupon_id == c.id, PromotionCode.active)
        .with_for_update()
    )
    for promo in codes:
        promo.active = False
        changed = True
    if changed:
        ctx.session.flush()
        record(
            ctx,
            action="coupon.delete",
            object_type="coupon",
            object_id=c.id,
            changes=diff(before, _coupon_snapshot(c)),
            event_type="coupon.deleted",
            data=coupon_view(ctx, c).payload(),
        )
    return c


def list_coupons(
    ctx: Ctx, *, limit: int = 10, starting_after: str | None = None, ending_before: str | None = None
) -> Page[Coupon]:
    """One page of coupons, newest first."""
    stmt = select(Coupon).where(Coupon.org_id == ctx.org_id)
    return paginate(
        ctx, stmt, Coupon, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def _find_code(ctx: Ctx, code: str) -> str | None:
    return ctx.session.scalar(
        select(PromotionCode.id).where(PromotionCode.org_id == ctx.org_id, PromotionCode.code == code.upper())
    )


def create_promotion_code(
    ctx: Ctx,
    *,
    coupon_id: str,
    code: str,
    active: bool = True,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
) -> PromotionCode:
    """Create a customer-facing code for a coupon and return it; the code is stored upper-case.

    Raises InvalidInput (``invalid_promotion_code``, ``invalid_max_redemptions``, ``invalid_expires_at``),
    NotFound (coupon), CouponExpired (the coupon can no longer be redeemed) and PromotionCodeTaken.
    """
    now = ctx.now()
    errors: list[dict[str, str]] = []
    if not _CODE.match(code):
        errors.append(
            _error(
                "code",
                "invalid_promotion_code",
                "a code is 1 to 100 letters, digits, '-' or '_', starting with a letter or digit",
            )
        )
    _check_limit("max_redemptions", max_redemptions, errors)
    _check_future("expires_at", expires_at, now, errors)
    _raise_all(errors)
    coupon = ctx.get(Coupon, coupon_id, label="coupon")
    if coupon.redeem_by is not None and coupon.redeem_by <= now:
        raise CouponExpired(f"coupon {coupon.id} can no longer be redeemed")
    taken = PromotionCodeTaken(
        f"the promotion code '{code.upper()}' is taken",
        details=[_error("code", "promotion_code_taken", "already used by another promotion code")],
    )
    if _find_code(ctx, code) is not None:
        raise taken
    promo = PromotionCode(
        id=new_id("promo"),
        org_id=ctx.org_id,
        coupon_id=coupon.id,
        code=code.upper(),
        active=active,
        max_redemptions=max_redemptions,
        times_redeemed=0,
        expires_at=expires_at,
        created_at=now,
    )
    try:
        with ctx.session.begin_nested():  # a concurrent twin that got in first breaks the unique key
            ctx.session.add(promo)
            ctx.session.flush()
    except IntegrityError:
        raise taken from None
    view = PromotionCodeView.model_validate(promo)
    record(
        ctx,
        action="promotion_code.create",
        object_type="promotion_code",
        object_id=promo.id,
        changes=diff({}, view.payload()),
        event_type="promotion_code.created",
        data=view.payload(),
    )
    return promo


def update_promotion_code(ctx: Ctx, promotion_code_id: str, *, active: bool | None = None) -> PromotionCode:
    """Activate or deactivate a promotion code and return it. Raises NotFound, and CouponExpired when
    activating a code whose coupon can no longer be redeemed."""
    promo = ctx.get(PromotionCode, promotion_code_id, for_update=True, label="promotion code")
    if active is None or active == promo.active:
        return promo
    if active:
        coupon = ctx.get(Coupon, promo.coupon_id, label="coupon")
        if coupon.redeem_by is not None and coupon.redeem_by <= ctx.now():
            raise CouponExpired(f"coupon {coupon.id} can no longer be redeemed")
    promo.active = active
    ctx.session.flush()
    record(
        ctx,
        action="promotion_code.update",
        object_type="promotion_code",
        object_id=promo.id,
        changes={"active": {"before": not active, "after": active}},
        event_type="promotion_code.updated",
        data=PromotionCodeView.model_validate(promo).payload(),
    )
    return promo


def list_promotion_codes(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    coupon_id: str | None = None,
    code: str | None = None,
    active: bool | None = None,
) -> Page[PromotionCode]:
    """One page of promotion codes, newest first; ``code`` matches case-insensitively."""
    stmt = filtered(
        select(PromotionCode).where(PromotionCode.org_id == ctx.org_id),
        (PromotionCode.coupon_id, coupon_id),
        (PromotionCode.active, active),
    )
    if code is not None:
        stmt = stmt.where(PromotionCode.code == code.upper())
    return paginate(
        ctx, stmt, PromotionCode, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def _check_promotion_code(promo: PromotionCode, now: datetime) -> None:
    if not promo.active:
        raise PromotionCodeInactive(f"the promotion code '{promo.code}' is inactive")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise PromotionCodeInactive(f"the promotion code '{promo.code}' expired")
    if promo.max_redemptions is not None and promo.times_redeemed >= promo.max_redemptions:
        raise PromotionCodeRedemptionLimit(
            f"the promotion code '{promo.code}' has been redeemed {promo.times_redeemed} times, its limit"
        )


def _check_coupon(coupon: Coupon, now: datetime, currency: str | None) -> None:
    if coupon.redeem_by is not None and coupon.redeem_by <= now:
        raise CouponExpired(f"coupon {coupon.id} can no longer be redeemed (redeem_by has passed)")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponRedemptionLimit(
            f"coupon {coupon.id} has been redeemed {coupon.times_redeemed} times, its limit"
        )
    if coupon.amount_off is not None and currency is not None and coupon.currency != currency:
        raise CouponCurrencyMismatch(
            f"coupon {coupon.id} takes {coupon.currency} off, but the bill is in {currency}",
            details=[_error("coupon_id", "coupon_currency_mismatch", "the coupon is in another currency")],
        )


def apply_discount(
    ctx: Ctx,
    *,
    coupon_id: str | None = None,
    promotion_code: str | None = None,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    start: datetime | None = None,
) -> Discount:
    """Redeem a coupon (by id, or by promotion code, case-insensitively) for a customer or a subscription
    and return the new discount.

    The window starts at ``start``, else at the subscription's current period start (its ``start_at``
    before its first period), else now (the customer's test clock time, if any); a ``repeating`` coupon
    ends ``duration_in_months`` calendar months later in the customer's or subscription's time zone.
    Raises InvalidInput (``discount_target_required``, ``coupon_or_promotion_code_required``,
    ``invalid_start``), NotFound (target, coupon or promotion code), PromotionCodeInactive,
    PromotionCodeRedemptionLimit, CouponExpired, CouponRedemptionLimit, CouponCurrencyMismatch (422) and
    DiscountAlreadyApplied. Nothing changes when it raises.
    """
    if (customer_id is None) == (subscription_id is None):
        _raise_all(
            [_error("customer_id", "discount_target_required", "give a customer or a subscription, not both")]
        )
    subscription: Subscription | None = None
    if subscription_id is not None:
        subscription = ctx.get(Subscription, subscription_id, label="subscription")
        customer = ctx.get(Customer, subscription.customer_id, label="customer")
        currency: str | None = subscription.currency
        tz = subscription.timezone
        now = _now_for(ctx, subscription.test_clock_id or customer.test_clock_id)
    else:
        customer = ctx.get(Customer, str(customer_id), label="customer")
        currency, tz = customer.currency, customer.timezone
        now = _now_for(ctx, customer.test_clock_id)
    if (coupon_id is None) == (promotion_code is None):
        _raise_all(
            [
                _error(
                    "coupon_id",
                    "coupon_or_promotion_code_required",
                    "give exactly one of coupon_id or promotion_code",
                )
            ]
        )
    if start is not None and (start.tzinfo is None or start.utcoffset() is None):
        _raise_all([_error("start", "invalid_start", "start must carry a time zone")])

    promo: PromotionCode | None = None
    promo_id: str | None = None
    if promotion_code is not None:
        found = ctx.session.execute(
            select(PromotionCode.id, PromotionCode.coupon_id).where(
                PromotionCode.org_id == ctx.org_id, PromotionCode.code == promotion_code.upper()
            )
        ).first()
        if found is None:
            raise _missing("promotion_code", "promotion code", promotion_code)
        promo_id, coupon_id = found
    coupon = _lock(ctx, Coupon, str(coupon_id), label="coupon")  # always the coupon first, then the code
    if promo_id is not None:
        promo = _lock(ctx, PromotionCode, promo_id, label="promotion code")
        _check_promotion_code(promo, now)
    _check_coupon(coupon, now, currency)

    target = (
        Discount.subscription_id == subscription_id
        if subscription is not None
        else (Discount.customer_id == customer.id) & Discount.subscription_id.is_(None)
    )
    already = ctx.session.scalar(
        select(Discount.id).where(
            Discount.org_id == ctx.org_id,
            Discount.coupon_id == coupon.id,
            Discount.removed_at.is_(None),
            target,
        )
    )
    if already is not None:
        raise DiscountAlreadyApplied(f"coupon {coupon.id} already applies here (discount {already})")

    if start is None:
        start = (subscription.current_period_start or subscription.start_at) if subscription else now
    start = utc(start)
    discount = Discount(
        id=new_id("di"),
        org_id=ctx.org_id,
        coupon_id=coupon.id,
        promotion_code_id=promo.id if promo else None,
        customer_id=customer.id,
        subscription_id=subscription.id if subscription else None,
        start=start,
        end=window_end(start=start, duration=coupon.duration, months=coupon.duration_in_months, tz=tz),
        applied_period_start=None,
        removed_at=None,
        created_at=ctx.now(),
    )
    coupon.times_redeemed += 1
    if promo is not None:
        promo.times_redeemed += 1
    ctx.session.add(discount)
    ctx.session.flush()
    view = discount_view(ctx, discount)
    record(
        ctx,
        action="discount.create",
        object_type="discount",
        object_id=discount.id,
        changes=diff(
            {}, {k: v for k, v in view.payload().items() if k != "coupon"} | {"coupon_id": coupon.id}
        ),
        event_type="discount.created",
        data=view.payload(),
    )
    return discount


def remove_discount(ctx: Ctx, discount_id: str) -> Discount:
    """End the discount now (it no longer applies to any invoice made from here on) and return it.

    The coupon's redemption stays counted. Removing twice is a no-op. Raises NotFound.
    """
    d = ctx.get(Discount, discount_id, for_update=True, label="discount")
    if d.removed_at is None:
        d.removed_at = ctx.now()
        ctx.session.flush()
        record(
            ctx,
            action="discount.remove",
            object_type="discount",
            object_id=d.id,
            changes={"removed_at": {"before": None, "after": d.removed_at.isoformat()}},
            event_type="discount.removed",
            data=discount_view(ctx, d).payload(),
        )
    return d


def set_applied_period(ctx: Ctx, discount_id: str, *, period_start: datetime) -> Discount:
    """Fix the one billing period a ``once`` discount applies to (first call wins) and return it.

    For the billing engine, with :func:`revflow.domain.discounts.resolve_once_period`. Raises NotFound.
    """
    d = ctx.get(Discount, discount_id, for_update=True, label="discount")
    if d.applied_period_start is None:
        d.applied_period_start = period_start
        ctx.session.flush()
    return d


def list_discounts(
    ctx: Ctx,
    *,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Page[Discount]:
    """One page of the discounts in force (not removed), newest first: a subscription's, or those applied
    to the customer itself (its subscriptions' discounts are listed with each subscription)."""
    stmt = select(Discount).where(Discount.org_id == ctx.org_id, Discount.removed_at.is_(None))
    if subscription_id is not None:
        stmt = stmt.where(Discount.subscription_id == subscription_id)
    else:
        stmt = stmt.where(Discount.customer_id == customer_id, Discount.subscription_id.is_(None))
    return paginate(
        ctx, stmt, Discount, limit=limit, starting_after=starting_after, ending_before=ending_before
    )


def _terms(d: Discount, c: Coupon) -> DiscountTerms:
    return DiscountTerms(
        id=d.id,
        coupon_id=c.id,
        percent_off=c.percent_off,
        amount_off=c.amount_off,
        currency=c.currency,
        duration=Duration(c.duration),
        applies_to_products=frozenset(c.applies_to_products),
        applies_to_plans=frozenset(c.applies_to_plans),
        start=d.start,
        end=d.end,
        once_period_start=d.applied_period_start,
    )


def discount_terms_for(
    ctx: Ctx, *, customer_ids: list[str]
) -> dict[str, list[tuple[str | None, DiscountTerms]]]:
    """For each customer, the terms of its discounts not removed, oldest first, each with the
    subscription it belongs to (None: the customer's own). One query, for billing runs."""
    rows = ctx.session.execute(
        select(Discount, Coupon)
        .join(Coupon, Coupon.id == Discount.coupon_id)
        .join(Subscription, Subscription.id == Discount.subscription_id, isouter=True)
        .where(
            Discount.org_id == ctx.org_id,
            Discount.removed_at.is_(None),
            or_(Discount.customer_id.in_(customer_ids), Subscription.customer_id.in_(customer_ids)),
        )
        .order_by(Discount.id)
    ).all()
    out: dict[str, list[tuple[str | None, DiscountTerms]]] = {}
    for d, c in rows:
        owner_customer = d.customer_id
        if d.subscription_id is not None:
            sub = ctx.session.get(Subscription, d.subscription_id)  # loaded by the billing batch already
            owner_customer = sub.customer_id if sub is not None else owner_customer
        if owner_customer is not None:
            out.setdefault(owner_customer, []).append((d.subscription_id, _terms(d, c)))
    return out


def active_discounts(ctx: Ctx, *, customer_id: str, subscription_id: str | None) -> list[DiscountTerms]:
    """The terms of every discount not removed that bears on the customer's invoices for the subscription:
    the subscription's own first, then the customer's, each oldest first (the order they stack in)."""
    scope = Discount.customer_id == customer_id
    if subscription_id is not None:
        scope = or_(Discount.subscription_id == subscription_id, scope & Discount.subscription_id.is_(None))
    else:
        scope = scope & Discount.subscription_id.is_(None)
    rows = ctx.session.execute(
        select(Discount, Coupon)
        .join(Coupon, Coupon.id == Discount.coupon_id)
        .where(
            Discount.org_id == ctx.org_id, Coupon.org_id == ctx.org_id, Discount.removed_at.is_(None), scope
        )
        .order_by(Discount.id)
    ).all()
    ordered = sorted(rows, key=lambda row: row[0].subscription_id is None)  # stable: keeps age order
    return [_terms(d, c) for d, c in ordered]

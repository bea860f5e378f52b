"""Public shapes of subscriptions and test clocks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from revflow.services.views import _View
from revflow.storage.models import Subscription, SubscriptionItem, TestClock

__all__ = ["SubscriptionItemView", "SubscriptionView", "TestClockView"]


class SubscriptionItemView(_View):
    id: str
    price_id: str
    quantity: str
    start_at: datetime
    end_at: datetime | None

    @classmethod
    def of(cls, it: SubscriptionItem) -> SubscriptionItemView:
        return cls(
            id=it.id,
            price_id=it.price_id,
            quantity=format(it.quantity.normalize(), "f"),
            start_at=it.start_at,
            end_at=it.end_at,
        )


class SubscriptionView(_View):
    id: str
    object: Literal["subscription"] = "subscription"
    customer_id: str
    #: The plan and version in effect (a change scheduled for the period end shows below until then).
    plan_id: str | None
    plan_version_id: str | None
    #: A plan change scheduled for ``plan_change_at`` (the period end), or null.
    scheduled_plan_id: str | None = None
    scheduled_plan_version_id: str | None = None
    plan_change_at: datetime | None = None
    status: str
    currency: str
    collection_method: str
    days_until_due: int | None
    interval: str
    interval_count: int
    billing_cycle_anchor: datetime
    billing_cycle_day: int | None
    timezone: str
    start_at: datetime
    trial_end: datetime | None
    trial_amount: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    next_billing_at: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    paused_at: datetime | None
    term_end: datetime | None
    term_months: int | None
    auto_renew: bool
    quote_id: str | None
    test_clock_id: str | None
    #: Items in effect now (or at the start, for a subscription that has not started).
    items: list[SubscriptionItemView]
    #: Items that take effect later (changes scheduled for the period end).
    scheduled_items: list[SubscriptionItemView]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: Subscription, *, at: datetime | None = None) -> SubscriptionView:
        when = at or sub.updated_at
        if when < sub.start_at:
            when = sub.start_at
        current = [it for it in sub.items if it.start_at <= when and (it.end_at is None or it.end_at > when)]
        later = [it for it in sub.items if it.start_at > when]
        skip = {"object", "items", "scheduled_items", "metadata"}
        fields = {k: getattr(sub, k) for k in cls.model_fields if k not in skip}
        if sub.plan_change_at is not None and sub.plan_change_at <= when:  # due, not yet billed
            fields["plan_id"], fields["plan_version_id"] = (
                sub.scheduled_plan_id,
                sub.scheduled_plan_version_id,
            )
            fields["scheduled_plan_id"] = fields["scheduled_plan_version_id"] = fields["plan_change_at"] = (
                None
            )
        return cls(
            **fields,
            items=[SubscriptionItemView.of(i) for i in current],
            scheduled_items=[SubscriptionItemView.of(i) for i in later],
            metadata=sub.metadata_,
        )


class TestClockView(_View):
    __test__ = False  # not a pytest class

    id: str
    object: Literal["test_clock"] = "test_clock"
    name: str
    number: int
    frozen_time: datetime
    status: str
    created_at: datetime

    @classmethod
    def of(cls, clock: TestClock) -> TestClockView:
        return cls.model_validate(clock)

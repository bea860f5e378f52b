"""Outbox delivery: fan each event out to its subscribers, then deliver at least once, in order per object.

1. **Fan-out.** A trigger puts every new ``events`` row in ``outbox_queue``. :func:`fan_out` takes queued
   events in ``seq`` order, writes one ``event_deliveries`` row per matching subscriber (enabled webhook
   endpoints whose filter matches; connected CRMs get sync jobs, see ``crm_sync``) and removes them
   from the queue, in one transaction.
   On PostgreSQL one worker fans out at a time (a transaction-level advisory lock), so deliveries of one
   object are created in the order its events were written.
2. **Claim.** :func:`claim` picks due deliveries whose subscriber has no earlier unfinished delivery for
   the same object, and leases them (``locked_until``) in a short transaction; on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``, so workers share the work and never take the same delivery.
3. **Send and record.** The request goes out with no transaction open; the outcome is recorded in a new
   transaction. A worker that dies between the two leaves the lease to expire: the delivery is sent again
   (at least once; receivers dedupe on ``webhook-id``, the event id).

Time is the container clock: retries, leases and the retry window follow it, so a test clock or a fake
clock moves deliveries forward.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased, sessionmaker

from revflow import failpoints, metrics
from revflow.domain.clock import Clock, SystemClock
from revflow.domain.delivery import RetryPolicy, matches
from revflow.domain.errors import InvalidInput
from revflow.services import crm_sync, webhooks
from revflow.services.alerts import raise_alert
from revflow.services.context import SYSTEM, Ctx
from revflow.services.ports import (
    SecretBox,
    SecretUnreadable,
    WebhookRequest,
    WebhookResponse,
    WebhookSender,
)
from revflow.services.recorder import insert_rows
from revflow.storage.hub_models import OutboxEntry, WebhookEndpoint
from revflow.storage.models import Event, EventDelivery

__all__ = [
    "DeliveryConfig",
    "DeliveryStats",
    "claim",
    "deliver_due",
    "fan_out",
    "replay",
]

log = structlog.get_logger("revflow.outbox")

UNFINISHED = ("pending", "retrying")
#: Unfinished deliveries that hold back later events of the same object for the same subscriber.
BLOCKING = ("pending", "retrying", "paused")
WEBHOOK = "webhook_endpoint"
_FANOUT_LOCK = 0x7265_7666_6F75  # "revfou": pg advisory lock key of the fan-out


@dataclass(frozen=True)
class DeliveryConfig:
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = 50
    lease: timedelta = timedelta(seconds=120)
    disable_after: timedelta = timedelta(days=5)
    max_rounds: int = 100


@dataclass
class DeliveryStats:
    fanned_out: int = 0
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    dead_lettered: int = 0
    disabled: list[str] = field(default_factory=list)


def fan_out(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Create the deliveries of up to ``limit`` queued events and dequeue them; returns how many events.
    The caller commits. On PostgreSQL returns 0 at once when another worker is fanning out."""
    if session.get_bind().dialect.name == "postgresql":
        got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _FANOUT_LOCK})
        if not got:
            return 0
    rows = session.execute(
        select(OutboxEntry.seq, Event)
        .join(Event, Event.id == OutboxEntry.event_id)
        .order_by(OutboxEntry.seq)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    org_ids = {ev.org_id for _, ev in rows}
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    for ep in session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id.in_(org_ids), WebhookEndpoint.status == "enabled")
        .order_by(WebhookEndpoint.id)
    ):
        endpoints.setdefault(ep.org_id, []).append(ep)
    deliveries = [
        _delivery_row(ev, ep.id, seq=seq, now=now)
        for seq, ev in rows
        for ep in endpoints.get(ev.org_id, [])
        if matches(ep.enabled_events, ev.type)
    ]
    insert_rows(session, EventDelivery, deliveries)
    # Connectors subscribe through sync jobs, created in this same transaction (nothing lost).
    crm_sync.enqueue_from_events(session, [ev for _, ev in rows], now=now)
    session.execute(delete(OutboxEntry).where(OutboxEntry.seq.in_([seq for seq, _ in rows])))
    return len(rows)


def _delivery_row(ev: Event, subscriber: str, *, seq: int, now: datetime) -> dict[str, Any]:
    return {
        "org_id": ev.org_id,
        "event_id": ev.id,
        "subscriber": subscriber,
        "subscriber_type": WEBHOOK,
        "object_id": ev.object_id,
        "event_seq": seq,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def claim(session: Session, *, now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due deliveries that are first in line for their subscriber and object;
    returns their ids, oldest due first. The caller commits (which ends the claim's row locks)."""
    earlier = aliased(EventDelivery)
    blocked = exists().where(
        earlier.subscriber == EventDelivery.subscriber,
        earlier.object_id == EventDelivery.object_id,
        earlier.status.in_(BLOCKING),
        or_(
            earlier.event_seq < EventDelivery.event_seq,
            and_(earlier.event_seq == EventDelivery.event_seq, earlier.id < EventDelivery.id),
        ),
    )
    stmt = (
        select(EventDelivery)
        .where(
            EventDelivery.status.in_(UNFINISHED),
            EventDelivery.next_attempt_at <= now,
            or_(EventDelivery.locked_until.is_(None), EventDelivery.locked_until <= now),
            ~blocked,
        )
        .order_by(EventDelivery.next_attempt_at, EventDelivery.event_seq, EventDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=EventDelivery)
    claimed = list(session.scalars(stmt))
    for d in claimed:
        d.locked_until = now + lease
    session.flush()
    return [d.id for d in claimed]


def deliver_due(
    sessions: sessionmaker[Session],
    *,
    sender: WebhookSender,
    box: SecretBox,
    clock: Clock,
    config: DeliveryConfig | None = None,
    wall_clock: Clock | None = None,
    rng: random.Random | None = None,
) -> DeliveryStats:
    """Fan out what is queued, then deliver everything due, round after round, until nothing is left
    (or ``max_rounds``); returns what happened. Safe in several workers at once."""
    config = config or DeliveryConfig()
    wall_clock = wall_clock or SystemClock()
    rng = rng or random.Random()
    stats = DeliveryStats()
    for _ in range(config.max_rounds):
        while True:
            with sessions() as s:
                n = fan_out(s, now=clock.now())
                s.commit()
            stats.fanned_out += n
            if n == 0:
                break
        with sessions() as s:
            ids = claim(s, now=clock.now(), limit=config.batch_size, lease=config.lease)
            s.commit()
        if not ids:
            break
        for delivery_id in ids:
            _deliver_one(sessions, delivery_id, sender, box, clock, wall_clock, config, rng, stats)
    return stats


def _deliver_one(
    sessions: sessionmaker[Session],
    delivery_id: int,
    sender: WebhookSender,
    box: SecretBox,
    clock: Clock,
    wall_clock: Clock,
    config: DeliveryConfig,
    rng: random.Random,
    stats: DeliveryStats,
) -> None:
    with sessions() as s:
        d = s.get(EventDelivery, delivery_id)
        if d is None or d.status not in UNFINISHED:
            return
        event = s.get(Event, d.event_id)
        endpoint = s.get(WebhookEndpoint, d.subscriber) if d.subscriber_type == WEBHOOK else None
        if event is None or endpoint is None or endpoint.status != "enabled":
            d.status = "canceled" if endpoint is None else "paused"
            d.locked_until = None
            s.commit()
            return
        body = webhooks.event_body(event)
        unreadable: str | None = None
        secrets_: list[str] = []
        try:
            secrets_ = webhooks.signing_secrets(endpoint, now=clock.now(), box=box)
        except SecretUnreadable as exc:
            unreadable = f"secret_unreadable: {exc}"
        headers = webhooks.sign(secrets_, msg_id=event.id, body=body, at=wall_clock.now()) if secrets_ else {}
        request = WebhookRequest(url=endpoint.url, body=body, headers=headers)
        s.rollback()  # no transaction (on SQLite: no write lock) held while the receiver answers
    if unreadable is not None:  # never send unsigned: a failed attempt, retried, visible in the log
        response = WebhookResponse(status=None, body=None, latency_ms=0, error=unreadable)
    else:
        response = sender.send(request)
        failpoints.hit("outbox.after_send")
    stats.attempted += 1
    metrics.WEBHOOK_LATENCY.observe(response.latency_ms / 1000)
    with sessions() as s:
        _record(s, delivery_id, request, response, clock, config, rng, stats)
        s.commit()


def _record(
    s: Session,
    delivery_id: int,
    request: WebhookRequest,
    response: WebhookResponse,
    clock: Clock,
    config: DeliveryConfig,
    rng: random.Random,
    stats: DeliveryStats,
) -> None:
    d = s.get(EventDelivery, delivery_id, with_for_update=True)
    endpoint = s.get(WebhookEndpoint, d.subscriber, with_for_update=True) if d is not None else None
    if d is None or endpoint is None:
        return
    now = clock.now()
    ctx = Ctx(session=s, org_id=endpoint.org_id, actor=SYSTEM, clock=clock)
    event_type = s.scalar(select(Event.type).where(Event.id == d.event_id)) or ""
    d.attempts += 1
    d.last_attempt_at = now
    d.first_attempt_at = d.first_attempt_at or now
    d.last_response_status = response.status
    d.locked_until = None
    webhooks.record_attempt(
        ctx,
        endpoint=endpoint,
        delivery_id=d.id,
        event_id=d.event_id,
        event_type=event_type,
        attempt=d.attempts,
        body=request.body,
        response=response,
    )
    if response.ok:
        d.status, d.delivered_at, d.last_error = "succeeded", now, None
        endpoint.failing_since = None
        stats.succeeded += 1
        metrics.WEBHOOK_ATTEMPTS.labels("succeeded").inc()
        return
    d.last_error = response.error or f"HTTP {response.status}"
    stats.failed += 1
    if response.status == 410:
        metrics.WEBHOOK_ATTEMPTS.labels("gone").inc()
        d.status = "retrying"
        webhooks.disable_endpoint(
            ctx,
            endpoint,
            reason="gone",
            message=f"Webhook endpoint {endpoint.url} answered 410 Gone and was disabled.",
        )
        stats.disabled.append(endpoint.id)
        return
    metrics.WEBHOOK_ATTEMPTS.labels(
        "refused" if (response.error or "").startswith("url_not_allowed") else "failed"
    ).inc()
    wait = config.policy.delay(d.attempts, spread=rng.random())
    if response.retry_after is not None:
        wait = max(wait, min(timedelta(seconds=response.retry_after), config.policy.cap))
    if now + wait - d.first_attempt_at > config.policy.window:
        d.status, d.dead_lettered_at, d.next_attempt_at = "dead_lettered", now, None
        stats.dead_lettered += 1
        metrics.WEBHOOK_ATTEMPTS.labels("dead_lettered").inc()
        raise_alert(
            s,
            org_id=endpoint.org_id,
            type="webhook_dead_lettered",
            message=f"Deliveries to {endpoint.url} were given up after {d.attempts} attempts; "
            "replay them once the endpoint works.",
            dedupe_key=f"webhook_dead_lettered:{endpoint.id}",
            now=now,
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            details={"last_event_id": d.event_id, "last_error": d.last_error},
        )
    else:
        d.status, d.next_attempt_at = "retrying", now + wait
    endpoint.failing_since = endpoint.failing_since or d.first_attempt_at
    if now - endpoint.failing_since >= config.disable_after:
        days = config.disable_after.days
        webhooks.disable_endpoint(
            ctx,
            endpoint,
            reason="failing",
            message=f"Webhook endpoint {endpoint.url} failed every attempt for {days} days and was disabled.",
        )
        stats.disabled.append(endpoint.id)
    log.info(
        "webhook_failed",
        delivery=d.id,
        endpoint=endpoint.id,
        status=response.status,
        error=response.error,
        next_attempt_at=d.next_attempt_at,
    )


def _events(
    session: Session,
    *,
    org_id: str | None,
    event_id: str | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    type: str | None,
    batch: int,
) -> Iterator[list[Event]]:
    stmt = select(Event)
    if org_id is not None:
        stmt = stmt.where(Event.org_id == org_id)
    if event_id is not None:
        stmt = stmt.where(Event.id == event_id)
    if created_gte is not None:
        stmt = stmt.where(Event.created_at >= created_gte)
    if created_lt is not None:
        stmt = stmt.where(Event.created_at < created_lt)
    if type is not None:
        stmt = stmt.where(Event.type == type)
    after: str | None = None
    while True:
        page = stmt if after is None else stmt.where(Event.id > after)
        events = list(session.scalars(page.order_by(Event.id).limit(batch)))
        if not events:
            return
        yield events
        after = events[-1].id


def count_events(
    session: Session,
    *,
    org_id: str | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    type: str | None = None,
) -> int:
    """How many events a range replay would go through (for progress bars)."""
    stmt = select(func.count()).select_from(Event)
    if org_id is not None:
        stmt = stmt.where(Event.org_id == org_id)
    if created_gte is not None:
        stmt = stmt.where(Event.created_at >= created_gte)
    if created_lt is not None:
        stmt = stmt.where(Event.created_at < created_lt)
    if type is not None:
        stmt = stmt.where(Event.type == type)
    return int(session.scalar(stmt) or 0)


def replay(
    session: Session,
    *,
    now: datetime,
    org_id: str | None,
    event_id: str | None = None,
    created_gte: datetime | None = None,
    created_lt: datetime | None = None,
    type: str | None = None,
    endpoint_id: str | None = None,
    batch: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Deliver one event, or every event in ``[created_gte, created_lt)``, again: to ``endpoint_id`` (even
    if its filter would not match) or else to every enabled endpoint whose filter matches. Existing
    deliveries start over (fresh attempts and retry window); missing ones are created. Returns how many
    deliveries were scheduled. ``on_batch`` is called after each batch (the CLI commits and shows progress
    there). Raises InvalidInput when neither an event nor a range is given."""
    if event_id is None and (created_gte is None or created_lt is None):
        raise InvalidInput(
            "replay needs an event id, or both created_gte and created_lt", code="invalid_range"
        )
    targets: list[WebhookEndpoint] = list(
        session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id
                if endpoint_id is not None
                else WebhookEndpoint.status == "enabled",
                *([WebhookEndpoint.org_id == org_id] if org_id is not None else []),
            )
        )
    )
    scheduled = 0
    for events in _events(
        session,
        org_id=org_id,
        event_id=event_id,
        created_gte=created_gte,
        created_lt=created_lt,
        type=type,
        batch=batch,
    ):
        ids = [e.id for e in events]
        existing = {
            (d.event_id, d.subscriber): d
            for d in session.scalars(select(EventDelivery).where(EventDelivery.event_id.in_(ids)))
        }
        seqs = {eid: d.event_seq for (eid, _), d in existing.items()}
        for ev in events:
            for ep in targets:
                if ep.org_id != ev.org_id or (
                    endpoint_id is None and not matches(ep.enabled_events, ev.type)
                ):
                    continue
                status = "pending" if ep.status == "enabled" else "paused"
                d = existing.get((ev.id, ep.id))
                if d is None:
                    row = _delivery_row(ev, ep.id, seq=seqs.get(ev.id, 0), now=now)
                    session.add(EventDelivery(**{**row, "status": status}))
                else:
                    d.status, d.attempts, d.next_attempt_at = status, 0, now
                    d.first_attempt_at = d.dead_lettered_at = d.delivered_at = None
                    d.last_error = None
                scheduled += 1
        session.flush()
        if on_batch is not None:
            on_batch(len(events))
    return scheduled

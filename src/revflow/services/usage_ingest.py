"""Usage event ingestion: validate each event on its own, store the good ones once, answer per event.

A batch is never all-or-nothing: a bad event is ``rejected`` with a reason code and the others are
stored. Deduplication is the primary key of ``usage_event_keys`` ``(org_id, transaction_id)``: the key,
the event and the hourly rollup are written in one statement on PostgreSQL (one transaction on
SQLite), so a concurrent retry of the same transaction id waits for the first writer and then counts
as a ``duplicate``. Events whose customer or metric is unknown are stored as ``unmatched`` and become
billable when the customer or metric appears (:mod:`revflow.services.usage_recovery`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any, Final, Protocol

import msgspec
import orjson
from sqlalchemy import Select, bindparam, case, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from revflow.domain.ids import new_id
from revflow.domain.usage import (
    MAX_MICROS,
    Aggregation,
    InvalidValue,
    floor_hour,
    matches_filters,
    to_micros,
)
from revflow.services.context import Ctx
from revflow.storage.bulk import among, among_param, per_dialect, unless_taken
from revflow.storage.models import Customer, CustomerExternalId, Subscription
from revflow.storage.types import exact_decoder, exact_json
from revflow.storage.usage_models import (
    BillableMetric,
    UsageEvent,
    UsageEventKey,
    UsageRollup,
    UsageUniqueValue,
)

__all__ = ["MAX_BATCH", "MetricReader", "Outcome", "add_rollups", "decode_batch", "decode_event", "ingest"]

MAX_BATCH: Final = 1000
#: Rollup rows per customer, metric, group and hour that concurrent PostgreSQL writers spread over.
ROLLUP_SHARDS: Final = 8
_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
FUTURE_LIMIT: Final = timedelta(hours=1)
_MAX_PROPERTIES: Final = 100
#: Integers up to this need no range check after scaling to micro-units.
_MAX_INT_UNITS: Final = MAX_MICROS // 1_000_000
_FIELDS: Final = frozenset(
    {
        "transaction_id",
        "metric_code",
        "customer_id",
        "external_customer_id",
        "subscription_id",
        "timestamp",
        "properties",
    }
)


class _Wire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A well-formed event as it arrives, typed and length-checked by msgspec while it decodes the body.
    Anything that does not fit goes through the generic path instead, which finds the reason."""

    transaction_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    metric_code: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None
    external_customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    subscription_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None
    timestamp: str | None = None
    properties: Annotated[dict[str, Any], msgspec.Meta(max_length=_MAX_PROPERTIES)] | None = None


class _WireBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: Annotated[list[_Wire], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_BATCH_DECODER: Final = exact_decoder(_WireBatch)
_EVENT_DECODER: Final = exact_decoder(_Wire)


def decode_batch(raw: bytes) -> list[Any] | None:
    """The events of a batch body whose every event is well-formed, decoded and type-checked in one
    C-speed pass (numbers exact, as :func:`~revflow.storage.types.decode_json` reads them); None when
    anything in the body does not fit, for the generic path to find each reason."""
    try:
        batch: _WireBatch = _BATCH_DECODER.decode(raw)
        return batch.events
    except msgspec.DecodeError:  # ValidationError included
        return None


def decode_event(raw: bytes) -> Any | None:
    """One well-formed event body, as :func:`decode_batch`; None when it does not fit."""
    try:
        return _EVENT_DECODER.decode(raw)
    except msgspec.DecodeError:
        return None


@dataclass(slots=True)
class Outcome:
    """What happened to one event of a request: ``accepted``, ``duplicate`` or ``rejected``."""

    index: int
    transaction_id: str | None
    status: str
    code: str | None = None
    message: str | None = None
    event_id: str | None = None
    #: ``billable``, ``unmatched`` or ``filtered`` for an accepted event.
    event_status: str | None = None
    reason: str | None = None
    #: ``period_invoiced``: accepted, but its period was already invoiced (billed on the next invoice).
    warning: str | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "transaction_id": self.transaction_id,
            "status": self.status,
        }
        if self.status == "rejected":
            out["code"], out["message"] = self.code, self.message
        else:
            out["id"] = self.event_id
            if self.event_status is not None:
                out["event_status"] = self.event_status
            if self.reason is not None:
                out["reason"] = self.reason
            if self.warning is not None:
                out["warning"] = self.warning
        return out


class _Reject(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _text(raw: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise _Reject(f"missing_{name}", f"{name} is required")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise _Reject(f"invalid_{name}", f"{name} must be a string of 1 to {limit} characters")
    return value


def _timestamp(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    try:
        if type(value) is str:
            at = datetime.fromisoformat(value)
        elif type(value) is int:
            at = datetime.fromtimestamp(value, UTC)
        elif type(value) is Decimal and value.is_finite():  # epoch seconds with a fraction, exactly
            whole = value.to_integral_value(rounding=ROUND_FLOOR)
            micros = int((value - whole) * 1_000_000)
            at = datetime.fromtimestamp(int(whole), UTC) + timedelta(microseconds=micros)
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise _Reject("invalid_timestamp", f"timestamp {value!r} is not an ISO 8601 instant") from None
    if at.tzinfo is None:
        raise _Reject("invalid_timestamp", "timestamp needs a UTC offset (e.g. 2024-06-01T12:00:00Z)")
    if at.utcoffset():
        at = at.astimezone(UTC)
    elif at.tzinfo is not UTC:
        at = at.replace(tzinfo=UTC)
    if at > now + FUTURE_LIMIT:
        raise _Reject("timestamp_in_future", "timestamp is more than 1 hour in the future")
    if at.year < 2000:
        raise _Reject("invalid_timestamp", "timestamp is before the year 2000")
    return at


@dataclass(slots=True)
class _Event:
    index: int
    transaction_id: str
    metric_code: str
    customer_id: str | None
    external_customer_id: str | None
    subscription_id: str | None
    timestamp: datetime
    properties: dict[str, Any]
    id: str = ""
    value: int | None = None
    unique_value: str | None = None
    group_key: str = ""
    status: str = "billable"
    reason: str | None = None


def _ok_id(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and 0 < len(value) <= limit)


def _parse(index: int, raw: Any, now: datetime) -> _Event:
    """The event of a JSON object, or _Reject. Well-formed events take the fast path (a handful of type
    checks); anything else goes through :func:`_parse_checked`, which finds the reason."""
    if type(raw) is _Wire:  # types and lengths already checked while decoding
        if raw.customer_id is None and raw.external_customer_id is None and raw.subscription_id is None:
            raise _Reject(
                "missing_customer", "one of customer_id, external_customer_id or subscription_id is required"
            )
        return _Event(
            index,
            raw.transaction_id,
            raw.metric_code,
            raw.customer_id,
            raw.external_customer_id,
            raw.subscription_id,
            _timestamp(raw.timestamp, now),
            raw.properties or {},
        )
    if type(raw) is dict and _FIELDS.issuperset(raw):
        tx, metric = raw.get("transaction_id"), raw.get("metric_code")
        cid, ext, sub = raw.get("customer_id"), raw.get("external_customer_id"), raw.get("subscription_id")
        props = raw.get("properties") or {}
        if (
            type(tx) is str
            and 0 < len(tx) <= 255
            and type(metric) is str
            and 0 < len(metric) <= 100
            and (cid is not None or ext is not None or sub is not None)
            and _ok_id(cid, 40)
            and _ok_id(ext, 200)
            and _ok_id(sub, 40)
            and type(props) is dict
            and len(props) <= _MAX_PROPERTIES
        ):
            return _Event(index, tx, metric, cid, ext, sub, _timestamp(raw.get("timestamp"), now), props)
    return _parse_checked(index, raw, now)


def _parse_checked(index: int, raw: Any, now: datetime) -> _Event:
    if not isinstance(raw, dict):
        raise _Reject("invalid_event", "an event must be a JSON object")
    tx = _text(raw, "transaction_id", 255, required=True)
    metric = _text(raw, "metric_code", 100, required=True)
    customer_id = _text(raw, "customer_id", 40)
    external = _text(raw, "external_customer_id", 200)
    subscription_id = _text(raw, "subscription_id", 40)
    if customer_id is None and external is None and subscription_id is None:
        raise _Reject(
            "missing_customer", "one of customer_id, external_customer_id or subscription_id is required"
        )
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):
        raise _Reject("invalid_properties", "properties must be a JSON object")
    unknown = set(raw) - {
        "transaction_id",
        "metric_code",
        "customer_id",
        "external_customer_id",
        "subscription_id",
        "timestamp",
        "properties",
    }
    if unknown:
        raise _Reject("unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")
    if len(properties) > _MAX_PROPERTIES:
        raise _Reject("properties_too_large", f"an event holds at most {_MAX_PROPERTIES} properties")
    assert tx is not None and metric is not None
    return _Event(
        index,
        tx,
        metric,
        customer_id,
        external,
        subscription_id,
        _timestamp(raw.get("timestamp"), now),
        properties,
    )


class MetricFields(Protocol):
    """What a :class:`MetricReader` reads of a metric: the ORM object, or a row of those columns."""

    code: str
    aggregation: str
    group_by: str | None
    filters: dict[str, Any]
    property: str | None


class MetricReader:
    """How one metric reads an event, taken from the metric once (not once per event).

    Calling it with an event and its properties sets the event's value, unique value and group, and
    ``status`` ``filtered`` when the metric's filters exclude it. Raises InvalidValue for a missing or
    non-numeric value (a binary float is not a number here: values are exact decimals, see
    :func:`~revflow.storage.types.decode_json`)."""

    __slots__ = ("code", "filters", "group_by", "prop", "unique")

    def __init__(self, metric: MetricFields):
        self.code = metric.code
        self.prop = metric.property
        self.unique = metric.aggregation == Aggregation.UNIQUE_COUNT.value
        self.group_by = metric.group_by
        self.filters = metric.filters or None

    def __call__(self, event: Any, props: dict[str, Any]) -> None:
        if self.prop is not None:
            raw = props.get(self.prop)
            if raw is None:
                raise InvalidValue(f"property {self.prop!r} is required by metric {self.code!r}")
            if self.unique:
                if isinstance(raw, dict | list):
                    raise InvalidValue(f"property {self.prop!r} must be a string or number")
                event.unique_value = str(raw)[:200]
            elif type(raw) is int and -_MAX_INT_UNITS <= raw <= _MAX_INT_UNITS:
                event.value = raw * 1_000_000  # the common case, exact without Decimal
            else:
                event.value = to_micros(raw)
        if self.group_by is not None:
            event.group_key = str(props.get(self.group_by, ""))[:200]
        if self.filters is not None and not matches_filters(self.filters, props):
            event.status, event.reason = "filtered", None


@per_dialect
def _customers_query(dialect: str) -> Select[Any]:
    return select(Customer.id).where(
        Customer.org_id == bindparam("org"), among_param(dialect, Customer.id, "ids")
    )


def _resolve_customers(ctx: Ctx, events: list[_Event]) -> None:
    """Fill ``customer_id`` from external ids and subscriptions; unknown ones become unmatched."""
    s = ctx.session
    ids = {e.customer_id for e in events if e.customer_id is not None}
    known: set[str] = set()
    if ids:
        known = set(s.scalars(_customers_query(s), {"org": ctx.org_id, "ids": list(ids)}))
    externals = {e.external_customer_id for e in events if e.customer_id is None and e.external_customer_id}
    by_external = resolve_externals(s, ctx.org_id, externals)
    subs = {e.subscription_id for e in events if e.subscription_id is not None}
    by_sub: dict[str, str] = {}
    if subs:
        rows = s.execute(
            select(Subscription.id, Subscription.customer_id).where(
                Subscription.org_id == ctx.org_id, among(s, Subscription.id, subs)
            )
        )
        by_sub = {sid: cid for sid, cid in rows}
    for e in events:
        if e.subscription_id is not None:
            owner = by_sub.get(e.subscription_id)
            if owner is None or (e.customer_id is not None and e.customer_id != owner):
                e.customer_id = None
            else:
                e.customer_id = owner
        elif e.customer_id is not None:
            if e.customer_id not in known:
                e.customer_id = None
        else:
            e.customer_id = by_external.get(e.external_customer_id or "")


def resolve_externals(session: Session, org_id: str, externals: Iterable[str]) -> dict[str, str]:
    """Customer ids by external id (any connected system); an external id two customers share in
    different systems resolves to neither."""
    wanted = list(set(externals))
    if not wanted:
        return {}
    found: dict[str, set[str]] = {}
    for ext, cid in session.execute(
        select(CustomerExternalId.external_id, CustomerExternalId.customer_id).where(
            CustomerExternalId.org_id == org_id, among(session, CustomerExternalId.external_id, wanted)
        )
    ):
        found.setdefault(ext, set()).add(cid)
    return {ext: next(iter(ids)) for ext, ids in found.items() if len(ids) == 1}


def ingest(ctx: Ctx, raw_events: list[Any]) -> list[Outcome]:
    """Store the valid events of ``raw_events`` once each and return one Outcome per event, in order.

    Never raises for a bad event (it is ``rejected`` with a reason); a duplicate transaction id (in the
    batch, or already stored, or being stored by a concurrent request) is ``duplicate``.
    """
    now = ctx.now()
    outcomes: list[Outcome | None] = [None] * len(raw_events)
    events: list[_Event] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_events):
        try:
            event = _parse(i, raw, now)
        except _Reject as exc:
            tx = raw.get("transaction_id") if isinstance(raw, dict) else getattr(raw, "transaction_id", None)
            outcomes[i] = Outcome(i, tx if isinstance(tx, str) else None, "rejected", exc.code, exc.message)
            continue
        if event.transaction_id in seen:
            outcomes[i] = Outcome(i, event.transaction_id, "duplicate")
            continue
        seen[event.transaction_id] = i
        events.append(event)
    readers = {code: MetricReader(m) for code, m in _metrics(ctx, {e.metric_code for e in events}).items()}
    good: list[_Event] = []
    for e in events:
        reader = readers.get(e.metric_code)
        if reader is None:
            e.status, e.reason = "unmatched", "unknown_metric"
        else:
            try:
                reader(e, e.properties)
            except InvalidValue as exc:
                outcomes[e.index] = Outcome(e.index, e.transaction_id, "rejected", exc.code, exc.message)
                del seen[e.transaction_id]
                continue
        good.append(e)
    _resolve_customers(ctx, good)
    base = new_id("uev")  # one id per batch, plus a 2-character index: still unique and time-ordered
    for n, e in enumerate(good):
        e.id = base + _ALPHABET[n >> 5] + _ALPHABET[n & 31]
        if e.customer_id is None and e.status != "unmatched":
            e.status, e.reason = "unmatched", "unknown_customer"
    try:
        inserted = store(ctx, good, now=now)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits in some properties; raised before any write
        good = _storable(good, outcomes, seen)
        inserted = store(ctx, good, now=now)
    for e in good:
        if e.transaction_id in inserted:
            outcomes[e.index] = Outcome(
                e.index, e.transaction_id, "accepted", event_id=e.id, event_status=e.status, reason=e.reason
            )
    fresh = [
        e
        for e in good
        if e.transaction_id in inserted and e.status == "billable" and e.customer_id is not None
    ]
    if fresh:  # late events, thresholds, usage billed in advance (ADR 0034)
        from revflow.services.usage_late import after_ingest

        warnings = after_ingest(ctx, fresh)
        for e in fresh:
            if e.id in warnings:
                outcome = outcomes[e.index]
                assert outcome is not None
                outcome.warning = warnings[e.id]
    duplicates = [e for e in good if e.transaction_id not in inserted]
    if duplicates:
        stored = _stored_ids(ctx, [e.transaction_id for e in duplicates])
        for e in duplicates:
            outcomes[e.index] = Outcome(
                e.index, e.transaction_id, "duplicate", event_id=stored.get(e.transaction_id)
            )
    for i, o in enumerate(outcomes):
        if o is not None and o.status == "duplicate" and o.event_id is None and o.transaction_id in seen:
            first = outcomes[seen[o.transaction_id]]
            o.event_id = first.event_id if first is not None else None
        assert o is not None, i
    return [o for o in outcomes if o is not None]


def _storable(events: list[_Event], outcomes: list[Outcome | None], seen: dict[str, int]) -> list[_Event]:
    """The events whose properties a JSON column can hold exactly; each other one is answered ``rejected``.
    JSON allows integers of any size, but the columns are written with orjson, which holds 64 bits."""
    kept = []
    for e in events:
        try:
            exact_json(e.properties)
        except orjson.JSONEncodeError:
            outcomes[e.index] = Outcome(
                e.index,
                e.transaction_id,
                "rejected",
                "invalid_properties",
                "properties hold an integer beyond 64 bits: send it as a string",
            )
            del seen[e.transaction_id]
        else:
            kept.append(e)
    return kept


@per_dialect
def _metrics_query(dialect: str) -> Select[Any]:
    m = BillableMetric
    return select(m.code, m.property, m.aggregation, m.group_by, m.filters).where(
        m.org_id == bindparam("org"), among_param(dialect, m.code, "codes")
    )


def _metrics(ctx: Ctx, codes: set[str]) -> dict[str, MetricFields]:
    """What the readers need of each metric in ``codes``: a row of five columns (not the ORM object)."""
    if not codes:
        return {}
    rows = ctx.session.execute(_metrics_query(ctx.session), {"org": ctx.org_id, "codes": list(codes)})
    return {row.code: row for row in rows}


def _stored_ids(ctx: Ctx, transaction_ids: list[str]) -> dict[str, str]:
    rows = ctx.session.execute(
        select(UsageEventKey.transaction_id, UsageEventKey.event_id).where(
            UsageEventKey.org_id == ctx.org_id,
            among(ctx.session, UsageEventKey.transaction_id, transaction_ids),
        )
    )
    return {tx: event_id for tx, event_id in rows}


def store(ctx: Ctx, events: list[Any], *, now: datetime) -> set[str]:
    """Write ``events`` whose transaction id is new (key, event, rollups); returns those transaction ids
    (PostgreSQL answers with the others, the duplicates: usually none, so usually no rows travel back).

    Events are written in transaction-id order so that concurrent batches take key locks in the same
    order (no deadlock)."""
    if not events:
        return set()
    events = sorted(events, key=lambda e: e.transaction_id)
    if ctx.session.get_bind().dialect.name == "postgresql":
        return _store_postgres(ctx, events, now)
    return _store_generic(ctx, events, now)


_PG_INSERT_TEMPLATE: Final = """
WITH input AS (
    SELECT e->>0 AS id, (e->>1)::timestamptz AS ts, e->>2 AS tx, e->>3 AS metric, e->>4 AS cust,
        e->>5 AS ext, e->>6 AS sub, (e->>7)::bigint AS val, e->>8 AS uniq, e->>9 AS grp, e->10 AS props,
        e->>11 AS status, e->>12 AS reason
    FROM jsonb_array_elements(%(doc)s::jsonb) AS e
), k AS (
    INSERT INTO usage_event_keys (org_id, transaction_id, event_id, timestamp)
    SELECT %(org)s, tx, id, ts FROM input
    {keys}{fresh_cte}
), e AS (
    INSERT INTO usage_events (id, timestamp, org_id, transaction_id, metric_code, customer_id,
        external_customer_id, subscription_id, value, unique_value, group_key, properties, status, reason,
        created_at)
    SELECT id, ts, %(org)s, tx, metric, cust, ext, sub, val, uniq, grp, props, status, reason, %(now)s
    FROM {fresh}
), r AS (
    INSERT INTO usage_rollups AS u (org_id, customer_id, metric_code, group_key, bucket, shard, events,
        total, min_value, max_value, latest_at, latest_value, latest_id)
    SELECT %(org)s, coalesce(sub, cust), metric, grp, date_trunc('hour', ts, 'UTC'), %(shard)s, count(*),
        coalesce(sum(val), 0), min(val), max(val), max(ts), (array_agg(val ORDER BY ts DESC, id DESC))[1],
        (array_agg(id ORDER BY ts DESC, id DESC))[1]
    FROM {fresh} WHERE status = 'billable'
    GROUP BY coalesce(sub, cust), metric, grp, date_trunc('hour', ts, 'UTC')
    ORDER BY 2, 3, 4, 5
    ON CONFLICT (org_id, customer_id, metric_code, group_key, bucket, shard) DO UPDATE SET
        events = u.events + excluded.events,
        total = u.total + excluded.total,
        min_value = LEAST(u.min_value, excluded.min_value),
        max_value = GREATEST(u.max_value, excluded.max_value),
        latest_value = CASE WHEN (excluded.latest_at, excluded.latest_id) > (u.latest_at, u.latest_id)
            THEN excluded.latest_value ELSE u.latest_value END,
        latest_id = CASE WHEN (excluded.latest_at, excluded.latest_id) > (u.latest_at, u.latest_id)
            THEN excluded.latest_id ELSE u.latest_id END,
        latest_at = GREATEST(u.latest_at, excluded.latest_at)
), q AS (
    INSERT INTO usage_unique_values (org_id, customer_id, metric_code, group_key, bucket, value)
    SELECT DISTINCT %(org)s, coalesce(sub, cust), metric, grp, date_trunc('hour', ts, 'UTC'), uniq
    FROM {fresh} WHERE status = 'billable' AND uniq IS NOT NULL
    ON CONFLICT DO NOTHING
)
{answer}
"""


#: Keys written with ON CONFLICT DO NOTHING: the duplicates are skipped (the answer lists them), and only
#: the events whose key went in are written.
_PG_INSERT: Final = _PG_INSERT_TEMPLATE.format(
    keys="ON CONFLICT DO NOTHING RETURNING transaction_id",
    fresh_cte="\n), fresh AS (\n    SELECT input.* FROM input JOIN k ON k.transaction_id = input.tx",
    fresh="fresh",
    answer="SELECT input.tx FROM input LEFT JOIN k ON k.transaction_id = input.tx\n"
    "WHERE k.transaction_id IS NULL",
)
#: Keys written with a plain INSERT, about a quarter cheaper for PostgreSQL (one index descent per key
#: instead of a speculative insertion); a duplicate fails the statement (ADR 0039). Every event is new,
#: so the events and rollups read the input as it is: no join with the keys written and no answer to
#: build, together about a tenth of the statement's cost (ADR 0041).
_PG_INSERT_NEW: Final = _PG_INSERT_TEMPLATE.format(
    keys="", fresh_cte="", fresh="input", answer="SELECT WHERE false"
)
_KEY_CONSTRAINT: Final = "pk_usage_event_keys"


def _store_postgres(ctx: Ctx, events: list[Any], now: datetime) -> set[str]:
    """One statement, one round trip: the batch travels as one JSON document that PostgreSQL unpacks."""
    doc = exact_json(
        [
            [
                e.id,
                e.timestamp,
                e.transaction_id,
                e.metric_code,
                e.customer_id,
                e.external_customer_id,
                e.subscription_id,
                e.value,
                e.unique_value,
                e.group_key,
                e.properties,
                e.status,
                e.reason,
            ]
            for e in events
        ],
    ).decode()
    params = {"org": ctx.org_id, "now": now, "doc": doc, "shard": secrets.randbelow(ROLLUP_SHARDS)}
    session = ctx.session
    # Duplicates are rare (a retry): first as if there were none, inside a savepoint; when a key is taken,
    # back to the savepoint and again with ON CONFLICT, which skips it.
    if unless_taken(session, _PG_INSERT_NEW, params, _KEY_CONSTRAINT):
        return {e.transaction_id for e in events}
    duplicates = {row[0] for row in session.connection().exec_driver_sql(_PG_INSERT, params)}
    return {e.transaction_id for e in events if e.transaction_id not in duplicates}


def _store_generic(ctx: Ctx, events: list[Any], now: datetime) -> set[str]:
    exact_json([e.properties for e in events])  # an unstorable property raises now, before any write
    s = ctx.session
    keys = [
        {"org_id": ctx.org_id, "transaction_id": e.transaction_id, "event_id": e.id, "timestamp": e.timestamp}
        for e in events
    ]
    inserted: set[str] = set()
    for chunk in range(0, len(keys), 200):
        stmt = sqlite.insert(UsageEventKey).values(keys[chunk : chunk + 200]).on_conflict_do_nothing()
        inserted |= set(s.scalars(stmt.returning(UsageEventKey.transaction_id)))
    fresh = [e for e in events if e.transaction_id in inserted]
    if not fresh:
        return inserted
    s.execute(
        sqlite.insert(UsageEvent),
        [
            {
                "id": e.id,
                "timestamp": e.timestamp,
                "org_id": ctx.org_id,
                "transaction_id": e.transaction_id,
                "metric_code": e.metric_code,
                "customer_id": e.customer_id,
                "external_customer_id": e.external_customer_id,
                "subscription_id": e.subscription_id,
                "value": e.value,
                "unique_value": e.unique_value,
                "group_key": e.group_key,
                "properties": e.properties,
                "status": e.status,
                "reason": e.reason,
                "created_at": now,
            }
            for e in fresh
        ],
    )
    add_rollups(s, ctx.org_id, [e for e in fresh if e.status == "billable"])
    return inserted


def add_rollups(session: Session, org_id: str, events: list[Any]) -> None:
    """Add billable ``events`` (already stored) to the hourly rollups and unique values, in key order.
    The rollup key is the subscription the event names, else its customer (ADR 0033)."""
    if not events:
        return
    acc: dict[tuple[str, str, str, datetime], list[Any]] = {}
    uniques: set[tuple[str, str, str, datetime, str]] = set()
    for e in sorted(events, key=lambda x: (x.timestamp, x.id)):
        bucket = floor_hour(e.timestamp)
        key = (e.subscription_id or e.customer_id, e.metric_code, e.group_key, bucket)
        value = e.value
        row = acc.get(key)
        if row is None:
            acc[key] = [1, value or 0, value, value, e.timestamp, value, e.id]
        else:
            row[0] += 1
            row[1] += value or 0
            if value is not None:
                row[2] = value if row[2] is None else min(row[2], value)
                row[3] = value if row[3] is None else max(row[3], value)
            row[4], row[5], row[6] = e.timestamp, value, e.id
        if e.unique_value is not None:
            uniques.add(
                (e.subscription_id or e.customer_id, e.metric_code, e.group_key, bucket, e.unique_value)
            )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    least = "LEAST" if dialect == "postgresql" else "MIN"
    greatest = "GREATEST" if dialect == "postgresql" else "MAX"
    t = UsageRollup.__table__
    for (cust, metric, grp, bucket), (n, total, lo, hi, at, latest, latest_id) in sorted(acc.items()):
        stmt = insert(UsageRollup).values(
            org_id=org_id,
            customer_id=cust,
            metric_code=metric,
            group_key=grp,
            bucket=bucket,
            shard=0,
            events=n,
            total=total,
            min_value=lo,
            max_value=hi,
            latest_at=at,
            latest_value=latest,
            latest_id=latest_id,
        )
        ex = stmt.excluded
        newer = t.c.latest_at.is_(None) | (
            tuple_(ex.latest_at, ex.latest_id) > tuple_(t.c.latest_at, t.c.latest_id)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "customer_id", "metric_code", "group_key", "bucket", "shard"],
            set_={
                "events": t.c.events + ex.events,
                "total": t.c.total + ex.total,
                "min_value": getattr(func, least.lower())(
                    func.coalesce(t.c.min_value, ex.min_value), func.coalesce(ex.min_value, t.c.min_value)
                ),
                "max_value": getattr(func, greatest.lower())(
                    func.coalesce(t.c.max_value, ex.max_value), func.coalesce(ex.max_value, t.c.max_value)
                ),
                "latest_value": case((newer, ex.latest_value), else_=t.c.latest_value),
                "latest_id": case((newer, ex.latest_id), else_=t.c.latest_id),
                "latest_at": case((newer, ex.latest_at), else_=t.c.latest_at),
            },
        )
        session.execute(stmt)
    if uniques:
        rows = [
            {"org_id": org_id, "customer_id": c, "metric_code": m, "group_key": g, "bucket": b, "value": v}
            for c, m, g, b, v in sorted(uniques)
        ]
        session.execute(insert(UsageUniqueValue).values(rows).on_conflict_do_nothing())

"""``FakeHubSpot``: a local HTTP server that answers the official ``hubspot-api-client`` SDK as HubSpot's CRM v3
API does, plus HubSpot's webhook (v3 signature) deliveries.

    with FakeHubSpot() as fake:
        client = fake.sdk()   # hubspot.HubSpot(access_token=fake.access_token, host=fake.url)
        company = client.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={...}))

Drive it from Python as a HubSpot user would (:meth:`FakeHubSpot.edit` moves a deal to ``closedwon`` or changes
its plan property, and queues the webhook), inject faults (:meth:`FakeHubSpot.inject_fault`), and inspect what
it stores and received (:meth:`objects`, :attr:`requests`).
"""

# ruff: noqa: E501  (HubSpot's own messages are quoted verbatim)

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from .._http import FakeRequestHandler, LocalServer, write
from .state import (
    DEFAULT_ASSOCIATION,
    HubSpotError,
    Obj,
    PortalState,
    PropertyChange,
    iso_ms,
    validation_error,
)

__all__ = [
    "FakeHubSpot",
    "FaultKind",
    "RecordedRequest",
    "Subscription",
    "WebhookDelivery",
    "running_fake",
    "sign_v3",
]

FaultKind = Literal["429", "500", "timeout", "timeout_before", "malformed"]
WebhookHandler = Callable[[bytes, dict[str, str]], int]

#: HubSpot's published webhook event types the fake emits (https://developers.hubspot.com/docs/api/webhooks).
SUBSCRIPTION_TYPES = (
    "company.creation",
    "company.deletion",
    "company.propertyChange",
    "deal.creation",
    "deal.deletion",
    "deal.propertyChange",
)
_URI_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
    "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
MAX_EVENTS_PER_REQUEST = 100
BATCH_READ_MAX_INPUTS = 1000  # v4 association batch reads take at most 1,000 ids  # "HubSpot will send up to 100 events in one request"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (faults included)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # parsed JSON (None when there was none)
    status: int | None  # None: no answer was sent (timeout faults)
    fault: FaultKind | None = None
    response: Any = None  # the JSON body answered (None for faults and empty answers)


@dataclass
class _Fault:
    kind: FaultKind
    method: str | None
    path: str | None
    retry_after: int


@dataclass(frozen=True)
class Subscription:
    id: int
    subscription_type: str
    property_name: str | None = None  # propertyChange subscriptions watch one property


@dataclass
class _Event:
    payload: Obj
    attempts: int = 0


@dataclass(frozen=True)
class WebhookDelivery:
    event_ids: tuple[int, ...]
    status: int | None  # what the target answered; None when it could not be reached


@dataclass
class _Window:
    started_ms: int = 0
    used: int = 0
    day: int = -1
    used_today: int = 0


@dataclass
class _RateLimit:
    max: int
    interval_ms: int
    daily: int
    window: _Window = field(default_factory=_Window)


class FakeHubSpot:
    """A faithful local HubSpot portal (CRM v3 companies, deals, properties, associations; webhooks v3).

    ``access_token``: the private-app token it accepts (Bearer). ``client_secret``: the app's secret that signs
    webhooks. ``hang_seconds``: how long ``timeout`` faults hold an answer (set above the client's timeout).
    ``rate_limit``: the burst limit per ``interval_ms`` (private apps on Professional: 190 per 10 s) and the
    daily limit; the fake answers 429 once it is spent, with HubSpot's headers. ``search_lag_ms``: how long
    (on the fake's clock) a change takes to reach the search endpoints, as HubSpot's index trails writes;
    0 (the default) makes search immediately consistent.
    """

    #: The methods HubSpot's API answers; another gets 501.
    methods = ("GET", "POST", "PATCH", "PUT", "DELETE")

    def __init__(
        self,
        *,
        access_token: str = "pat-na1-00000000-0000-0000-0000-000000000000",
        client_secret: str = "fake-hubspot-client-secret",
        portal_id: int = 62515,
        app_id: int = 1234567,
        hang_seconds: float = 2.0,
        rate_limit: int = 190,
        interval_ms: int = 10_000,
        daily_limit: int = 1_000_000,
        webhook_url: str | None = None,
        seed_properties: bool = True,
        search_lag_ms: int = 0,
    ):
        self.access_token = access_token
        self.client_secret = client_secret
        self.portal_id = portal_id
        self.app_id = app_id
        self.hang_seconds = hang_seconds
        self.webhook_url = webhook_url
        self.lock = threading.RLock()
        self._offset_ms = 0
        self._frozen_ms: int | None = None
        self.state = PortalState(self.now_ms)
        self.state.search_lag_ms = search_lag_ms
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[WebhookDelivery] = []
        self.subscriptions: list[Subscription] = []
        self._faults: list[_Fault] = []
        self._hooks: list[tuple[str, str, Callable[[FakeHubSpot], Any]]] = []
        self._events: list[_Event] = []
        self._rate = _RateLimit(rate_limit, interval_ms, daily_limit)
        self._delivery_lock = threading.Lock()
        self._http = LocalServer("fake-hubspot")
        self._event_seq = random.randint(1, 10**6)
        if seed_properties:
            self.seed_revflow_properties()

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> FakeHubSpot:
        self._http.start(self)
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:PORT``: the SDK's ``host`` (HubSpot's is
        ``https://api.hubapi.com``)."""
        return self._http.url

    def sdk(self, **config: Any) -> Any:
        """The official client pointed at the fake: ``hubspot.HubSpot(access_token=..., host=url, **config)``."""
        import hubspot

        return hubspot.HubSpot(access_token=self.access_token, host=self.url, **config)

    # ------------------------------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        if self._frozen_ms is not None:
            return self._frozen_ms
        return int(time.time() * 1000) + self._offset_ms

    def freeze_time(self, ms: int | None = None) -> int:
        """Stop the fake's clock (at ``ms``, default now): objects changed meanwhile share one
        ``hs_lastmodifieddate``, as HubSpot's do within a millisecond. Returns the frozen time."""
        with self.lock:
            self._frozen_ms = self.now_ms() if ms is None else ms
            return self._frozen_ms

    def advance_time(self, ms: int) -> None:
        with self.lock:
            if self._frozen_ms is not None:
                self._frozen_ms += ms
            else:
                self._offset_ms += ms

    # ---------------------------------------------------------------------------------- portal setup
    def seed_revflow_properties(self) -> None:
        """Define the properties a portal has once Revflow's ``ensure_properties()`` ran: the billing fields on
        companies and deals (``revflow_id`` unique), so tests may skip the setup call."""
        from revflow.adapters.crm.hubspot.mapping import property_definitions

        with self.lock:
            for kind in ("companies", "deals"):
                for definition in property_definitions(kind):
                    if definition["name"] not in self.state.properties[kind]:
                        self.state.create_property(kind, definition)

    def reset_properties(self) -> None:
        """Forget every custom property (a fresh portal), so a test can run the adapter's setup itself."""
        with self.lock:
            for kind in ("companies", "deals"):
                for name in [n for n, d in self.state.properties[kind].items() if "hubspotDefined" not in d]:
                    del self.state.properties[kind][name]

    # ---------------------------------------------------------------------------------- test controls
    def create(
        self, object_type: str, properties: dict[str, str], *, associate_with: str | None = None
    ) -> Obj:
        """Create a company or deal as a HubSpot user would (``changeSource`` CRM_UI); a deal may be associated
        with a company. Emits ``*.creation`` (and propertyChange) webhooks. Returns the stored object."""
        body: Obj = {"properties": properties}
        if associate_with is not None:
            kind = "companies" if object_type == "deals" else "deals"
            type_id = DEFAULT_ASSOCIATION[(object_type, kind)]
            body["associations"] = [
                {
                    "to": {"id": associate_with},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
                }
            ]
        with self.lock:
            obj = self.state.create(object_type, body, source="CRM_UI")
            self._emit()
            return self.state.render(obj, all_set=True)

    def edit(self, object_type: str, object_id: str, **properties: str) -> Obj:
        """Change properties as a HubSpot user would in the CRM (e.g. ``edit("deals", id, dealstage="closedwon",
        revflow_plan="pro")``): validated as the API validates, ``hs_lastmodifieddate`` bumped, and one
        ``*.propertyChange`` webhook per changed property queued. Returns the stored object."""
        with self.lock:
            obj = self.state.update(object_type, object_id, {"properties": properties}, source="CRM_UI")
            self._emit()
            return self.state.render(obj, all_set=True)

    def delete(self, object_type: str, object_id: str) -> None:
        """Delete (archive) a company or deal as a HubSpot user would: reads answer 404 from now on, and a
        ``*.deletion`` webhook is queued."""
        with self.lock:
            self.state.archive(self.state.lookup(object_type, object_id), source="CRM_UI")
            self._emit()

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``times`` matching requests (``method``, ``path`` prefix) fail: ``429`` (rate limited,
        with ``Retry-After``), ``500``, ``timeout`` (the request is carried out but no answer comes: the lost
        201), ``timeout_before`` (nothing is done and no answer comes), ``malformed`` (carried out, answered with
        an HTML body)."""
        with self.lock:
            self._faults.extend(_Fault(kind, method, path, retry_after) for _ in range(times))

    def before_next(self, method: str, path: str, action: Callable[[FakeHubSpot], Any]) -> None:
        """Run ``action(fake)`` just before the next ``method`` request whose path starts with ``path`` is handled:
        a concurrent change landing between two of the client's calls (e.g. another worker creating the same
        company between a lookup and a create)."""
        with self.lock:
            self._hooks.append((method, path, action))

    def objects(self, object_type: str, *, archived: bool = False) -> list[Obj]:
        """Every stored company or deal with all its set properties, oldest first."""
        with self.lock:
            return [
                self.state.render(o, all_set=True) | {"associations": sorted(o.associations)}
                for o in sorted(self.state.objects[object_type].values(), key=lambda o: int(o.id))
                if o.archived == archived
            ]

    def get(self, object_type: str, object_id: str) -> Obj | None:
        with self.lock:
            o = self.state.objects[object_type].get(object_id)
            return (
                None
                if o is None
                else self.state.render(o, all_set=True) | {"associations": sorted(o.associations)}
            )

    def property_names(self, object_type: str) -> list[str]:
        with self.lock:
            return sorted(self.state.properties[object_type])

    def set_rate_limit(self, *, remaining: int | None = None, max: int | None = None) -> None:
        """Spend the burst budget (``remaining`` left in this window) or change its size."""
        with self.lock:
            if max is not None:
                self._rate.max = max
            if remaining is not None:
                self._rate.window.used = self._rate.max - remaining
                if self._rate.window.started_ms == 0:
                    self._rate.window.started_ms = self.now_ms()

    # ------------------------------------------------------------------------------------------- webhooks
    def subscribe(self, subscription_type: str, property_name: str | None = None) -> Subscription:
        """Add a webhook subscription to the app (``deal.propertyChange`` with ``dealstage``, ...). Changes made
        from now on queue events for the target URL."""
        if subscription_type not in SUBSCRIPTION_TYPES:
            raise ValueError(f"unknown subscription type {subscription_type}")
        if subscription_type.endswith(".propertyChange") and not property_name:
            raise ValueError("propertyChange subscriptions watch one property")
        with self.lock:
            sub = Subscription(len(self.subscriptions) + 100_001, subscription_type, property_name)
            self.subscriptions.append(sub)
            return sub

    def _emit(self) -> None:
        changes, self.state.changes = self.state.changes, []
        for change in changes:
            for sub in self.subscriptions:
                noun = "company" if change.object_type == "companies" else "deal"
                if (
                    (change.created and sub.subscription_type == f"{noun}.creation")
                    or (change.deleted and sub.subscription_type == f"{noun}.deletion")
                ) or (
                    not change.created
                    and not change.deleted
                    and sub.subscription_type == f"{noun}.propertyChange"
                    and sub.property_name == change.property_name
                ):
                    self._events.append(_Event(self._payload(sub, change)))

    def _payload(self, sub: Subscription, change: PropertyChange) -> Obj:
        self._event_seq += random.randint(1, 97)
        payload: Obj = {
            "eventId": self._event_seq,
            "subscriptionId": sub.id,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": change.occurred_ms,
            "subscriptionType": sub.subscription_type,
            "attemptNumber": 0,
            "objectId": int(change.object_id),
            "changeFlag": "CREATED"
            if change.created
            else "DELETED"
            if change.deleted
            else "PROPERTY_CHANGED",
            "changeSource": change.source,
        }
        if not change.created and not change.deleted:
            payload["propertyName"] = change.property_name
            payload["propertyValue"] = change.value
            payload["sourceId"] = "userId:1" if change.source == "CRM_UI" else f"{self.app_id}"
        return payload

    def pending_webhooks(self) -> list[Obj]:
        """Events queued for the target URL (not yet acknowledged with a 2xx), oldest first."""
        with self.lock:
            return [copy.deepcopy(e.payload) | {"attemptNumber": e.attempts} for e in self._events]

    def sign(
        self,
        events: list[Obj] | None = None,
        *,
        url: str | None = None,
        method: str = "POST",
        timestamp_ms: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers HubSpot would POST to ``url`` (default: the target URL) for ``events``
        (default: the pending ones), signed (v3) at ``timestamp_ms`` (default: now, real time). Nothing is sent
        and nothing leaves the queue: use it for duplicate, out-of-order and stale-signature tests."""
        body = json.dumps(self.pending_webhooks() if events is None else events).encode()
        target = url or self.webhook_url
        if not target:
            raise RuntimeError("no webhook target URL: pass url= or set webhook_url")
        headers = sign_v3(
            body, secret or self.client_secret, url=target, method=method, timestamp_ms=timestamp_ms
        )
        return body, headers

    def deliver_webhooks(self, handler: WebhookHandler | None = None) -> list[WebhookDelivery]:
        """Deliver the queued events, oldest first, at most 100 per request: POSTed to :attr:`webhook_url`, or
        passed to ``handler(body, headers) -> status`` (signed for :attr:`webhook_url`, or
        ``http://testserver/`` when unset). A non-2xx answer or an unreachable target leaves the batch queued
        with ``attemptNumber`` raised (HubSpot retries). Returns the attempts."""
        attempts: list[WebhookDelivery] = []
        target = self.webhook_url or "http://testserver/"
        if handler is None and not self.webhook_url:
            return attempts
        with self._delivery_lock:
            with self.lock:
                queued = list(self._events)
            for start in range(0, len(queued), MAX_EVENTS_PER_REQUEST):
                batch = queued[start : start + MAX_EVENTS_PER_REQUEST]
                payload = [e.payload | {"attemptNumber": e.attempts} for e in batch]
                body, headers = self.sign(payload, url=target)
                status = handler(body, headers) if handler is not None else _post(target, body, headers)
                attempt = WebhookDelivery(tuple(int(p["eventId"]) for p in payload), status)
                attempts.append(attempt)
                ok = status is not None and 200 <= status < 300
                with self.lock:
                    self.deliveries.append(attempt)
                    for e in batch:
                        if ok:
                            self._events.remove(e)
                        else:
                            e.attempts += 1
                if not ok:
                    break  # the rest waits for HubSpot's next retry, in order
        return attempts

    # ------------------------------------------------------------------------------------------- serving
    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if (fault.method is None or fault.method == method) and (
                    fault.path is None or path.startswith(fault.path)
                ):
                    return self._faults.pop(i)
        return None

    def _rate_headers(self) -> dict[str, str]:
        r = self._rate
        return {
            "X-HubSpot-RateLimit-Daily": str(r.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, r.daily - r.window.used_today)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(r.interval_ms),
            "X-HubSpot-RateLimit-Max": str(r.max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, r.max - r.window.used)),
        }

    def _spend(self) -> HubSpotError | None:
        """Count one request against the burst and daily limits; the 429 when either is spent."""
        r, w, now = self._rate, self._rate.window, self.now_ms()
        if now - w.started_ms >= r.interval_ms:
            w.started_ms, w.used = now, 0
        day = now // 86_400_000
        if day != w.day:
            w.day, w.used_today = day, 0
        if w.used_today >= r.daily:
            return _rate_limited(
                "DAILY",
                "You have reached your daily limit.",
                retry_after=max(1, (86_400_000 - now % 86_400_000) // 1000),
            )
        if w.used >= r.max:
            wait = max(1, -(-(w.started_ms + r.interval_ms - now) // 1000))
            return _rate_limited(
                "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", retry_after=wait
            )
        w.used += 1
        w.used_today += 1
        return None

    def _serve(self, req: FakeRequestHandler, method: str) -> None:
        split = urlsplit(req.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        body: Any = None
        parse_error = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                parse_error = exc
        fault = self._take_fault(method, path)
        is_search = path.endswith("/search")

        def record(status: int | None, response: Any = None) -> None:
            with self.lock:
                self.requests.append(
                    RecordedRequest(
                        method, path, query, body, status, fault.kind if fault else None, response
                    )
                )

        if fault is not None and fault.kind in ("429", "500", "timeout_before"):
            if fault.kind == "timeout_before":
                record(None)
                self._http.release.wait(self.hang_seconds)
                req.close_connection = True
                return
            if fault.kind == "429":
                err = _rate_limited(
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                    retry_after=fault.retry_after,
                )
                with self.lock:
                    headers = {**self._rate_headers(), "X-HubSpot-RateLimit-Remaining": "0", **err.headers}
            else:
                err = HubSpotError(500, "INTERNAL_ERROR", "internal error")
                headers = {}
            answer = err.body()
            record(err.status, answer)
            _write(req, err.status, _dump(answer), headers)
            return

        with self.lock:
            hook = next((h for h in self._hooks if h[0] == method and path.startswith(h[1])), None)
            if hook is not None:
                self._hooks.remove(hook)
                hook[2](self)
            try:
                if not self._authorized(req.headers.get("Authorization") or ""):
                    raise HubSpotError(
                        401,
                        "INVALID_AUTHENTICATION",
                        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can"
                        " find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    )
                limited = None if is_search else self._spend()
                if limited is not None:
                    raise limited
                if parse_error is not None:
                    raise validation_error(f"Invalid input JSON on line 1, column 1: {parse_error}")
                status, payload = self._route(method, path, query, body)
                self._emit()
            except HubSpotError as err:
                status, payload = err.status, err.body()
                extra = err.headers
            else:
                extra = {}
            # The search endpoints do not return the standard rate-limit headers (HubSpot documents this).
            headers = {} if is_search or status == 401 else {**self._rate_headers(), **extra}
            if status == 429:
                headers["X-HubSpot-RateLimit-Remaining"] = "0"
        if fault is not None and fault.kind == "timeout":
            record(None)
            self._http.release.wait(self.hang_seconds)
            req.close_connection = True
            return
        if fault is not None and fault.kind == "malformed":
            record(status)
            _write(
                req,
                status,
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                {**headers, "Content-Type": "text/html"},
            )
            return
        record(status, payload)
        _write(req, status, b"" if payload is None else _dump(payload), headers)

    def _authorized(self, header: str) -> bool:
        token = header[7:] if header.startswith("Bearer ") else ""
        return bool(token) and hmac.compare_digest(token, self.access_token)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        st = self.state
        # /crm/v3/properties/{objectType}[/{propertyName}]
        if parts[:3] == ["crm", "v3", "properties"] and len(parts) in (4, 5):
            kind = st.object_type(parts[3])
            if len(parts) == 4 and method == "GET":
                return 200, {
                    "results": [copy.deepcopy(d) for d in st.properties[kind].values() if not d["archived"]]
                }
            if len(parts) == 4 and method == "POST":
                return 201, st.create_property(kind, _obj(body))
            if len(parts) == 5 and method == "GET":
                return 200, st.get_property(kind, parts[4])
        # /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}
        if (
            parts[:3] == ["crm", "v4", "objects"]
            and len(parts) == 9
            and parts[5] == "associations"
            and parts[6] == "default"
            and method == "PUT"
        ):
            kind, ident, to_kind, to_id = (
                st.object_type(parts[3]),
                parts[4],
                st.object_type(parts[7]),
                parts[8],
            )
            started = iso_ms(self.now_ms())
            st.lookup(kind, ident)
            st.lookup(to_kind, to_id)
            type_id = DEFAULT_ASSOCIATION[(kind, to_kind)]
            st.associate(kind, ident, to_kind, to_id, type_id)
            return 200, {
                "status": "COMPLETE",
                "results": [
                    {
                        "from": {"id": ident},
                        "to": {"id": to_id},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": type_id,
                        },
                    }
                ],
                "startedAt": started,
                "completedAt": iso_ms(self.now_ms()),
            }
        # /crm/v4/associations/{from}/{to}/batch/read
        if parts[:3] == ["crm", "v4", "associations"] and parts[5:] == ["batch", "read"] and method == "POST":
            return self._read_associations(st.object_type(parts[3]), st.object_type(parts[4]), _obj(body))
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
            kind = st.object_type(parts[3])
            props = _csv(query.get("properties"))
            assocs = _csv(query.get("associations"))
            archived = (query.get("archived") or ["false"])[0] == "true"
            if len(parts) == 4 and method == "POST":
                obj = st.create(kind, _obj(body), source="INTEGRATION")
                return 201, st.render(obj, all_set=True)
            if len(parts) == 4 and method == "GET":
                try:
                    limit = int((query.get("limit") or ["10"])[0])
                except ValueError as exc:
                    raise validation_error("limit must be an integer") from exc
                page, after = st.list_page(
                    kind, limit=limit, after=(query.get("after") or [None])[0], archived=archived
                )
                results = []
                for o in page:
                    item = st.render(o, props)
                    links = st.associations_of(o, assocs)
                    if links:
                        item["associations"] = links
                    results.append(item)
                out: Obj = {"results": results}
                if after is not None:
                    link = f"https://api.hubapi.com/crm/v3/objects/{parts[3]}?after={after}"
                    out["paging"] = {"next": {"after": after, "link": link}}
                return 200, out
            if len(parts) == 5 and parts[4] == "search" and method == "POST":
                request = _obj(body)
                page, total, next_offset = st.search(kind, request)
                wanted = [str(p) for p in request.get("properties") or []]
                out = {"total": total, "results": [st.render(o, wanted or None) for o in page]}
                if next_offset is not None:
                    out["paging"] = {"next": {"after": str(next_offset)}}
                return 200, out
            if len(parts) == 5 and method == "GET":
                obj = st.lookup(
                    kind, parts[4], id_property=(query.get("idProperty") or [None])[0], archived=archived
                )
                item = st.render(obj, props)
                links = st.associations_of(obj, assocs)
                if links:
                    item["associations"] = links
                return 200, item
            if len(parts) == 5 and method == "PATCH":
                obj = st.update(
                    kind,
                    parts[4],
                    _obj(body),
                    source="INTEGRATION",
                    id_property=(query.get("idProperty") or [None])[0],
                )
                return 200, st.render(obj, all_set=True)
            if len(parts) == 5 and method == "DELETE":
                obj = st.lookup(kind, parts[4])
                st.archive(obj, source="INTEGRATION")
                self._emit()
                return 204, None
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to route {method} {path}")

    def _read_associations(self, kind: str, to_kind: str, body: Obj) -> tuple[int, Obj]:
        """v4 batch read: each input's associated objects of ``to_kind``, with their types; inputs with none
        (or unknown ids) become errors and the answer a 207."""
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > BATCH_READ_MAX_INPUTS:
            raise validation_error(f"inputs must be a list of at most {BATCH_READ_MAX_INPUTS} ids")
        started = iso_ms(self.now_ms())
        results, missing = [], []
        for item in inputs:
            ident = str((item or {}).get("id", ""))
            obj = self.state.objects[kind].get(ident)
            links = (
                []
                if obj is None or obj.archived
                else [
                    (to_id, types) for (k, to_id), types in sorted(obj.associations.items()) if k == to_kind
                ]
            )
            if not links:
                missing.append(ident)
                continue
            results.append(
                {
                    "from": {"id": ident},
                    "to": [
                        {
                            "toObjectId": int(to_id),
                            "associationTypes": [
                                {
                                    "category": "HUBSPOT_DEFINED",
                                    "typeId": t,
                                    "label": "Primary" if t in (5, 6) else None,
                                }
                                for t in sorted(types)
                            ],
                        }
                        for to_id, types in links
                    ],
                }
            )
        out: Obj = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self.now_ms()),
        }
        if not missing:
            return 200, out
        noun = {"companies": "company", "deals": "deal"}
        out["numErrors"] = len(missing)
        out["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "message": f"No {noun[to_kind]} is associated with {noun[kind]} {ident}.",
                "context": {"fromObjectId": [ident]},
            }
            for ident in missing
        ]
        return 207, out


def _obj(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise validation_error(
            "Invalid input JSON on line 1, column 1: Cannot build the request from an empty or non-object body"
        )
    return body


def _csv(values: list[str] | None) -> list[str]:
    """``properties=a,b`` and ``properties=a&properties=b`` both work, as on HubSpot."""
    return [p for v in values or [] for p in v.split(",") if p]


def _rate_limited(policy: str, message: str, *, retry_after: int) -> HubSpotError:
    return HubSpotError(
        429,
        "RATE_LIMITS",
        message,
        extra={"errorType": "RATE_LIMIT", "policyName": policy},
        headers={"Retry-After": str(retry_after)},
    )


def _dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _write(req: FakeRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    write(req, status, body, headers, content_type="application/json;charset=utf-8")


def sign_v3(
    body: bytes, secret: str, *, url: str, method: str = "POST", timestamp_ms: int | None = None
) -> dict[str, str]:
    """HubSpot's webhook headers: ``X-HubSpot-Signature-v3`` is base64(HMAC-SHA256(client secret,
    method + uri + body + timestamp)), ``X-HubSpot-Request-Timestamp`` the Unix time in milliseconds; the v1
    signature (hex SHA-256 of secret + body) is sent alongside, as HubSpot does."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    for encoded, char in _URI_DECODED.items():  # HubSpot signs the URI with these characters decoded
        url = url.replace(encoded, char).replace(encoded.lower(), char)
    source = method.encode() + url.encode() + body + ts.encode()
    v3 = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    v1 = hashlib.sha256(secret.encode() + body).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nonsecure)",
        "X-HubSpot-Signature-v3": v3,
        "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature": v1,
        "X-HubSpot-Signature-Version": "v1",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeHubSpot]:
    """``with running_fake() as fake:`` — started, and stopped afterwards."""
    fake = FakeHubSpot(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

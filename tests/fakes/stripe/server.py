"""``FakeStripe``: a local HTTP server that answers the official ``stripe`` SDK as Stripe's API does.

Start it, point the SDK at ``fake.url`` (``StripeClient(key, base_addresses={"api": fake.url})`` or
``stripe.api_base = fake.url``), and drive test-mode behaviour from Python: settle ACH debits, open disputes,
inject faults, register webhook endpoints and get signed webhook deliveries.
"""

# ruff: noqa: E501  (Stripe's own messages are quoted verbatim)

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import stripe

from .._http import FakeRequestHandler, LocalServer, write
from .errors import ApiError, invalid_request
from .forms import FormError, decode_form
from .routes import Route, check_params, match
from .state import Obj, RequestInfo, State, WebhookEndpoint, new_id

__all__ = ["Delivery", "FakeStripe", "FaultKind", "RecordedRequest"]

FaultKind = Literal["timeout", "timeout_before", "disconnect", "500", "429", "malformed"]
WebhookHandler = Callable[[bytes, dict[str, str]], int]

_ALNUM = string.ascii_letters + string.digits
#: https://docs.stripe.com/api/idempotent_requests: keys up to 255 characters, pruned after 24 hours.
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_TTL = 24 * 3600


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (faults included)."""

    method: str
    path: str
    params: Obj
    idempotency_key: str | None
    status: int | None  # None: no response was sent (timeout / disconnect faults)
    replayed: bool
    request_id: str


@dataclass
class _Fault:
    kind: FaultKind
    method: str | None
    path: str | None
    retry_after: int


@dataclass(frozen=True)
class Delivery:
    endpoint_id: str
    event_id: str
    status: int | None  # HTTP status the endpoint answered; None when it could not be reached


@dataclass
class _Stored:
    fingerprint: str
    status: int
    body: bytes
    request_id: str
    created: int


class FakeStripe:
    """A faithful local Stripe (test mode). Thread-safe; one lock serialises the API.

    ``api_key``: the secret key the fake accepts (any ``sk_test_``/``rk_test_`` key when None).
    ``hang_seconds``: how long the ``timeout`` faults hold a response (set it above the client's timeout).
    ``auto_deliver``: POST webhook events to URL endpoints right after each request (in a background thread);
    otherwise call :meth:`deliver_webhooks`.
    """

    #: The methods Stripe's API answers; another gets 501.
    methods = ("GET", "POST", "DELETE")

    def __init__(
        self,
        *,
        api_key: str | None = None,
        hang_seconds: float = 3.0,
        auto_deliver: bool = False,
        api_version: str | None = None,
    ):
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.auto_deliver = auto_deliver
        self.state = State(api_version=api_version or stripe.api_version)
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._faults: list[_Fault] = []
        self._idempotency: dict[tuple[str, str], _Stored] = {}
        self._http = LocalServer("fake-stripe")
        self._delivery_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> FakeStripe:
        """Listen on 127.0.0.1 on a free port, serving from a daemon thread."""
        self._http.start(self)
        return self

    def stop(self) -> None:
        self._http.stop()  # lets held (timeout-fault) responses finish

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base address for the SDK, e.g. ``http://127.0.0.1:54321``."""
        return self._http.url

    @property
    def secret_key(self) -> str:
        """A key the fake accepts."""
        return self.api_key or "sk_test_revflowfake0000000000"

    def client(self, *, timeout: float = 10.0, max_network_retries: int = 0) -> stripe.StripeClient:
        """An SDK client pointed at the fake."""
        return stripe.StripeClient(
            self.secret_key,
            base_addresses={"api": self.url},
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    # ------------------------------------------------------------------------------ test-mode controls
    def fail_next(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``count`` matching requests fail (``path`` matches a prefix, e.g. ``/v1/payment_intents``).

        ``timeout``: the request is carried out, then the response is held ``hang_seconds`` (the client times
        out: outcome unknown). ``timeout_before``: held, then dropped without being carried out.
        ``disconnect``: carried out, then the connection closes without a response. ``500``: an ``api_error``
        before anything is done. ``429``: ``rate_limit`` with ``Retry-After``. ``malformed``: carried out,
        answered 200 with a body that is not JSON.
        """
        with self.lock:
            for _ in range(count):
                self._faults.append(_Fault(kind, method.upper() if method else None, path, retry_after))

    def settle_ach(
        self,
        payment_intent: str,
        *,
        succeed: bool = True,
        failure_code: str = "insufficient_funds",
        failure_message: str = "The customer's account has insufficient funds to cover this payment.",
    ) -> Obj:
        """Settle a ``processing`` us_bank_account PaymentIntent, as the ACH network does days later:
        ``payment_intent.succeeded`` or ``payment_intent.payment_failed`` (with ``charge.succeeded`` /
        ``charge.failed``). Returns the PaymentIntent."""
        with self.lock:
            self.state.request = None
            pi = self.state.settle(
                payment_intent, succeed=succeed, failure_code=failure_code, failure_message=failure_message
            )
            out = copy.deepcopy(pi)
        self._after_change()
        return out

    def settle_refund(self, refund_id: str, *, succeed: bool = True, failure_reason: str = "unknown") -> Obj:
        """Settle a ``pending`` (bank) refund, as the bank does days later: ``charge.refund.updated``."""
        with self.lock:
            self.state.request = None
            refund = copy.deepcopy(
                self.state.settle_refund(refund_id, succeed=succeed, failure_reason=failure_reason)
            )
        self._after_change()
        return refund

    def create_dispute(self, ref: str, *, reason: str = "fraudulent", amount: int | None = None) -> Obj:
        """Open a dispute on a succeeded charge (``ch_...`` or the PaymentIntent ``pi_...``): emits
        ``charge.dispute.created``. Returns the Dispute."""
        with self.lock:
            self.state.request = None
            dispute = copy.deepcopy(self.state.create_dispute(ref, reason=reason, amount=amount))
        self._after_change()
        return dispute

    def update_card(self, payment_method: str, *, exp_month: int, exp_year: int) -> Obj:
        """What the card account updater does: new expiry on a saved card, ``payment_method.updated``."""
        with self.lock:
            self.state.request = None
            pm = self.state.update_payment_method(
                payment_method, {"card": {"exp_month": exp_month, "exp_year": exp_year}}
            )
            out = copy.deepcopy(pm)
        self._after_change()
        return out

    def advance_time(self, seconds: int) -> None:
        """Move the fake's clock (``created`` of new objects) forward."""
        with self.lock:
            self.state.time_offset += seconds

    def objects(self, kind: str) -> list[Obj]:
        """Copies of every stored object of ``kind`` (``customer``, ``payment_intent``, ``charge``, ...), oldest
        first."""
        with self.lock:
            return [copy.deepcopy(o) for o in self.state.objects[kind].values()]

    def get(self, ident: str) -> Obj | None:
        with self.lock:
            obj = self.state.lookup(ident)
            return copy.deepcopy(obj) if obj is not None else None

    def events(self, type: str | None = None) -> list[Obj]:
        """Events in creation order, optionally of one type."""
        return [e for e in self.objects("event") if type is None or e["type"] == type]

    # ------------------------------------------------------------------------------------------- webhooks
    def add_webhook_endpoint(
        self,
        url: str | None = None,
        *,
        secret: str | None = None,
        enabled_events: Iterable[str] = ("*",),
    ) -> WebhookEndpoint:
        """Register an endpoint; events emitted from now on are queued for it. ``url`` None: nothing is POSTed,
        use :meth:`pending_webhooks` / :meth:`sign` (or :meth:`deliver_webhooks` with a handler)."""
        endpoint = WebhookEndpoint(
            id=new_id("we_"),
            url=url,
            secret=secret or "whsec_" + "".join(secrets.choice(_ALNUM) for _ in range(32)),
            enabled_events=tuple(enabled_events),
        )
        with self.lock:
            self.state.endpoints.append(endpoint)
        return endpoint

    def sign(
        self, event: Obj | str, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers Stripe would POST for ``event`` (an event dict or ``evt_`` id), signed
        with ``secret`` (default: the first endpoint's) at ``timestamp`` (default: now). Nothing is sent."""
        if isinstance(event, str):
            found = self.get(event)
            if found is None:
                raise KeyError(event)
            event = found
        if secret is None:
            if not self.state.endpoints:
                raise RuntimeError("no webhook endpoint registered; pass secret=")
            secret = self.state.endpoints[0].secret
        payload = json.dumps(event, indent=2).encode()
        return payload, sign_headers(payload, secret, timestamp)

    def pending_webhooks(self, endpoint: WebhookEndpoint | None = None) -> list[Obj]:
        """Events queued (not yet delivered) for ``endpoint`` (default: the first), oldest first."""
        with self.lock:
            ep = endpoint or self.state.endpoints[0]
            return [copy.deepcopy(self.state.objects["event"][i]) for i in ep.pending]

    def deliver_webhooks(self, handler: WebhookHandler | None = None) -> list[Delivery]:
        """Deliver every queued event, oldest first, to each endpoint: POSTed to its URL, or passed to
        ``handler(body, headers) -> status``. A non-2xx answer or an unreachable endpoint leaves the event
        queued (Stripe retries it later). Returns the attempts."""
        attempts: list[Delivery] = []
        with self._delivery_lock:
            with self.lock:
                work = [(ep, list(ep.pending)) for ep in self.state.endpoints]
            for ep, ids in work:
                if ep.url is None and handler is None:
                    continue
                for event_id in ids:
                    body, headers = self.sign(event_id, secret=ep.secret)
                    status = (
                        handler(body, headers) if handler is not None else _post(str(ep.url), body, headers)
                    )
                    attempt = Delivery(ep.id, event_id, status)
                    attempts.append(attempt)
                    with self.lock:
                        ep.deliveries.append((event_id, status))
                        self.deliveries.append(attempt)
                        if status is not None and 200 <= status < 300 and event_id in ep.pending:
                            ep.pending.remove(event_id)
        return attempts

    def _after_change(self) -> None:
        if self.auto_deliver and any(ep.url and ep.pending for ep in self.state.endpoints):
            threading.Thread(target=self.deliver_webhooks, name="fake-stripe-webhooks", daemon=True).start()

    # ------------------------------------------------------------------------------------------- serving
    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if (fault.method is None or fault.method == method) and (
                    fault.path is None or path.startswith(fault.path)
                ):
                    return self._faults.pop(i)
        return None

    def _serve(self, req: FakeRequestHandler, method: str) -> None:
        split = urlsplit(req.path)
        path = split.path
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length).decode() if length else ""
        request_id = "req_" + "".join(secrets.choice(_ALNUM) for _ in range(14))
        idem_key = req.headers.get("Idempotency-Key")
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": req.headers.get("Stripe-Version") or self.state.api_version,
        }
        if idem_key and method == "POST":
            headers["Idempotency-Key"] = idem_key
        fault = self._take_fault(method, path)
        try:
            params: Obj = decode_form(body if method == "POST" else split.query)
        except FormError:
            params = {}

        def record(status: int | None, replayed: bool = False) -> None:
            with self.lock:
                self.requests.append(
                    RecordedRequest(method, path, params, idem_key, status, replayed, request_id)
                )

        if fault is not None and fault.kind in ("500", "429", "timeout_before"):
            if fault.kind == "timeout_before":
                self._http.release.wait(self.hang_seconds)
                record(None)
                req.close_connection = True
                return
            if fault.kind == "500":
                err = ApiError(500, "api_error", "An unknown error occurred")
            else:
                err = ApiError(
                    429,
                    "invalid_request_error",
                    "Request rate limit exceeded. Learn more about rate limits here"
                    " https://stripe.com/docs/rate-limits.",
                    code="rate_limit",
                )
                headers["Retry-After"] = str(fault.retry_after)
            record(err.status)
            _write(req, err.status, _dump(err.body(request_id)), headers)
            return

        replayed = False
        try:
            status, payload, replayed, original = self._execute(
                method, path, split.query, body, req, idem_key, request_id
            )
            params = original
        except ApiError as err:
            status, payload = err.status, _dump(err.body(request_id))
            headers.update(err.headers)
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        if fault is not None and fault.kind == "timeout":
            record(None)
            self._http.release.wait(self.hang_seconds)
            req.close_connection = True
            return
        if fault is not None and fault.kind == "disconnect":
            record(None)
            req.close_connection = True
            return
        if fault is not None and fault.kind == "malformed":
            record(200)
            _write(
                req,
                200,
                b"<html><body>502 Bad Gateway</body></html>",
                {**headers, "Content-Type": "text/html"},
            )
            self._after_change()
            return
        record(status, replayed)
        _write(req, status, payload, headers)
        self._after_change()

    def _execute(
        self,
        method: str,
        path: str,
        query: str,
        body: str,
        req: FakeRequestHandler,
        idem_key: str | None,
        request_id: str,
    ) -> tuple[int, bytes, bool, Obj]:
        auth = req.headers.get("Authorization") or ""
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not self._key_ok(key):
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if key else ""
            message = (
                f"Invalid API Key provided: {masked}"
                if key
                else "You did not provide an API key. You need to provide your API key in the Authorization header,"
                " using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )
            raise ApiError(401, "invalid_request_error", message)
        found = match(method, path)
        if found is None:
            raise ApiError(
                404,
                "invalid_request_error",
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at"
                " https://support.stripe.com/.",
            )
        route, args = found
        try:
            params = decode_form(body if method == "POST" else query)
        except FormError as exc:
            raise invalid_request(str(exc), param=exc.param) from exc
        expand = params.pop("expand", [])
        if isinstance(expand, str):
            expand = [expand]
        check_params(route, params)
        fingerprint = json.dumps([method, path, params, expand], sort_keys=True)
        with self.lock:
            return self._execute_locked(
                method, route, args, params, expand, key, idem_key, request_id, fingerprint
            )

    def _execute_locked(
        self,
        method: str,
        route: Route,
        args: list[str],
        params: Obj,
        expand: list[str],
        key: str,
        idem_key: str | None,
        request_id: str,
        fingerprint: str,
    ) -> tuple[int, bytes, bool, Obj]:
        if method == "POST" and idem_key:
            if len(idem_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
                raise invalid_request(
                    f"Invalid Idempotency-Key: must be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters long",
                )
            stored = self._idempotency.get((key, idem_key))
            if stored is not None and self.state.now() - stored.created >= IDEMPOTENCY_KEY_TTL:
                stored = None  # Stripe prunes keys after 24 hours: the key is new again
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise ApiError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first"
                        f" used with. Try using a key other than '{idem_key}' if you meant to execute a different"
                        " request.",
                    )
                return stored.status, stored.body, True, params
        self.state.request = RequestInfo(request_id, idem_key if method == "POST" else None)
        try:
            items = getattr(route.handler, "items", None)
            if items is not None:
                assert route.list_url is not None
                result = self.state.list_envelope(
                    items(self.state, args, params), route.list_url(args), params, expand
                )
            else:
                result = self.state.render(route.handler(self.state, args, params), expand)
            status, payload = 200, _dump(result)
        except ApiError as err:
            status, payload = err.status, _dump(err.body(request_id))
            if status != 402:  # validation failures are not stored: the same key may be retried
                raise
        finally:
            self.state.request = None
        if method == "POST" and idem_key:
            self._idempotency[(key, idem_key)] = _Stored(
                fingerprint, status, payload, request_id, self.state.now()
            )
        return status, payload, False, params

    def _key_ok(self, key: str) -> bool:
        if self.api_key is not None:
            return hmac.compare_digest(key, self.api_key)
        return key.startswith(("sk_test_", "rk_test_")) and len(key) > 8


def _dump(obj: Obj) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _write(req: FakeRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    write(req, status, body, headers, content_type="application/json")


def sign_headers(payload: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed by the endpoint secret>``."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": f"t={t},v1={signature}",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeStripe]:
    """``with running_fake() as fake:`` — started, and stopped afterwards."""
    fake = FakeStripe(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

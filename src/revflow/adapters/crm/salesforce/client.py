"""Thin calls to Salesforce through ``simple-salesforce``.

One ``requests.Session`` per connector: a timeout on every request, TLS verified always (against the system
store or ``ca_file``), the ``Sforce-Limit-Info`` header of every answer remembered. Login is lazy: a session
id given up front, or a SOAP username-password login (the SDK's ``SalesforceLogin``) on first use and again,
once, when Salesforce says the session expired. SDK and transport errors become the port's at this boundary.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from revflow.adapters.crm.salesforce.consts import (
    API_VERSION,
    CONCURRENT_LIMIT_RETRY_AFTER,
    DAILY_LIMIT_RETRY_AFTER,
    DAILY_LIMIT_WINDOW_SECONDS,
)
from revflow.services.ports import ConnectorError, RateLimited, RateLimitStatus

__all__ = ["SalesforceApi", "json_body", "translate"]

T = TypeVar("T")
Record = dict[str, Any]


class _Http(requests.Session):
    """A session whose timeout and CA bundle apply to every request (``requests`` itself has no session
    timeout, and lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``)."""

    def __init__(self, *, timeout: float, verify: str | bool):
        super().__init__()
        self.timeout = timeout
        self.verify = verify

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def _errors(exc: SalesforceError) -> list[dict[str, Any]]:
    content = exc.content
    if isinstance(content, list):
        return [e for e in content if isinstance(e, dict)]
    if isinstance(content, dict):
        return [content]
    return []


def translate(exc: Exception, action: str) -> ConnectorError:
    """An SDK or transport error as the port's: REQUEST_LIMIT_EXCEEDED → RateLimited; 5xx, timeouts, broken
    connections and unreadable answers → retryable; anything Salesforce refused on its merits (bad field,
    duplicate, not found, access, expired session without credentials) → not retryable, with Salesforce's
    ``errorCode`` as ``code``."""
    if isinstance(exc, SalesforceError):
        errors = _errors(exc)
        code = str(errors[0].get("errorCode")) if errors else None
        message = "; ".join(str(e.get("message")) for e in errors) or str(exc.content)
        text = f"Salesforce {action}: {code or exc.status}: {message}"
        if code == "REQUEST_LIMIT_EXCEEDED":
            retry_after = (
                CONCURRENT_LIMIT_RETRY_AFTER if "ConcurrentPerOrg" in message else DAILY_LIMIT_RETRY_AFTER
            )
            return RateLimited(text, retry_after=retry_after, status=exc.status)
        if isinstance(exc, SalesforceAuthenticationFailed):
            return ConnectorError(
                f"Salesforce login: {exc.code}: {exc.auth_message}",
                code=str(exc.code) if exc.code is not None else "INVALID_LOGIN",
                status=401,
                retryable=False,
            )
        if isinstance(exc, SalesforceGeneralError) and exc.status == 429:
            return RateLimited(text, retry_after=CONCURRENT_LIMIT_RETRY_AFTER, status=429)
        retryable = isinstance(exc, SalesforceGeneralError) and exc.status >= 500
        if retryable:
            code = code or "SERVER_ERROR"
        if isinstance(exc, SalesforceResourceNotFound):
            code = code or "NOT_FOUND"
        elif isinstance(exc, SalesforceMoreThanOneRecord):
            code = "MULTIPLE_CHOICES"
        elif isinstance(
            exc, (SalesforceMalformedRequest, SalesforceRefusedRequest, SalesforceExpiredSession)
        ):
            code = code or type(exc).__name__
        return ConnectorError(text, code=code, status=exc.status, retryable=retryable)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectorError(f"Salesforce {action}: TLS failed: {exc}", code="tls_error", retryable=False)
    if isinstance(exc, requests.Timeout):
        return ConnectorError(f"Salesforce {action}: timed out", code="timeout", retryable=True)
    if isinstance(exc, requests.ConnectionError):
        return ConnectorError(f"Salesforce {action}: {exc}", code="connection_error", retryable=True)
    if isinstance(exc, ValueError):  # the answer was not the JSON Salesforce sends (proxy page, cut body)
        return ConnectorError(
            f"Salesforce {action}: unreadable answer: {exc}", code="malformed_response", retryable=True
        )
    return ConnectorError(f"Salesforce {action}: {exc}", code="error", retryable=True)


class SalesforceApi:
    """The few Salesforce calls Revflow makes, with login, one re-login on an expired session, and error
    translation."""

    def __init__(
        self,
        *,
        instance_url: str | None,
        session_id: str | None,
        username: str | None,
        password: str | None,
        security_token: str | None,
        domain: str,
        login_url: str | None,
        api_version: str,
        verify: str | bool,
        timeout: float,
    ):
        if not (session_id and instance_url) and not (username and password and security_token is not None):
            raise ValueError(
                "Salesforce needs instance_url + session_id, or username + password + security_token"
            )
        self._instance_url = instance_url
        self._session_id = session_id
        self._username = username
        self._password = password
        self._token = security_token
        self._domain = domain
        self._login_url = login_url.rstrip("/") if login_url else None
        self.api_version = api_version or API_VERSION
        self.http = _Http(timeout=timeout, verify=verify)
        self.http.hooks["response"].append(self._remember_usage)
        self.usage = RateLimitStatus()
        self.server_time: datetime | None = None  # the ``Date`` of the last answer
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password and self._token is not None)

    def _remember_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        date_header = response.headers.get("Date")
        if date_header:
            with suppress(TypeError, ValueError):
                self.server_time = parsedate_to_datetime(date_header)
        header = response.headers.get("Sforce-Limit-Info")
        usage = Salesforce.parse_api_usage(header).get("api-usage") if header else None
        if usage is not None:
            self.usage = RateLimitStatus(
                limit=usage.total,
                remaining=max(0, usage.total - usage.used),
                window_seconds=DAILY_LIMIT_WINDOW_SECONDS,
            )

    def _connect(self, *, relogin: bool) -> Salesforce:
        with self._lock:
            if self._sf is not None and not relogin:
                return self._sf
            if (relogin or self._session_id is None) and self.can_login:
                session_id, instance = SalesforceLogin(
                    username=self._username,
                    password=self._password,
                    security_token=self._token,
                    sf_version=self.api_version,
                    session=self.http,
                    domain=self._domain,
                    scratch_url=self._login_url,  # the SDK's way to log in at a URL of one's choosing
                )
                self._session_id, self._instance_url = session_id, f"https://{instance}"
            self._sf = Salesforce(
                instance_url=self._instance_url,
                session_id=self._session_id,
                session=self.http,
                version=self.api_version,
                parse_float=Decimal,
            )
            return self._sf

    def call(self, action: str, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn`` with a logged-in SDK client; on INVALID_SESSION_ID log in again (once) and retry."""
        try:
            try:
                return fn(self._connect(relogin=False))
            except SalesforceExpiredSession:
                if not self.can_login:
                    raise
                return fn(self._connect(relogin=True))
        except ConnectorError:
            raise
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise translate(exc, action) from exc

    # ------------------------------------------------------------------------------------------ calls
    def upsert(self, sobject: str, field: str, value: str, fields: Record) -> str | None:
        """PATCH ``/sobjects/{sobject}/{field}/{value}``: the record id (None when Salesforce answered 204,
        as API versions before 46.0 do for an update)."""
        path = f"sobjects/{sobject}/{field}/{_quote(value)}"
        result = self.call(
            f"upsert {sobject}", lambda sf: sf.restful(path, method="PATCH", data=json_body(fields))
        )
        if isinstance(result, dict) and result.get("id"):
            return str(result["id"])
        return None

    def update(self, sobject: str, record_id: str, fields: Record) -> None:
        path = f"sobjects/{sobject}/{_quote(record_id)}"
        self.call(f"update {sobject}", lambda sf: sf.restful(path, method="PATCH", data=json_body(fields)))

    def get(self, sobject: str, record_id: str, fields: tuple[str, ...]) -> Record:
        path = f"sobjects/{sobject}/{_quote(record_id)}"
        result = self.call(f"get {sobject}", lambda sf: sf.restful(path, params={"fields": ",".join(fields)}))
        if not isinstance(result, dict):
            raise ConnectorError(
                f"Salesforce get {sobject}: empty answer", code="malformed_response", retryable=True
            )
        return result

    def get_by_external_id(self, sobject: str, field: str, value: str) -> Record:
        path = f"sobjects/{sobject}/{field}/{_quote(value)}"
        result = self.call(f"get {sobject} by {field}", lambda sf: sf.restful(path))
        if not isinstance(result, dict):
            raise ConnectorError(
                f"Salesforce get {sobject}: empty answer", code="malformed_response", retryable=True
            )
        return result

    def query(self, soql: str) -> tuple[list[Record], datetime]:
        """Every record of the query, following ``nextRecordsUrl`` (all pages are read before returning,
        so an error mid-way raises here rather than after a partial result was used), and the server's
        time when it answered the first page (its ``Date`` header; the local clock when absent)."""

        def run(sf: Salesforce) -> tuple[list[Record], datetime]:
            self.server_time = None
            page = sf.query(soql)
            answered_at = self.server_time or datetime.now(UTC)
            records: list[Record] = list(page["records"])
            while not page["done"]:
                page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
                records.extend(page["records"])
            return records, answered_at

        return self.call("query", run)

    def limits(self) -> Record:
        result = self.call("limits", lambda sf: sf.restful("limits"))
        return result if isinstance(result, dict) else {}

    def __repr__(self) -> str:  # never print credentials or the session id
        return "SalesforceApi(...)"


def json_body(fields: Record) -> str:
    """A flat JSON object with every ``Decimal`` written as a JSON number, digit for digit (the SDK's
    ``json.dumps`` cannot write a Decimal, and a float would round)."""
    parts = [
        f"{json.dumps(name)}:{format(value, 'f') if isinstance(value, Decimal) else json.dumps(value)}"
        for name, value in fields.items()
    ]
    return "{" + ",".join(parts) + "}"


def _quote(value: str) -> str:
    return quote(value, safe="")


def _empty(action: str) -> ConnectorError:
    return ConnectorError(f"Salesforce {action}: empty answer", code="malformed_response", retryable=True)

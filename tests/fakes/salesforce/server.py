"""``FakeSalesforce``: a local HTTPS server that answers ``simple-salesforce`` as a Salesforce org's REST API
(and the SOAP ``login`` call) does.

TLS uses a certificate authority made for the run (``trustme``): clients pass ``verify=fake.ca_file``; nothing
disables verification. Drive the org from Python: edit records as a Salesforce user would, move its clock,
inject faults, expire sessions, read what was stored and which requests arrived.
"""

# ruff: noqa: E501  (Salesforce's own messages are quoted verbatim)

from __future__ import annotations

import copy
import json
import re
import secrets
import ssl
import string
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import formatdate
from http.server import ThreadingHTTPServer
from pathlib import Path
from socket import socket
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import simple_salesforce
import trustme

from .._http import FakeRequestHandler, LocalServer, write
from .errors import (
    SalesforceApiError,
    invalid_session,
    malformed_query,
    not_found,
    request_limit_exceeded,
)
from .soql import parse
from .state import ORG_ID, USER_ID, OrgState

__all__ = ["FakeSalesforce", "FaultKind", "RecordedRequest", "running_fake"]

Obj = dict[str, Any]
FaultKind = Literal[
    "REQUEST_LIMIT_EXCEEDED", "500", "503", "timeout", "timeout_before", "malformed", "expired_session"
]

_ALNUM = string.ascii_letters + string.digits
_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)(?P<rest>/.*)?$")
_SOAP_LOGIN = re.compile(r"^/services/Soap/u/(?P<version>\d+\.\d)/?$")
_PARTNER_NS = "urn:partner.soap.sforce.com"
#: API versions the fake answers (Salesforce answers 404 for versions it does not know).
MIN_VERSION, MAX_VERSION = Decimal("20.0"), Decimal("66.0")
#: Query batches: Salesforce's default and the bounds of ``Sforce-Query-Options: batchSize=``.
DEFAULT_BATCH_SIZE, MIN_BATCH_SIZE, MAX_BATCH_SIZE = 2000, 200, 2000


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (faults included)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, the raw text when it is not JSON, or None
    status: int | None  # None: no response was sent (timeout faults)
    session_id: str | None


@dataclass
class _Fault:
    kind: FaultKind
    method: str | None
    path: str | None


@dataclass
class _Cursor:
    sobject: str
    version: str
    rows: list[Obj]
    batch: int


class FakeSalesforce:
    """A faithful local Salesforce org (Account, Opportunity, Revflow's custom fields). Thread-safe.

    ``username``/``password``/``security_token``: the credentials the SOAP login accepts.
    ``api_limit``: the org's DailyApiRequests maximum (``api_used`` already spent).
    ``hang_seconds``: how long ``timeout`` faults hold a response (set it above the client's timeout).
    ``batch_size``: records per query page when the client sends no ``Sforce-Query-Options`` (Salesforce: 2000;
    tests lower it to exercise ``nextRecordsUrl`` paging without thousands of records).
    ``multi_currency``: the org has multiple currencies enabled (records carry ``CurrencyIsoCode``).
    """

    #: The methods Salesforce's API answers; another gets 501.
    methods = ("GET", "POST", "PATCH", "DELETE")

    def __init__(
        self,
        *,
        username: str = "integration@revflow.example",
        password: str = "correct-horse",
        security_token: str = "TOKENabc123",
        api_limit: int = 15000,
        api_used: int = 0,
        hang_seconds: float = 2.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        multi_currency: bool = True,
        api_version: str = simple_salesforce.api.DEFAULT_API_VERSION,
    ):
        self.username = username
        self.password = password
        self.security_token = security_token
        self.api_limit = api_limit
        self.api_used = api_used
        self.hang_seconds = hang_seconds
        self.batch_size = batch_size
        self.api_version = api_version
        self.state = OrgState(multi_currency=multi_currency)
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.logins = 0
        self._sessions: set[str] = set()
        self._session_id = self._new_session()
        self._faults: list[_Fault] = []
        self._cursors: dict[str, _Cursor] = {}
        self._http = LocalServer("fake-salesforce", scheme="https")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca_file: str | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSalesforce:
        """Make a CA and a certificate for 127.0.0.1/localhost, and serve HTTPS from a daemon thread."""
        ca = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-salesforce-")
        self._ca_file = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self._ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

        def use_tls(server: ThreadingHTTPServer) -> None:
            assert isinstance(server, _TLSServer)
            server.ssl_context = context

        self._http.start(self, handler=_Handler, server_class=_TLSServer, configure=use_tls)
        return self

    def stop(self) -> None:
        self._http.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """The instance URL (and login URL), e.g. ``https://127.0.0.1:54321``."""
        return self._http.url

    instance_url = url
    login_url = url

    @property
    def ca_file(self) -> str:
        """PEM file of the CA that signed the server's certificate: ``requests``' ``verify=``."""
        if self._ca_file is None:
            raise RuntimeError("FakeSalesforce is not started")
        return self._ca_file

    @property
    def session_id(self) -> str:
        """A session id (access token) the org accepts until :meth:`expire_sessions`."""
        return self._session_id

    def http_session(self) -> requests.Session:
        """A ``requests.Session`` that trusts the fake's CA (and only it)."""
        return _CaSession(self.ca_file)

    def sdk(self, *, session_id: str | None = None) -> simple_salesforce.Salesforce:
        """A ``simple_salesforce.Salesforce`` on the instance URL with a valid session id."""
        return simple_salesforce.Salesforce(
            instance_url=self.url,
            session_id=session_id or self.session_id,
            session=self.http_session(),
            version=self.api_version,
        )

    # ------------------------------------------------------------------------------------------ controls
    def fail_next(
        self, kind: FaultKind, *, count: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``count`` matching REST requests fail (``path``: a prefix of the path after
        ``/services/data/vXX.X``, e.g. ``/sobjects/Account`` or ``/query``).

        ``REQUEST_LIMIT_EXCEEDED``: 403, nothing done. ``500``/``503``: UNKNOWN_EXCEPTION / SERVER_UNAVAILABLE,
        nothing done. ``expired_session``: 401 INVALID_SESSION_ID, nothing done (the session id stays valid:
        a re-login or a second try succeeds). ``timeout``: carried out, then the response is held
        ``hang_seconds`` and the connection dropped. ``timeout_before``: held, then dropped, nothing done.
        ``malformed``: carried out, answered 200 with an HTML body."""
        with self.lock:
            for _ in range(count):
                self._faults.append(_Fault(kind, method.upper() if method else None, path))

    def expire_sessions(self) -> None:
        """Every session id issued so far stops working (401 INVALID_SESSION_ID); a new login is needed."""
        with self.lock:
            self._sessions.clear()
            self._session_id = self._new_session()

    def set_api_usage(self, *, used: int | None = None, limit: int | None = None) -> None:
        """Set DailyApiRequests: calls spent in the last 24 hours and the maximum. At the maximum every call
        is refused with 403 REQUEST_LIMIT_EXCEEDED."""
        with self.lock:
            if used is not None:
                self.api_used = used
            if limit is not None:
                self.api_limit = limit

    def freeze_clock(self, at: datetime | None = None) -> datetime:
        """Stop the org's clock (at ``at``, default now): records written meanwhile share one
        ``LastModifiedDate``. Returns the frozen instant."""
        with self.lock:
            self.state.frozen_at = (at or self.state.now()).astimezone(UTC).replace(microsecond=0)
            return self.state.frozen_at

    def advance_clock(self, seconds: float) -> datetime:
        """Move the org's clock forward (frozen or not). Returns the new now."""
        with self.lock:
            if self.state.frozen_at is not None:
                self.state.frozen_at += timedelta(seconds=seconds)
            else:
                self.state.offset += timedelta(seconds=seconds)
            return self.state.now()

    def now(self) -> datetime:
        with self.lock:
            return self.state.now()

    def create(self, sobject: str, **values: Any) -> Obj:
        """Create a record as a Salesforce user does in the UI (validated; no API call counted)."""
        with self.lock:
            rec = self.state.create(sobject, _plain(values), user=USER_ID)
            return self.state.render(sobject, rec, self.api_version)

    def edit(self, sobject: str, record_id: str, **values: Any) -> Obj:
        """Change a record as a Salesforce user does: ``LastModifiedDate`` and ``SystemModstamp`` move to the
        org's now. Raises SalesforceApiError for values Salesforce would refuse."""
        with self.lock:
            rec = self.state.update(sobject, record_id, _plain(values), user=USER_ID)
            return self.state.render(sobject, rec, self.api_version)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            self.state.delete(sobject, record_id)

    def records(self, sobject: str) -> list[Obj]:
        """Every stored record of ``sobject`` as the REST API renders it (numbers as ``Decimal``), oldest
        first."""
        with self.lock:
            return [
                self.state.render(sobject, r, self.api_version) for r in self.state.records[sobject].values()
            ]

    def record(self, sobject: str, record_id: str) -> Obj | None:
        with self.lock:
            rec = self.state.find(sobject, record_id)
            return self.state.render(sobject, rec, self.api_version) if rec is not None else None

    # ------------------------------------------------------------------------------------------- serving
    def _new_session(self) -> str:
        sid = ORG_ID[:15] + "!AQ" + "".join(secrets.choice(_ALNUM + "._") for _ in range(96))
        self._sessions.add(sid)
        return sid

    def _take_fault(self, method: str, rest: str) -> _Fault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if (fault.method is None or fault.method == method) and (
                    fault.path is None or rest.startswith(fault.path)
                ):
                    return self._faults.pop(i)
        return None

    def _serve(self, req: FakeRequestHandler, method: str) -> None:
        split = urlsplit(req.path)
        path = split.path
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        soap = _SOAP_LOGIN.match(path)
        if soap is not None and method == "POST":
            self._soap_login(req, raw, soap.group("version"))
            return
        auth = req.headers.get("Authorization") or ""
        session_id = auth[7:] if auth.startswith("Bearer ") else None
        try:
            body: Any = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")

        def record(status: int | None) -> None:
            with self.lock:
                self.requests.append(RecordedRequest(method, path, query, body, status, session_id))

        m = _DATA.match(path)
        rest = (m.group("rest") or "/").rstrip("/") or "/" if m else path
        fault = self._take_fault(method, rest) if m else None
        headers: dict[str, str] = {}
        if fault is not None and fault.kind in (
            "REQUEST_LIMIT_EXCEEDED",
            "500",
            "503",
            "expired_session",
            "timeout_before",
        ):
            if fault.kind == "timeout_before":
                record(None)
                self._http.release.wait(self.hang_seconds)
                req.close_connection = True
                return
            err = {
                "REQUEST_LIMIT_EXCEEDED": request_limit_exceeded(),
                "500": SalesforceApiError(
                    500,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you contact support: 1843563211-21410 (-1425447185)",
                ),
                "503": SalesforceApiError(
                    503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."
                ),
                "expired_session": invalid_session(),
            }[fault.kind]
            record(err.status)
            _write(req, err.status, _dump(err.body()), headers)
            return
        try:
            if m is None:
                raise not_found()
            status, payload, headers = self._execute(
                method, m.group("version"), rest, query, body, raw, session_id, req
            )
        except SalesforceApiError as err:
            status, payload = err.status, _dump(err.body())
            with self.lock:
                if err.status != 401:
                    headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
        if fault is not None and fault.kind == "timeout":
            record(None)
            self._http.release.wait(self.hang_seconds)
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
            return
        record(status)
        _write(req, status, payload, headers)

    def _execute(
        self,
        method: str,
        version: str,
        rest: str,
        query: dict[str, str],
        body: Any,
        raw: bytes,
        session_id: str | None,
        req: FakeRequestHandler,
    ) -> tuple[int, bytes, dict[str, str]]:
        if not MIN_VERSION <= Decimal(version) <= MAX_VERSION:
            raise not_found()
        with self.lock:
            if session_id is None or session_id not in self._sessions:
                raise invalid_session()
            if self.api_used >= self.api_limit:
                raise request_limit_exceeded()
            self.api_used += 1
            headers = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
            if raw and not isinstance(body, (dict, list)) and method in ("POST", "PATCH"):
                raise SalesforceApiError(
                    400,
                    "JSON_PARSER_ERROR",
                    "Unexpected character ('<' (code 60)): expected a valid value (number, String, array, object, 'true', 'false' or 'null') at [line:1, column:2]",
                )
            status, result = self._route(method, version, rest, query, body, req)
            return status, (_dump(result) if result is not None else b""), headers

    def _route(
        self, method: str, version: str, rest: str, query: dict[str, str], body: Any, req: FakeRequestHandler
    ) -> tuple[int, Any]:
        parts = [unquote(p) for p in rest.strip("/").split("/")] if rest != "/" else []
        if parts == ["limits"] and method == "GET":
            return 200, self._limits()
        if parts and parts[0] in ("query", "queryAll") and method == "GET":
            if len(parts) == 1:
                return 200, self._query(version, query.get("q"), req)
            if len(parts) == 2:
                return 200, self._query_more(parts[1])
        if parts and parts[0] == "sobjects" and len(parts) >= 2:
            sobject = parts[1]
            if sobject not in self.state.records:
                raise not_found()
            if len(parts) == 2 and method == "POST":
                rec = self.state.create(sobject, _check_body(body))
                return 201, {"id": rec["Id"], "success": True, "errors": []}
            if len(parts) == 3:
                return self._by_id(method, version, sobject, parts[2], query, body)
            if len(parts) == 4:
                return self._by_external_id(method, version, sobject, parts[2], parts[3], body)
        raise not_found()

    def _by_id(
        self, method: str, version: str, sobject: str, record_id: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if method == "GET":
            rec = self.state.get(sobject, record_id)
            names = None
            if query.get("fields"):
                names = [self.state.field(sobject, n.strip()).name for n in query["fields"].split(",")]
            return 200, self.state.render(sobject, rec, version, names)
        if method == "PATCH":
            self.state.update(sobject, record_id, _check_body(body))
            return 204, None
        if method == "DELETE":
            self.state.delete(sobject, record_id)
            return 204, None
        raise SalesforceApiError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE"
        )

    def _by_external_id(
        self, method: str, version: str, sobject: str, field_name: str, value: str, body: Any
    ) -> tuple[int, Any]:
        matches = self.state.by_external_id(sobject, field_name, value)
        if len(matches) > 1:
            return 300, [f"/services/data/v{version}/sobjects/{sobject}/{r['Id']}" for r in matches]
        if method == "GET":
            if not matches:
                raise not_found()
            return 200, self.state.render(sobject, matches[0], version)
        if method == "DELETE":
            if not matches:
                raise not_found()
            self.state.delete(sobject, matches[0]["Id"])
            return 204, None
        if method != "PATCH":
            raise SalesforceApiError(
                405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE"
            )
        values = _check_body(body)
        if "Id" in values or field_name in values:
            raise SalesforceApiError(
                400,
                "INVALID_FIELD",
                f"Unable to create/update fields: {field_name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
            )
        with_created = Decimal(version) >= Decimal("46.0")  # the ``created`` flag, and 200 on update
        if matches:
            rec = self.state.update(sobject, matches[0]["Id"], values)
            if not with_created:
                return 204, None
            return 200, {"id": rec["Id"], "success": True, "errors": [], "created": False}
        rec = self.state.create(sobject, {**values, field_name: value})
        result: Obj = {"id": rec["Id"], "success": True, "errors": []}
        if with_created:
            result["created"] = True
        return 201, result

    def _query(self, version: str, soql: str | None, req: FakeRequestHandler) -> Obj:
        if not soql:
            raise malformed_query("A query string has to be specified")
        q = parse(soql, self.state)
        rows = [self.state.render(q.sobject, r, version, q.fields) for r in q.run(self.state)]
        batch = self.batch_size
        options = req.headers.get("Sforce-Query-Options") or ""
        found = re.search(r"batchSize=(\d+)", options)
        if found:
            batch = max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(found.group(1))))
        cursor_id = "01g8d00000" + "".join(secrets.choice(_ALNUM) for _ in range(8))
        self._cursors[cursor_id] = _Cursor(q.sobject, version, rows, batch)
        return self._page(cursor_id, 0)

    def _query_more(self, locator: str) -> Obj:
        cursor_id, _, offset = locator.rpartition("-")
        if cursor_id not in self._cursors or not offset.isdigit():
            raise SalesforceApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor_id, int(offset))

    def _page(self, cursor_id: str, offset: int) -> Obj:
        cursor = self._cursors[cursor_id]
        end = offset + cursor.batch
        page: Obj = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not page["done"]:
            page["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{cursor_id}-{end}"
        else:
            del self._cursors[cursor_id]
        page["records"] = copy.deepcopy(cursor.rows[offset:end])
        return page

    def _limits(self) -> Obj:
        return {
            "DailyApiRequests": {"Max": self.api_limit, "Remaining": max(0, self.api_limit - self.api_used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
        }

    # ---------------------------------------------------------------------------------------- SOAP login
    def _soap_login(self, req: FakeRequestHandler, raw: bytes, version: str) -> None:
        username = password = None
        try:
            root = ET.fromstring(raw)
            for el in root.iter():
                if el.tag == f"{{{_PARTNER_NS}}}username":
                    username = el.text or ""
                elif el.tag == f"{{{_PARTNER_NS}}}password":
                    password = el.text or ""
        except ET.ParseError:
            pass
        with self.lock:
            ok = username == self.username and password == self.password + self.security_token
            if ok:
                self.logins += 1
                sid = self._new_session()
                self._session_id = sid
            self.requests.append(
                RecordedRequest("POST", urlsplit(req.path).path, {}, None, 200 if ok else 500, None)
            )
        headers = {"Content-Type": "text/xml;charset=UTF-8"}
        if not ok:
            _write(req, 500, _login_fault().encode(), headers)
            return
        server = f"{self.url}/services/Soap/u/{version}/{ORG_ID[:15]}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{self.url}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{server}</serverUrl><sessionId>{sid}</sessionId><userId>{USER_ID}</userId>"
            f"<userInfo><organizationId>{ORG_ID}</organizationId><userName>{self.username}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        _write(req, 200, body.encode(), headers)


def _login_fault() -> str:
    message = "Invalid username, password, security token; or user locked out."
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: {message}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _check_body(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise SalesforceApiError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sObject from START_ARRAY value [line:1, column:1]",
        )
    return body


def _plain(values: dict[str, Any]) -> Obj:
    """Python values (Decimal, date) as the JSON a Salesforce user's edit amounts to."""
    return {
        k: (str(v) if isinstance(v, Decimal) else v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in values.items()
    }


class _CaSession(requests.Session):
    """``requests`` lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; pass ours on every request."""

    def __init__(self, ca_file: str):
        super().__init__()
        self.verify = ca_file

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


_DECIMAL = re.compile(r'"\\u0000dec:([-0-9.e+]+)"')


def _dump(obj: Any) -> bytes:
    """JSON as Salesforce writes it: Currency, Number and Percent fields (stored as Decimal) come out as
    Salesforce's doubles do (``99.9`` for 99.90, ``1200.0`` for 1200)."""

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return f"\0dec:{float(o)!r}"
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    text = json.dumps(obj, default=default, indent=2)
    return _DECIMAL.sub(lambda m: m.group(1), text).encode()


class _TLSServer(ThreadingHTTPServer):
    """TLS handshakes happen in the request's thread, so a stalled client never blocks ``accept``."""

    ssl_context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        sock: socket = request
        try:
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with suppress(OSError):
                tls.close()


class _Handler(FakeRequestHandler):
    owner: FakeSalesforce

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header follows the org's clock (Salesforce sends one on every answer)."""
        return formatdate(self.owner.now().timestamp() if timestamp is None else timestamp, usegmt=True)


def _write(req: FakeRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    write(req, status, body, headers, content_type="application/json;charset=UTF-8")


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeSalesforce]:
    """``with running_fake() as fake:`` — started, and stopped afterwards."""
    fake = FakeSalesforce(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

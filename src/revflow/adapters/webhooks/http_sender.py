"""Sends webhooks with httpx, pinned to an address that was checked (SSRF and DNS-rebinding safe).

The host name is resolved once per attempt; every address it resolves to must be public (unless private
addresses are allowed by configuration), and the request connects to the checked address itself, with the
original ``Host`` header and TLS server name. A second lookup by the HTTP library, which a rebinding DNS
server could answer differently, never happens.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from revflow.domain.delivery import address_allowed
from revflow.services.ports import UrlNotAllowed, WebhookRequest, WebhookResponse

__all__ = ["HttpWebhookSender", "Resolver", "system_resolver"]

Resolver = Callable[[str, int], list[str]]
EXCERPT_BYTES = 1024


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the order the system gives them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HttpWebhookSender:
    def __init__(
        self,
        *,
        allow_private: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ):
        self.allow_private = allow_private
        self.resolver = resolver
        timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=5.0)
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def close(self) -> None:
        self._client.close()

    def check_url(self, url: str) -> None:
        self._address(url)

    def _address(self, url: str) -> str:
        """The checked address to connect to for ``url``; raises UrlNotAllowed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlNotAllowed("the URL must be http:// or https:// with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise UrlNotAllowed("the URL has an invalid port") from exc
        try:
            addresses = self.resolver(parts.hostname, port)
        except (OSError, UnicodeError) as exc:
            raise UrlNotAllowed(f"the host '{parts.hostname}' does not resolve") from exc
        if not addresses:
            raise UrlNotAllowed(f"the host '{parts.hostname}' does not resolve")
        if not self.allow_private:
            refused = [a for a in addresses if not address_allowed(a)]
            if refused:
                raise UrlNotAllowed(
                    f"the host '{parts.hostname}' resolves to a private, loopback, link-local or "
                    f"reserved address ({refused[0]})"
                )
        return addresses[0]

    def send(self, request: WebhookRequest) -> WebhookResponse:
        started = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            address = self._address(request.url)
        except UrlNotAllowed as exc:
            return WebhookResponse(
                status=None, body=None, latency_ms=elapsed(), error=f"url_not_allowed: {exc}"
            )
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        literal = f"[{address}]" if ":" in address else address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]
        headers = {**request.headers, "host": host_header, "content-type": "application/json"}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            with self._client.stream(
                "POST", pinned, content=request.body.encode(), headers=headers, extensions=extensions
            ) as response:
                excerpt = b""
                for chunk in response.iter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
                return WebhookResponse(
                    status=response.status_code,
                    body=excerpt[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
                    latency_ms=elapsed(),
                    retry_after=_retry_after(response.headers.get("retry-after")),
                )
        except httpx.TimeoutException as exc:
            return WebhookResponse(None, None, elapsed(), error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return WebhookResponse(None, None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])


def _retry_after(value: str | None) -> int | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())

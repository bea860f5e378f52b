"""A real local webhook receiver: a threaded HTTP server that verifies Standard Webhooks signatures."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["Received", "Receiver"]


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    verified: bool
    payload: dict[str, Any]


@dataclass
class Receiver:
    """Answers each POST with ``respond(n)`` (status, body[, headers]), ``n`` counting requests from 0;
    keeps every request it got, marked verified when ``Webhook(secret).verify`` accepts it with one of
    ``secrets``."""

    secrets: list[str] = field(default_factory=list)
    respond: Callable[[int], tuple[Any, ...]] = lambda n: (200, '{"ok": true}')
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hooks"

    def start(self, tls: ssl.SSLContext | None = None) -> Receiver:
        """Listen on 127.0.0.1 (the same port after a stop); with ``tls``, serve HTTPS."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = False
                for secret in receiver.secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        continue
                with receiver._lock:
                    n = len(receiver.received)
                    receiver.received.append(Received(headers, body, verified, json.loads(body)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, text, *extra = receiver.respond(n)
                data = text.encode()
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender gave up (timeout)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a refused TLS handshake, a client that hung up

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    def payloads(self) -> list[dict[str, Any]]:
        return [r.payload for r in self.received]

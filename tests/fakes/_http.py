"""What the vendor fakes share: the local server they answer on and the handler that hands them requests.

Each fake keeps its own routes, state, errors and signatures (what makes it faithful to its vendor); this
module is only the plumbing under them."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeRequestHandler", "LocalServer", "write"]


class FakeRequestHandler(BaseHTTPRequestHandler):
    """Hands each request to its fake, ``owner._serve(handler, method)``, for the methods the fake's vendor
    answers (``owner.methods``); any other method gets the 501 that ``http.server`` answers. Keep-alive
    HTTP/1.1, no Nagle delay, no access log."""

    owner: Any
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _dispatch(self, method: str) -> None:
        if method not in self.owner.methods:
            self.send_error(501, f"Unsupported method ({method!r})")
            return
        self.owner._serve(self, method)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class LocalServer:
    """A fake's server on 127.0.0.1, on a free port, served from a daemon thread.

    ``release`` is set when the server stops, so that responses a fault holds back (a hanging request)
    finish instead of keeping the thread."""

    def __init__(self, name: str, *, scheme: str = "http") -> None:
        self.name, self.scheme = name, scheme
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(
        self,
        owner: Any,
        *,
        handler: type[FakeRequestHandler] = FakeRequestHandler,
        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
        configure: Callable[[ThreadingHTTPServer], None] | None = None,
    ) -> None:
        """Serve ``owner`` (its ``_serve`` and ``methods``) through ``handler``; ``configure`` sees the server
        before it runs."""
        self.release.clear()
        server = server_class(("127.0.0.1", 0), type("Handler", (handler,), {"owner": owner}))
        server.daemon_threads = True
        if configure is not None:
            configure(server)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        """``scheme://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError(f"{self.name} is not started")
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"


def write(
    req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], *, content_type: str
) -> None:
    """Answer ``status`` with ``body`` (``content_type`` unless ``headers`` name another one); a 204 carries
    neither body nor content headers. A client that gave up (a timeout test) is no error here."""
    try:
        req.send_response(status)
        if status != 204:
            req.send_header("Content-Type", headers.pop("Content-Type", content_type))
            req.send_header("Content-Length", str(len(body)))
        else:
            headers.pop("Content-Type", None)
        for name, value in headers.items():
            req.send_header(name, value)
        req.end_headers()
        if status != 204:
            req.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass

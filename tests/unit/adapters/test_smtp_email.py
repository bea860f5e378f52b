"""The SMTP email adapter against a minimal local SMTP server (RFC 5321 subset: EHLO, MAIL, RCPT, DATA)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes

import pytest

from revflow.adapters.email import SmtpEmailSender, StoredEmailSender
from revflow.services.ports import EmailMessage


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        received: list[bytes] = self.server.received  # type: ignore[attr-defined]
        self.wfile.write(b"220 localhost ESMTP test\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 localhost\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                received.append(data)
                self.wfile.write(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 Bye\r\n")
                return
            else:
                self.wfile.write(b"502 Command not implemented\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class TestSmtpEmailSender:
    def test_sends_one_message_with_headers_and_body(
        self, smtp_server: socketserver.ThreadingTCPServer
    ) -> None:
        sender = SmtpEmailSender(host="127.0.0.1", port=smtp_server.server_address[1])

        sender.send(
            EmailMessage(
                to="ada@example.com",
                subject="Payment of invoice INV-000001 failed",
                body="We will try again on 2030-03-02.\n",
                sender="billing@acme.test",
                message_id="em_123",
            )
        )

        (raw,) = smtp_server.received  # type: ignore[attr-defined]
        msg = message_from_bytes(raw)
        assert (msg["From"], msg["To"], msg["Message-ID"]) == (
            "billing@acme.test",
            "ada@example.com",
            "<em_123@revflow>",
        )
        assert msg["Subject"] == "Payment of invoice INV-000001 failed"
        assert msg.get_payload().strip() == "We will try again on 2030-03-02."
        assert sender.delivered_status == "sent"

    def test_a_refused_connection_raises(self) -> None:
        sender = SmtpEmailSender(host="127.0.0.1", port=1, timeout=2)

        with pytest.raises(OSError):
            sender.send(
                EmailMessage(to="a@b.test", subject="s", body="b", sender="c@d.test", message_id="em_1")
            )


class TestStoredEmailSender:
    def test_delivers_nothing_and_reports_stored(self) -> None:
        sender = StoredEmailSender()

        result = sender.send(
            EmailMessage(to="a@b.test", subject="s", body="b", sender="c@d.test", message_id="em_1")
        )

        assert (result, sender.delivered_status) == (None, "stored")

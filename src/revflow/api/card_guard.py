"""Refuses any request body that contains a card number, before anything reads, logs or stores it.

A card number is a run of 13 to 19 digits, possibly grouped by single spaces or dashes, that passes the Luhn
check. Such a body is answered 422 ``card_data_not_accepted``; the body is dropped and never echoed.
Gateway webhooks are exempt (their bodies are signed by the gateway and carry no card numbers, but long
numeric ids and timestamps could look like one).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from revflow.api.problems import problem

__all__ = ["CardDataGuard", "contains_card_number", "luhn_valid"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Digits, each optionally followed by one space or dash, 13 to 19 digits in all, not inside a longer number.
_CANDIDATE = re.compile(rb"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")
# Every candidate lies inside a stretch of 13+ digits, spaces and dashes, and a JSON body has few: the body is
# mapped to 1 (digit, space, dash) and 0 (anything else) in one C-speed pass and searched for thirteen 1s,
# so the candidate pattern (slow: it is tried at every digit) runs only inside such stretches.
_MASK = bytes(49 if chr(b) in "0123456789 -" else 48 for b in range(256))
_STRETCH = b"1" * 13
_EXEMPT_PREFIXES = ("/v1/webhooks/",)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string.

    >>> luhn_valid("4242424242424242"), luhn_valid("4242424242424241")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def contains_card_number(body: bytes) -> bool:
    """True when ``body`` holds a Luhn-valid run of 13-19 digits (spaces or dashes allowed between them).

    >>> contains_card_number(b'{"number": "4242 4242 4242 4242"}')
    True
    >>> contains_card_number(b'{"amount": 4242424242424241}')
    False
    """
    mask = body.translate(_MASK)
    start = mask.find(_STRETCH)
    while start != -1:
        end = mask.find(b"0", start)
        end = len(body) if end == -1 else end
        for match in _CANDIDATE.finditer(body, start, end):
            raw = match.group().decode()
            digits = raw.replace(" ", "").replace("-", "")
            seps = {c for c in raw if not c.isdigit()}
            if len(seps) > 1:  # a mix of spaces and dashes: not how a card number is written
                continue
            if luhn_valid(digits):
                return True
        start = mask.find(_STRETCH, end)
    return False


class CardDataGuard:
    """ASGI middleware: reads the whole body of a ``/v1`` request first and refuses card numbers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1") or path.startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        body = b""
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if body and contains_card_number(body):
            refused = problem(
                422,
                "card_data_not_accepted",
                "Card numbers are not accepted. Collect payment details with a setup session at the payment "
                "gateway and send its token.",
            )
            await refused(scope, receive, send)
            return
        replay = iter(chunks)

        async def replayed() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replayed, send)

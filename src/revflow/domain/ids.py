"""Prefixed, time-ordered public identifiers (``cus_…``, ``inv_…``).

An id is the prefix, an underscore and 24 base-32 characters: 10 encode the creation time in
milliseconds and 14 are random, so ids sort by creation time and ``starting_after`` cursors are stable.

>>> new_id("cus").startswith("cus_")
True
>>> len(new_id("inv")) == len("inv_") + 24
True
>>> a = new_id("cus", now_ms=1); b = new_id("cus", now_ms=2); a < b
True
"""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """Return a new id ``{prefix}_{time}{random}``; ``now_ms`` overrides the time part (for tests)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{prefix}_{_encode(ms, 10)}{_encode(secrets.randbits(70), 14)}"

"""Prefixed, time-ordered public identifiers (``cus_…``, ``inv_…``).

An id is the prefix, an underscore and 24 base-32 characters: 10 encode the creation time in
milliseconds and 14 a random part. Within one process ids are strictly increasing (ids made in the same
millisecond increment the previous random part, as monotonic ULIDs do), so ids sort by creation order
and the id itself serves as the pagination cursor.

>>> new_id("cus").startswith("cus_")
True
>>> len(new_id("inv")) == len("inv_") + 24
True
>>> a = new_id("cus", now_ms=1); b = new_id("cus", now_ms=2); a < b
True
>>> ids = [new_id("evt", now_ms=5) for _ in range(100)]
>>> ids == sorted(ids) and len(set(ids)) == 100
True
"""

from __future__ import annotations

import secrets
import threading
import time

__all__ = ["new_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, lower case
_RANDOM_BITS = 70
_lock = threading.Lock()
_last: tuple[int, int] = (-1, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """Return a new id ``{prefix}_{time}{random}``; ``now_ms`` overrides the time part (for tests)."""
    global _last
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        last_ms, last_rand = _last
        if ms <= last_ms and now_ms is None:
            ms, rand = last_ms, last_rand + 1 + secrets.randbits(16)
        elif ms == last_ms:
            rand = last_rand + 1 + secrets.randbits(16)
        else:
            rand = secrets.randbits(_RANDOM_BITS - 1)  # headroom for increments
        _last = (ms, rand)
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 14)}"

"""Failpoints: named places where a test can make the process die, to prove crash safety.

Set ``REVFLOW_FAILPOINT=name:n`` and the n-th time the process reaches :func:`hit` with that name it
exits at once (``os._exit``, as a ``kill -9`` would: no cleanup, no commit). Unset, :func:`hit` costs one
dictionary lookup.
"""

from __future__ import annotations

import os
from collections import Counter

__all__ = ["hit"]

_counts: Counter[str] = Counter()


def hit(name: str) -> None:
    """Die here if ``REVFLOW_FAILPOINT`` names this point and this is the chosen passage."""
    spec = os.environ.get("REVFLOW_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _counts[name] += 1
    if _counts[name] >= int(nth or 1):
        os._exit(97)

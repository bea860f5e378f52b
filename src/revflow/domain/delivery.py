"""Rules of event delivery: which events an endpoint wants, when to retry, which addresses are off limits.

Retries back off exponentially with jitter: the n-th failed attempt waits about
``base * factor ** (n - 1)``, at most ``cap``, times a random factor in ``[1 - jitter, 1 + jitter]``;
a delivery whose next attempt would fall after ``window`` from its first attempt is dead-lettered.

>>> from datetime import timedelta
>>> policy = RetryPolicy()
>>> [str(policy.delay(n, spread=0.5)) for n in (1, 2, 3, 8, 9, 20)]
['0:00:10', '0:00:30', '0:01:30', '6:04:30', '12:00:00', '12:00:00']
>>> policy.delay(1, spread=0.0), policy.delay(1, spread=1.0)
(datetime.timedelta(seconds=8), datetime.timedelta(seconds=12))
>>> len(policy.schedule()), str(sum(policy.schedule(), timedelta()))
(13, '2 days, 21:06:40')
>>> matches(["invoice.*", "customer.created"], "invoice.paid"), matches(["invoice.*"], "invoices.x")
(True, False)
>>> matches(["*"], "anything.at.all"), matches([], "invoice.paid"), matches(["invoice.paid"], "invoice")
(True, False, False)
>>> address_allowed("93.184.216.34"), address_allowed("127.0.0.1"), address_allowed("10.1.2.3")
(True, False, False)
>>> address_allowed("169.254.169.254"), address_allowed("::1"), address_allowed("::ffff:192.168.0.1")
(False, False, False)
>>> address_allowed("100.64.0.1"), address_allowed("0.0.0.0"), address_allowed("2606:4700::1111")
(False, False, True)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["EVENT_PATTERN", "RetryPolicy", "address_allowed", "matches"]

#: An event type (``invoice.paid``) or a pattern (``invoice.*``, ``*``).
EVENT_PATTERN = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether ``event_type`` is one of ``patterns``: exact types, ``prefix.*`` (any type under the
    prefix, at any depth) or ``*`` (everything). No pattern matches nothing."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When failed deliveries are tried again, and when they are given up (dead-lettered)."""

    base: timedelta = timedelta(seconds=10)
    factor: int = 3
    cap: timedelta = timedelta(hours=12)
    jitter: float = 0.2
    window: timedelta = timedelta(days=3)

    def delay(self, failures: int, *, spread: float) -> timedelta:
        """The wait after the ``failures``-th failed attempt (1-based); ``spread`` in [0, 1] is the random
        draw (0.5: no jitter). Whole seconds."""
        raw = min(self.base * self.factor ** min(failures - 1, 40), self.cap)
        scale = 1 - self.jitter + 2 * self.jitter * spread
        return timedelta(seconds=round(raw.total_seconds() * scale))

    def schedule(self) -> list[timedelta]:
        """The waits without jitter, up to the retry window: the documented retry schedule."""
        waits: list[timedelta] = []
        total = timedelta(0)
        n = 1
        while True:
            wait = self.delay(n, spread=0.5)
            if total + wait > self.window:
                return waits
            waits.append(wait)
            total += wait
            n += 1


def address_allowed(address: str) -> bool:
    """Whether a webhook may be sent to ``address``: a public unicast IP address, not private, loopback,
    link-local, shared (CGNAT), multicast, reserved or unspecified. IPv4-mapped IPv6 addresses are judged
    as their IPv4 address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.IPv4Network("100.64.0.0/10"):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )

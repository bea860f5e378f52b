"""Alert statuses and their allowed transitions.

An alert is ``open`` when raised, ``acknowledged`` once someone looks at it and ``resolved`` once dealt
with. Raising it again (the same problem found again) opens a resolved alert anew.

>>> ensure_transition("open", "acknowledged")
>>> ensure_transition("resolved", "acknowledged")
Traceback (most recent call last):
...
revflow.domain.errors.InvalidTransition: cannot move an alert from resolved to acknowledged
"""

from __future__ import annotations

from enum import StrEnum

from revflow.domain.errors import InvalidTransition

__all__ = ["TRANSITIONS", "AlertStatus", "ensure_transition"]


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


_A = AlertStatus

#: The only allowed moves of an alert's status.
TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    _A.OPEN: frozenset({_A.ACKNOWLEDGED, _A.RESOLVED}),
    _A.ACKNOWLEDGED: frozenset({_A.RESOLVED, _A.OPEN}),
    _A.RESOLVED: frozenset({_A.OPEN}),
}


def ensure_transition(current: AlertStatus | str, target: AlertStatus | str) -> None:
    """Return None if ``current → target`` is in :data:`TRANSITIONS`; raises InvalidTransition otherwise."""
    cur, tgt = AlertStatus(current), AlertStatus(target)
    if tgt not in TRANSITIONS[cur]:
        raise InvalidTransition(f"cannot move an alert from {cur} to {tgt}")

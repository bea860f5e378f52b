"""Quote statuses and their allowed transitions.

A quote is a ``draft`` while sales edits it, ``open`` once finalized (numbered and frozen), then
``accepted`` (it became a subscription) or ``canceled``. An open quote past its ``expires_at`` can no
longer be accepted.

>>> ensure_transition("draft", "open")
>>> ensure_transition("accepted", "accepted")
Traceback (most recent call last):
...
revflow.domain.quotes.QuoteAlreadyAccepted: the quote was already accepted
>>> ensure_transition("draft", "accepted")
Traceback (most recent call last):
...
revflow.domain.errors.InvalidTransition: cannot move a quote from draft to accepted
>>> from datetime import datetime, UTC
>>> ensure_acceptable(expires_at=datetime(2024, 2, 1, tzinfo=UTC), as_of=datetime(2024, 2, 1, tzinfo=UTC))
Traceback (most recent call last):
...
revflow.domain.quotes.QuoteExpired: the quote expired at 2024-02-01T00:00:00+00:00
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from revflow.domain.errors import Conflict, InvalidTransition

__all__ = [
    "TRANSITIONS",
    "QuoteAlreadyAccepted",
    "QuoteExpired",
    "QuoteStatus",
    "ensure_acceptable",
    "ensure_transition",
]


class QuoteStatus(StrEnum):
    """Stripe's quote statuses."""

    DRAFT = "draft"
    OPEN = "open"
    ACCEPTED = "accepted"
    CANCELED = "canceled"


_Q = QuoteStatus

#: The only allowed moves of a quote's status.
TRANSITIONS: dict[QuoteStatus, frozenset[QuoteStatus]] = {
    _Q.DRAFT: frozenset({_Q.OPEN, _Q.CANCELED}),
    _Q.OPEN: frozenset({_Q.ACCEPTED, _Q.CANCELED}),
    _Q.ACCEPTED: frozenset(),
    _Q.CANCELED: frozenset(),
}


class QuoteAlreadyAccepted(InvalidTransition):
    """The quote was accepted before: it became a subscription once and never again (409)."""

    code = "quote_already_accepted"


class QuoteExpired(Conflict):
    """The quote is past its ``expires_at`` (409)."""

    code = "quote_expired"


def ensure_transition(current: QuoteStatus | str, target: QuoteStatus | str) -> None:
    """Return None if ``current → target`` is in :data:`TRANSITIONS`.

    Raises QuoteAlreadyAccepted when accepting an accepted quote, InvalidTransition for any other move
    the table does not allow.
    """
    cur, tgt = QuoteStatus(current), QuoteStatus(target)
    if tgt in TRANSITIONS[cur]:
        return
    if cur is _Q.ACCEPTED and tgt is _Q.ACCEPTED:
        raise QuoteAlreadyAccepted("the quote was already accepted")
    raise InvalidTransition(f"cannot move a quote from {cur} to {tgt}")


def ensure_acceptable(*, expires_at: datetime | None, as_of: datetime) -> None:
    """Return None if a quote expiring at ``expires_at`` (None: never) can be accepted at ``as_of``.

    A quote expires at ``expires_at`` itself (the instant is excluded). Raises QuoteExpired.
    """
    if expires_at is not None and as_of >= expires_at:
        raise QuoteExpired(f"the quote expired at {expires_at.isoformat()}")

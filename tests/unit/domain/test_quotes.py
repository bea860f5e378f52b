from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from revflow.domain.errors import InvalidTransition
from revflow.domain.quotes import (
    TRANSITIONS,
    QuoteAlreadyAccepted,
    QuoteExpired,
    QuoteStatus,
    ensure_acceptable,
    ensure_transition,
)

_Q = QuoteStatus


class TestTransitions:
    def test_the_table_allows_exactly_four_moves(self) -> None:
        allowed = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}

        assert allowed == {
            (_Q.DRAFT, _Q.OPEN),
            (_Q.DRAFT, _Q.CANCELED),
            (_Q.OPEN, _Q.ACCEPTED),
            (_Q.OPEN, _Q.CANCELED),
        }

    def test_every_pair_outside_the_table_raises_invalid_transition(self) -> None:
        allowed = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
        refused = []

        for a in QuoteStatus:
            for b in QuoteStatus:
                if (a, b) in allowed:
                    ensure_transition(a, b)
                    continue
                with pytest.raises(InvalidTransition) as caught:
                    ensure_transition(a, b)
                refused.append((a.value, b.value, caught.value.code, caught.value.status))

        assert len(refused) == 12
        assert {(code, status) for _, _, code, status in refused} == {
            ("invalid_state", 409),
            ("quote_already_accepted", 409),
        }

    def test_accepting_an_accepted_quote_says_so_with_its_own_code(self) -> None:
        with pytest.raises(QuoteAlreadyAccepted) as caught:
            ensure_transition("accepted", "accepted")

        assert (caught.value.code, caught.value.status) == ("quote_already_accepted", 409)

    def test_accepting_a_draft_is_an_invalid_state(self) -> None:
        with pytest.raises(InvalidTransition) as caught:
            ensure_transition("draft", "accepted")

        assert not isinstance(caught.value, QuoteAlreadyAccepted)
        assert caught.value.code == "invalid_state"

    def test_an_unknown_status_is_refused(self) -> None:
        with pytest.raises(ValueError):
            ensure_transition("draft", "signed")


class TestExpiry:
    at = datetime(2024, 3, 1, tzinfo=UTC)

    def test_a_quote_without_expiry_is_always_acceptable(self) -> None:
        ensure_acceptable(expires_at=None, as_of=self.at + timedelta(days=3650))

    def test_acceptable_up_to_the_instant_before_expiry(self) -> None:
        ensure_acceptable(expires_at=self.at, as_of=self.at - timedelta(microseconds=1))

    def test_expired_at_the_expiry_instant_itself(self) -> None:
        with pytest.raises(QuoteExpired) as caught:
            ensure_acceptable(expires_at=self.at, as_of=self.at)

        assert (caught.value.code, caught.value.status) == ("quote_expired", 409)

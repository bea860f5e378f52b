from __future__ import annotations

from decimal import Decimal

import pytest

from revflow.domain.errors import InvalidTransition
from revflow.domain.invoices import (
    TRANSITIONS,
    InvoiceStatus,
    compute_totals,
    credit_note_kind,
    ensure_transition,
    line_amount,
    max_creditable,
)
from revflow.domain.money import Currency


class TestTransitions:
    def test_every_pair_outside_the_table_raises(self) -> None:
        allowed = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}

        for a in InvoiceStatus:
            for b in InvoiceStatus:
                if (a, b) in allowed:
                    ensure_transition(a, b)
                else:
                    with pytest.raises(InvalidTransition):
                        ensure_transition(a, b)

        assert len(allowed) == 6


class TestTotals:
    def test_credit_is_applied_up_to_the_total(self) -> None:
        totals = compute_totals(line_amounts=[3000], credit_balance_available=5000)

        assert (totals.total, totals.applied_balance, totals.amount_due) == (3000, 3000, 0)

    def test_line_amount_rounds_once(self) -> None:
        amount = line_amount(
            quantity=Decimal(3), unit_amount_decimal=Decimal("0.3333"), currency=Currency.of("USD")
        )

        assert amount == 1  # 0.9999 cents


class TestCrediting:
    def test_open_invoices_credit_at_most_what_remains(self) -> None:
        assert max_creditable(status="open", total=10000, credited=0, amount_remaining=4000) == 4000
        assert max_creditable(status="paid", total=10000, credited=2500, amount_remaining=0) == 7500

    def test_kind_follows_the_status(self) -> None:
        assert credit_note_kind("open") == "pre_payment"
        assert credit_note_kind("paid") == "post_payment"
        with pytest.raises(InvalidTransition):
            credit_note_kind("void")

"""Documents of customers on a test clock are numbered per clock (``INV-TEST1-000001``), never with the
organization's real, gapless numbers (ADR 0040)."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import select

from revflow.bootstrap import Container
from revflow.storage import models
from revflow.storage.engine import alembic_config
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price


def _clock(t: Tenant, at: str = "2024-01-01T00:00:00Z") -> str:
    r = t.post("/v1/test_clocks", {"frozen_time": at})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _customer(t: Tenant, clock: str | None = None) -> str:
    body: dict[str, Any] = {"name": "Acme", "currency": "USD"}
    if clock is not None:
        body["test_clock_id"] = clock
    r = t.post("/v1/customers", body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _finalized_invoice(t: Tenant, customer: str) -> dict[str, Any]:
    r = t.post("/v1/invoices", {"customer_id": customer, "items": [{"description": "Setup", "amount": 1000}]})
    assert r.status_code == 201, r.text
    r = t.post(f"/v1/invoices/{r.json()['id']}/finalize")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _subscribe_and_advance(t: Tenant, container: Container, clock: str, customer: str, to: str) -> list[str]:
    """Subscribe ``customer`` to a $100 monthly price, advance ``clock`` to ``to`` and return the numbers
    of the customer's invoices, oldest first."""
    price = make_price(container, t.org_id, flat=10000)
    r = t.post("/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]})
    assert r.status_code == 201, r.text
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text
    return _numbers(t, customer)


def _numbers(t: Tenant, customer: str) -> list[str]:
    data = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    return [i["number"] for i in reversed(data)]


def _credit_note(t: Tenant, invoice: str) -> str:
    r = t.post("/v1/credit_notes", {"invoice_id": invoice, "amount": 100, "reason": "order_change"})
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


class TestTestClockInvoiceNumbers:
    def test_real_invoices_stay_consecutive_while_a_test_clock_customer_is_billed_between_them(
        self, tenant: Tenant, container: Container
    ) -> None:
        real = _customer(tenant)
        clock = _clock(tenant)
        simulated = _customer(tenant, clock)

        first = _finalized_invoice(tenant, real)
        cycles = _subscribe_and_advance(tenant, container, clock, simulated, "2024-03-01T02:00:00Z")
        one_off = _finalized_invoice(tenant, simulated)
        second = _finalized_invoice(tenant, real)

        assert (first["number"], second["number"]) == ("INV-000001", "INV-000002")
        assert cycles == ["INV-TEST1-000001", "INV-TEST1-000002", "INV-TEST1-000003"]
        assert one_off["number"] == "INV-TEST1-000004"

    def test_each_clock_numbers_its_invoices_from_one_under_its_own_number(
        self, tenant: Tenant, container: Container
    ) -> None:
        first_clock, second_clock = _clock(tenant), _clock(tenant)
        shown = [tenant.get(f"/v1/test_clocks/{c}").json()["number"] for c in (first_clock, second_clock)]
        on_first, on_second = _customer(tenant, first_clock), _customer(tenant, second_clock)

        first = _subscribe_and_advance(tenant, container, first_clock, on_first, "2024-02-01T02:00:00Z")
        second = _subscribe_and_advance(tenant, container, second_clock, on_second, "2024-02-01T02:00:00Z")
        one_off = _finalized_invoice(tenant, on_first)

        assert shown == [1, 2]
        assert first == ["INV-TEST1-000001", "INV-TEST1-000002"]
        assert second == ["INV-TEST2-000001", "INV-TEST2-000002"]
        assert one_off["number"] == "INV-TEST1-000003"


class TestTestClockCreditNoteNumbers:
    def test_credit_notes_on_a_test_clock_are_numbered_within_their_clock(self, tenant: Tenant) -> None:
        real = _customer(tenant)
        simulated = _customer(tenant, _clock(tenant))
        real_invoice = _finalized_invoice(tenant, real)
        simulated_invoice = _finalized_invoice(tenant, simulated)

        notes = [
            _credit_note(tenant, real_invoice["id"]),
            _credit_note(tenant, simulated_invoice["id"]),
            _credit_note(tenant, simulated_invoice["id"]),
            _credit_note(tenant, real_invoice["id"]),
        ]

        assert (real_invoice["number"], simulated_invoice["number"]) == ("INV-000001", "INV-TEST1-000001")
        assert notes == ["CN-000001", "CN-TEST1-000001", "CN-TEST1-000002", "CN-000002"]


class TestTestClockNumberMigration:
    def test_0012_numbers_existing_clocks_in_creation_order_and_new_clocks_after_them(
        self, db_url: str, tenant: Tenant, container: Container
    ) -> None:
        older, newer = _clock(tenant), _clock(tenant)
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0011")  # the clocks lose their numbers, as before 0012

        command.upgrade(cfg, "head")
        third = _clock(tenant)

        with container.sessions() as s:
            numbers = {c.id: c.number for c in s.scalars(select(models.TestClock))}
        assert numbers == {older: 1, newer: 2, third: 3}

"""Invoices through the API: the seed example, lifecycle, payments, credit notes, balance and PDF."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.storage.models import AuditEvent, Event, Invoice, InvoiceLineItem
from tests.conftest import Tenant


def _customer(t: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "Acme Corp", "email": "ap@acme.example", **fields}
    r = t.post("/v1/customers", body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _invoice(t: Tenant, customer_id: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/invoices", {"customer_id": customer_id, "items": list(items), **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _count(container: Container, model: Any) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


class TestSeedExample:
    def test_creates_a_draft_of_500_usd(self, tenant: Tenant) -> None:
        customer = _customer(tenant)

        r = tenant.post(
            "/v1/invoices",
            {
                "customer_id": customer["id"],
                "items": [{"description": "Enterprise Plan", "amount": 50000, "currency": "USD"}],
                "due_date": "2024-02-01",
            },
        )

        assert r.status_code == 201
        inv = r.json()
        assert inv["id"].startswith("inv_")
        assert inv["status"] == "draft"
        assert inv["currency"] == "USD"
        assert inv["due_date"] == "2024-02-01"
        assert (inv["subtotal"], inv["total"], inv["amount_due"], inv["amount_remaining"]) == (
            50000,
            50000,
            50000,
            50000,
        )
        assert inv["lines"][0]["description"] == "Enterprise Plan"
        assert inv["number"] is None


class TestLines:
    def test_quantity_times_unit_amount_rounds_once_at_the_line_total(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")

        inv = _invoice(
            tenant,
            customer["id"],
            {"description": "Seats", "quantity": 7, "unit_amount": 1999},
            {"description": "API calls", "quantity": 12345, "unit_amount_decimal": "0.04"},
        )

        assert [li["amount"] for li in inv["lines"]] == [13993, 494]
        assert inv["total"] == 14487

    def test_respects_currency_exponents(self, tenant: Tenant) -> None:
        yen = _customer(tenant, name="Tokyo KK", currency="JPY")
        dinar = _customer(tenant, name="Kuwait Co", currency="KWD")

        jpy = _invoice(
            tenant, yen["id"], {"description": "Plan", "quantity": 3, "unit_amount_decimal": "333.5"}
        )
        kwd = _invoice(tenant, dinar["id"], {"description": "Plan", "amount": 12345})

        assert jpy["total"] == 1001  # 1000.5 yen rounds half up to 1001
        assert kwd["total"] == 12345  # 12.345 KWD

    def test_edits_a_draft(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})

        added = tenant.post(
            f"/v1/invoices/{inv['id']}/lines", {"items": [{"description": "B", "amount": 250}]}
        ).json()
        removed = tenant.delete(f"/v1/invoices/{inv['id']}/lines/{added['lines'][0]['id']}").json()
        patched = tenant.patch(
            f"/v1/invoices/{inv['id']}", {"description": "Thanks", "due_date": "2030-01-31"}
        ).json()

        assert added["total"] == 1250
        assert removed["total"] == 250
        assert (patched["description"], patched["due_date"]) == ("Thanks", "2030-01-31")

    def test_deletes_a_draft(self, tenant: Tenant, container: Container) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})

        r = tenant.delete(f"/v1/invoices/{inv['id']}")

        assert r.status_code == 200
        assert tenant.get(f"/v1/invoices/{inv['id']}").status_code == 404
        assert _count(container, InvoiceLineItem) == 0


class TestLifecycle:
    def test_finalize_assigns_sequential_numbers_and_freezes_the_invoice(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        first = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})
        second = _invoice(tenant, customer["id"], {"description": "B", "amount": 2000})

        f1 = tenant.post(f"/v1/invoices/{first['id']}/finalize").json()
        f2 = tenant.post(f"/v1/invoices/{second['id']}/finalize").json()
        edit = tenant.patch(f"/v1/invoices/{first['id']}", {"description": "changed"})
        again = tenant.post(f"/v1/invoices/{first['id']}/finalize")

        assert (f1["number"], f2["number"]) == ("INV-000001", "INV-000002")
        assert f1["status"] == "open" and f1["finalized_at"] is not None
        assert edit.status_code == 409 and edit.json()["code"] == "invalid_state"
        assert again.status_code == 409 and again.json()["code"] == "invalid_state"
        assert tenant.get(f"/v1/invoices/{first['id']}").json()["description"] is None

    def test_void_and_uncollectible_follow_the_transition_table(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        a = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})
        b = _invoice(tenant, customer["id"], {"description": "B", "amount": 1000})
        tenant.post(f"/v1/invoices/{a['id']}/finalize")
        tenant.post(f"/v1/invoices/{b['id']}/finalize")

        voided = tenant.post(f"/v1/invoices/{a['id']}/void").json()
        unc = tenant.post(f"/v1/invoices/{b['id']}/mark_uncollectible").json()
        void_twice = tenant.post(f"/v1/invoices/{a['id']}/void")
        draft = _invoice(tenant, customer["id"], {"description": "C", "amount": 1})
        void_draft = tenant.post(f"/v1/invoices/{draft['id']}/void")

        assert voided["status"] == "void" and voided["amount_remaining"] == 0
        assert unc["status"] == "uncollectible"
        assert void_twice.status_code == 409 and void_twice.json()["code"] == "invalid_state"
        assert void_draft.status_code == 409

    def test_out_of_band_payments_partial_then_full_then_overpaid_to_credit(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 10000})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        p1 = tenant.post(
            f"/v1/invoices/{inv['id']}/payments",
            {
                "amount": 4000,
                "method": "bank_transfer",
                "reference": "WIRE-1",
                "paid_at": "2024-02-01T10:00:00Z",
            },
        )
        mid = tenant.get(f"/v1/invoices/{inv['id']}").json()
        p2 = tenant.post(f"/v1/invoices/{inv['id']}/payments", {"amount": 7000, "method": "check"})
        done = tenant.get(f"/v1/invoices/{inv['id']}").json()
        after = tenant.post(f"/v1/invoices/{inv['id']}/payments", {"amount": 1})

        assert p1.status_code == 201 and p1.json()["reference"] == "WIRE-1"
        assert p1.json()["paid_at"] == "2024-02-01T10:00:00Z"
        assert (mid["status"], mid["amount_paid"], mid["amount_remaining"]) == ("open", 4000, 6000)
        assert p2.status_code == 201
        assert (done["status"], done["amount_paid"], done["amount_remaining"]) == ("paid", 10000, 0)
        assert tenant.get(f"/v1/customers/{customer['id']}").json()["balance"] == 1000
        assert after.status_code == 409


class TestCreditNotes:
    def test_credit_on_a_paid_invoice_becomes_balance_applied_to_the_next_invoice(
        self, tenant: Tenant
    ) -> None:
        customer = _customer(tenant, currency="USD")
        paid = _invoice(tenant, customer["id"], {"description": "Plan", "amount": 50000})
        tenant.post(f"/v1/invoices/{paid['id']}/finalize")
        tenant.post(f"/v1/invoices/{paid['id']}/payments", {})

        note = tenant.post(
            "/v1/credit_notes", {"invoice_id": paid["id"], "amount": 12000, "reason": "order_change"}
        )
        balance = tenant.get(f"/v1/customers/{customer['id']}").json()["balance"]
        nxt = _invoice(tenant, customer["id"], {"description": "Plan", "amount": 50000})
        fin = tenant.post(f"/v1/invoices/{nxt['id']}/finalize").json()
        balance_after = tenant.get(f"/v1/customers/{customer['id']}").json()["balance"]
        txns = tenant.get(f"/v1/customers/{customer['id']}/balance_transactions").json()["data"]

        assert note.status_code == 201
        assert (note.json()["number"], note.json()["type"], note.json()["amount"]) == (
            "CN-000001",
            "post_payment",
            12000,
        )
        assert balance == 12000
        assert (fin["total"], fin["applied_balance"], fin["amount_due"], fin["amount_remaining"]) == (
            50000,
            12000,
            38000,
            38000,
        )
        assert balance_after == 0
        assert sorted(t["amount"] for t in txns) == [-12000, 12000]

    def test_balance_covering_the_whole_invoice_pays_it_on_finalization(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        paid = _invoice(tenant, customer["id"], {"description": "Plan", "amount": 5000})
        tenant.post(f"/v1/invoices/{paid['id']}/finalize")
        tenant.post(f"/v1/invoices/{paid['id']}/payments", {})
        tenant.post("/v1/credit_notes", {"invoice_id": paid["id"]})

        small = _invoice(tenant, customer["id"], {"description": "Add-on", "amount": 3000})
        fin = tenant.post(f"/v1/invoices/{small['id']}/finalize").json()

        assert (fin["status"], fin["applied_balance"], fin["amount_due"]) == ("paid", 3000, 0)
        assert tenant.get(f"/v1/customers/{customer['id']}").json()["balance"] == 2000

    def test_per_line_credit_on_an_open_invoice_lowers_what_remains(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(
            tenant, customer["id"], {"description": "A", "amount": 6000}, {"description": "B", "amount": 4000}
        )
        fin = tenant.post(f"/v1/invoices/{inv['id']}/finalize").json()
        line_b = fin["lines"][1]["id"]

        note = tenant.post(
            "/v1/credit_notes",
            {"invoice_id": inv["id"], "lines": [{"invoice_line_id": line_b, "amount": 1500}]},
        )
        too_much = tenant.post(
            "/v1/credit_notes",
            {"invoice_id": inv["id"], "lines": [{"invoice_line_id": line_b, "amount": 2501}]},
        )
        rest = tenant.post(
            "/v1/credit_notes", {"invoice_id": inv["id"], "lines": [{"invoice_line_id": line_b}]}
        )
        after = tenant.get(f"/v1/invoices/{inv['id']}").json()

        assert note.status_code == 201 and note.json()["type"] == "pre_payment"
        assert too_much.status_code == 422 and too_much.json()["code"] == "credit_note_amount_too_large"
        assert rest.json()["amount"] == 2500
        assert (after["amount_remaining"], after["pre_payment_credit_notes_amount"], after["status"]) == (
            6000,
            4000,
            "open",
        )

    def test_crediting_more_than_remains_changes_nothing(self, tenant: Tenant, container: Container) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 5000})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")
        tenant.post("/v1/credit_notes", {"invoice_id": inv["id"], "amount": 3000})
        events_before = _count(container, Event)

        r = tenant.post("/v1/credit_notes", {"invoice_id": inv["id"], "amount": 2001})

        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "credit_note_amount_too_large"
        assert tenant.get(f"/v1/invoices/{inv['id']}").json()["amount_remaining"] == 2000
        assert len(tenant.get("/v1/credit_notes").json()["data"]) == 1
        assert _count(container, Event) == events_before

    def test_full_credit_of_an_open_invoice_marks_it_paid(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 5000})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        tenant.post("/v1/credit_notes", {"invoice_id": inv["id"], "reason": "duplicate"})

        assert tenant.get(f"/v1/invoices/{inv['id']}").json()["status"] == "paid"

    def test_drafts_cannot_be_credited(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 5000})

        r = tenant.post("/v1/credit_notes", {"invoice_id": inv["id"], "amount": 100})

        assert r.status_code == 409 and r.json()["code"] == "invalid_state"


class TestPdf:
    def test_pdf_opens_and_shows_number_and_total(self, tenant: Tenant) -> None:
        customer = _customer(
            tenant, currency="USD", address={"line1": "1 Main St", "city": "Austin", "country": "US"}
        )
        inv = _invoice(tenant, customer["id"], {"description": "Enterprise Plan", "amount": 50000})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        r = tenant.get(f"/v1/invoices/{inv['id']}/pdf")

        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pdf"
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages).replace("\xa0", " ")
        assert "INV-000001" in text
        assert "$500.00" in text
        assert "Acme Corp" in text and "Enterprise Plan" in text

    def test_pdf_formats_amounts_for_the_customers_locale(self, tenant: Tenant) -> None:
        customer = _customer(tenant, name="Berliner GmbH", currency="EUR", locale="de_DE")
        inv = _invoice(tenant, customer["id"], {"description": "Plan", "amount": 123456})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        r = tenant.get(f"/v1/invoices/{inv['id']}/pdf")

        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
        assert "1.234,56 €" in text.replace("\xa0", " ").replace("\u202f", " ")


class TestBadInput:
    def _assert_unchanged(self, container: Container, invoices: int) -> None:
        assert _count(container, Invoice) == invoices

    def test_each_bad_request_answers_its_code_and_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        usd = _customer(tenant, currency="USD")
        cases: list[tuple[dict[str, Any] | str, int, str]] = [
            ('{"customer_id": ', 400, "invalid_json"),
            ({"customer_id": usd["id"], "items": [], "surprise": 1}, 422, "validation_error"),
            (
                {"customer_id": usd["id"], "items": [{"description": "A", "amount": "500"}]},
                422,
                "validation_error",
            ),
            (
                {"customer_id": usd["id"], "items": [{"description": "x" * 501, "amount": 1}]},
                422,
                "validation_error",
            ),
            (
                {"customer_id": usd["id"], "items": [{"description": "A", "amount": 10**15 + 1}]},
                422,
                "validation_error",
            ),
            (
                {"customer_id": usd["id"], "items": [{"description": "A", "amount": 1, "currency": "EUR"}]},
                422,
                "currency_mismatch",
            ),
            (
                {
                    "customer_id": usd["id"],
                    "currency": "USD",
                    "items": [{"description": "A", "amount": 1, "currency": "GBP"}],
                },
                422,
                "currency_mismatch",
            ),
            (
                {"customer_id": usd["id"], "items": [{"description": "A", "amount": 1, "currency": "XYZ"}]},
                422,
                "unknown_currency",
            ),
            (
                {"customer_id": "cus_doesnotexist", "items": [{"description": "A", "amount": 1}]},
                404,
                "resource_missing",
            ),
        ]

        for body, status, code in cases:
            if isinstance(body, str):
                r = tenant.post("/v1/invoices", content=body, headers={"Content-Type": "application/json"})
            else:
                r = tenant.post("/v1/invoices", body)
            assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            self._assert_unchanged(container, 0)

    def test_validation_errors_name_the_field(self, tenant: Tenant) -> None:
        usd = _customer(tenant, currency="USD")

        r = tenant.post(
            "/v1/invoices", {"customer_id": usd["id"], "items": [{"description": "A", "amount": "500"}]}
        )

        assert r.json()["errors"][0]["field"] == "items[0].amount"
        assert r.json()["errors"][0]["code"] == "int_type"

    def test_a_failed_finalization_writes_no_audit_or_event(
        self, tenant: Tenant, container: Container
    ) -> None:
        usd = _customer(tenant, currency="USD")
        inv = _invoice(tenant, usd["id"], {"description": "A", "amount": -100})
        audits, events = _count(container, AuditEvent), _count(container, Event)

        r = tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        assert r.status_code == 422 and r.json()["code"] == "invalid_total"
        assert tenant.get(f"/v1/invoices/{inv['id']}").json()["status"] == "draft"
        assert (_count(container, AuditEvent), _count(container, Event)) == (audits, events)

    def test_a_body_over_the_limit_answers_413(self, tenant: Tenant) -> None:
        r = tenant.post(
            "/v1/invoices",
            content=b"{" + b" " * 2_000_000 + b"}",
            headers={"Content-Type": "application/json"},
        )

        assert r.status_code == 413 and r.json()["code"] == "request_too_large"

    def test_a_draft_update_cannot_grow_metadata_past_50_keys(self, tenant: Tenant) -> None:
        usd = _customer(tenant, currency="USD")
        inv = _invoice(
            tenant, usd["id"], {"description": "A", "amount": 100}, metadata={f"k{i}": "v" for i in range(30)}
        )

        too_many_merged = tenant.patch(
            f"/v1/invoices/{inv['id']}", {"metadata": {f"n{i}": "v" for i in range(21)}}
        )
        just_enough = tenant.patch(
            f"/v1/invoices/{inv['id']}", {"metadata": {f"n{i}": "v" for i in range(20)}}
        )

        assert (too_many_merged.status_code, too_many_merged.json()["code"]) == (422, "metadata_too_large")
        assert too_many_merged.json()["errors"][0]["field"] == "metadata"
        assert just_enough.status_code == 200
        assert len(just_enough.json()["metadata"]) == 50


class TestTimestampsAndNulls:
    def test_timestamps_without_an_offset_are_refused(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})
        tenant.post(f"/v1/invoices/{inv['id']}/finalize")

        r = tenant.post(f"/v1/invoices/{inv['id']}/payments", {"paid_at": "2024-01-05T10:00:00"})
        audit = tenant.get("/v1/audit_events", params={"created_gte": "2024-01-05T10:00:00"})

        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "paid_at")
        assert audit.status_code == 422
        assert tenant.get(f"/v1/invoices/{inv['id']}").json()["amount_paid"] == 0

    def test_null_for_a_required_field_in_an_update_is_refused(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        inv = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})

        r = tenant.patch(f"/v1/invoices/{inv['id']}", {"collection_method": None})

        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "collection_method")

    def test_unknown_currency_names_its_field(self, tenant: Tenant) -> None:
        customer = _customer(tenant)

        r = tenant.post("/v1/invoices", {"customer_id": customer["id"], "currency": "XYZ", "items": []})

        assert (r.status_code, r.json()["code"]) == (422, "unknown_currency")
        assert r.json()["errors"][0]["field"] == "currency"


class TestOrganizationSettings:
    def test_a_new_prefix_numbers_the_next_invoices_without_a_gap(self, tenant: Tenant) -> None:
        customer = _customer(tenant, currency="USD")
        first = _invoice(tenant, customer["id"], {"description": "A", "amount": 1000})
        tenant.post(f"/v1/invoices/{first['id']}/finalize")

        r = tenant.patch(
            "/v1/organization",
            {
                "invoice_prefix": "ACME-",
                "default_net_days": 14,
                "address": {"city": "Austin", "country": "us"},
            },
        )
        second = _invoice(tenant, customer["id"], {"description": "B", "amount": 1000})
        fin = tenant.post(f"/v1/invoices/{second['id']}/finalize").json()

        assert r.status_code == 200, r.text
        assert (r.json()["invoice_prefix"], r.json()["address"]["country"]) == ("ACME-", "US")
        assert fin["number"] == "ACME-000002"
        assert tenant.get("/v1/audit_events", params={"action": "organization.update"}).json()["data"]

    def test_bad_settings_are_refused_and_change_nothing(self, tenant: Tenant) -> None:
        before = tenant.get("/v1/organization").json()

        bad = [
            ({"invoice_prefix": "has space"}, "validation_error"),
            ({"invoice_prefix": None}, "validation_error"),
            ({"default_net_days": -1}, "validation_error"),
            ({"address": {"country": "XX"}}, "invalid_country"),
            ({"tax_ids": [{"type": "eu_vat", "value": "DE000000000"}]}, "invalid_tax_id"),
        ]

        for body, code in bad:
            r = tenant.patch("/v1/organization", body)
            assert (r.status_code, r.json()["code"]) == (422, code), (body, r.text)
        assert tenant.get("/v1/organization").json() == before

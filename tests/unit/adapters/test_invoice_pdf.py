from __future__ import annotations

import io
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from revflow.adapters.pdf import ReportlabPdfRenderer
from revflow.adapters.pdf.invoice_pdf import UNICODE_FONT_CANDIDATES
from revflow.services.ports import DocumentLine, DocumentParty, InvoiceDocument

HAS_UNICODE_FONT = any(os.path.isfile(regular) for regular, _ in UNICODE_FONT_CANDIDATES)


def _invoice(**changes: object) -> InvoiceDocument:
    doc = InvoiceDocument(
        title="Invoice",
        number="INV-000042",
        status="open",
        currency="USD",
        locale="en_US",
        issue_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31),
        seller=DocumentParty(
            name="Acme Inc.",
            email="billing@acme.test",
            address_lines=("1 Main St", "94105 San Francisco", "United States"),
            tax_ids=("US EIN 12-3456789",),
        ),
        buyer=DocumentParty(
            name="Globex GmbH",
            address_lines=("Hauptstr. 1", "10115 Berlin", "Germany"),
            tax_ids=("EU VAT DE123456789",),
        ),
        lines=(DocumentLine("Consulting", Decimal(1), Decimal(50000), 50000),),
        subtotal=50000,
        discount=0,
        tax=0,
        total=50000,
        applied_balance=0,
        amount_paid=0,
        amount_remaining=50000,
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


def _single_line(currency: str, locale: str, amount: int) -> InvoiceDocument:
    return _invoice(
        currency=currency,
        locale=locale,
        lines=(DocumentLine("Consulting", Decimal(1), Decimal(amount), amount),),
        subtotal=amount,
        total=amount,
        amount_remaining=amount,
    )


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text.replace("\xa0", " ").replace("\u202f", " ")


class TestInvoicePdf:
    def test_shows_number_and_total(self) -> None:
        doc = _invoice()

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "INV-000042" in text
        assert "$500.00" in text

    def test_shows_parties_dates_and_status(self) -> None:
        doc = _invoice()

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        for expected in ("Acme Inc.", "billing@acme.test", "94105 San Francisco", "US EIN 12-3456789"):
            assert expected in text
        for expected in ("Globex GmbH", "10115 Berlin", "EU VAT DE123456789"):
            assert expected in text
        assert "Mar 1, 2025" in text
        assert "Mar 31, 2025" in text
        assert "Open" in text

    def test_sets_metadata(self) -> None:
        doc = _invoice()

        metadata = PdfReader(io.BytesIO(ReportlabPdfRenderer().render_invoice(doc))).metadata

        assert metadata is not None
        assert metadata.title == "Invoice INV-000042"
        assert metadata.author == "Acme Inc."

    def test_draft_without_number_says_draft(self) -> None:
        doc = _invoice(title="Draft invoice", number=None, status="draft", issue_date=None)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "Draft invoice" in text
        assert "Draft" in text.replace("Draft invoice", "")

    def test_formats_euro_for_german_locale(self) -> None:
        doc = _single_line("EUR", "de_DE", 123456)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "1.234,56 €" in text
        assert "01.03.2025" in text

    def test_yen_has_no_decimals(self) -> None:
        doc = _single_line("JPY", "en_US", 50000)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "¥50,000" in text
        assert "¥50,000.00" not in text

    def test_dinar_has_three_decimals(self) -> None:
        doc = _single_line("KWD", "en_US", 12345)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "KWD 12.345" in text

    def test_shows_totals_block(self) -> None:
        doc = _invoice(
            discount=5000,
            tax=9100,
            total=54100,
            applied_balance=1000,
            amount_paid=3000,
            amount_remaining=50100,
        )

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        for label in ("Subtotal", "Discount", "Tax", "Total", "Applied customer credit", "Amount paid"):
            assert label in text
        for figure in ("$500.00", "-$50.00", "$91.00", "$541.00", "-$10.00", "$30.00", "$501.00"):
            assert figure in text

    def test_omits_zero_discount_and_credit(self) -> None:
        doc = _invoice()

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "Discount" not in text
        assert "Applied customer credit" not in text

    def test_shows_fractional_unit_price_and_period(self) -> None:
        period = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
        line = DocumentLine("API calls", Decimal(12345), Decimal("0.04"), 494, period=period)
        doc = _invoice(lines=(line,), subtotal=494, total=494, amount_remaining=494)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "12,345" in text
        assert "$0.0004" in text
        assert "$4.94" in text
        assert "Jan 1, 2025 \u2013 Feb 1, 2025" in text

    def test_shows_memo_and_footer(self) -> None:
        doc = _invoice(memo="Thanks for your business", footer="Acme Inc., registered in Delaware")

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "Thanks for your business" in text
        assert "Acme Inc., registered in Delaware" in text

    def test_long_invoice_spans_pages(self) -> None:
        lines = tuple(DocumentLine(f"Seat {i}", Decimal(1), Decimal(1000), 1000) for i in range(60))
        doc = _invoice(lines=lines, subtotal=60000, total=60000, amount_remaining=60000)

        pdf = ReportlabPdfRenderer().render_invoice(doc)

        assert len(PdfReader(io.BytesIO(pdf)).pages) > 1
        assert "Seat 59" in _text(pdf)

    def test_escapes_markup_in_long_descriptions(self) -> None:
        description = "R&D <beta> services " * 30
        doc = _invoice(lines=(DocumentLine(description, Decimal(1), Decimal(50000), 50000),))

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "R&D <beta>" in text

    def test_rupee_invoice_renders(self) -> None:
        doc = _single_line("INR", "en_IN", 123456)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "1,234.56" in text

    @pytest.mark.skipif(not HAS_UNICODE_FONT, reason="no DejaVu Sans on this system")
    def test_rupee_symbol_with_unicode_font(self) -> None:
        doc = _single_line("INR", "en_IN", 123456)

        text = _text(ReportlabPdfRenderer().render_invoice(doc))

        assert "₹1,234.56" in text

    def test_without_unicode_font_uses_iso_code_and_question_marks(self) -> None:
        doc = replace(_single_line("INR", "en_IN", 123456), buyer=DocumentParty(name="Иван"))

        text = _text(ReportlabPdfRenderer(unicode_fonts=()).render_invoice(doc))

        assert "1,234.56 INR" in text
        assert "₹" not in text
        assert "????" in text

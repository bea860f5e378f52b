from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from decimal import Decimal

from pypdf import PdfReader

from revflow.adapters.pdf import ReportlabPdfRenderer
from revflow.services.ports import DocumentLine, DocumentParty, QuoteDocument


def _quote(**changes: object) -> QuoteDocument:
    doc = QuoteDocument(
        title="Quote",
        number="Q-000007",
        status="open",
        currency="USD",
        locale="en_US",
        issue_date=date(2025, 3, 1),
        valid_until=date(2025, 3, 31),
        start=date(2025, 4, 1),
        term="12 months, renews automatically",
        seller=DocumentParty(name="Acme Inc.", email="sales@acme.test"),
        buyer=DocumentParty(name="Globex GmbH", address_lines=("Hauptstr. 1", "10115 Berlin", "Germany")),
        lines=(
            DocumentLine("Platform, per year", Decimal(1), Decimal(1_000_000), 1_000_000),
            DocumentLine("Seats, per year, negotiated price", Decimal(10), Decimal("800.5"), 8005),
        ),
        discount_description="20% off for the first 12 months",
        first_invoice_subtotal=1_008_005,
        first_invoice_discount=201_601,
        first_invoice_total=806_404,
        renewal_total=1_008_005,
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return " ".join(text.replace("\xa0", " ").replace("\u202f", " ").split())  # table cells wrap


class TestQuotePdf:
    def test_shows_number_terms_negotiated_prices_and_both_totals(self) -> None:
        text = _text(ReportlabPdfRenderer().render_quote(_quote()))

        for expected in (
            "Quote",
            "Q-000007",
            "Valid until",
            "Mar 31, 2025",
            "Apr 1, 2025",
            "12 months, renews automatically",
            "Quote for",
            "Globex GmbH",
            "$8.005",  # the negotiated unit price, all its decimals
            "$80.05",
            "Discount: 20% off for the first 12 months",
            "-$2,016.01",
            "First invoice total",
            "$8,064.04",
            "Renewal invoice total",
            "$10,080.05",
        ):
            assert expected in text, expected

    def test_a_draft_says_draft_and_starts_on_acceptance(self) -> None:
        doc = _quote(title="Draft quote", number=None, status="draft", issue_date=None, start=None)

        text = _text(ReportlabPdfRenderer().render_quote(doc))

        assert "Draft quote" in text
        assert "On acceptance" in text
        assert "Draft · Page 1" in text

    def test_without_renewal_or_discount_shows_only_the_first_invoice(self) -> None:
        doc = _quote(
            discount_description=None,
            first_invoice_discount=0,
            first_invoice_total=1_008_005,
            renewal_total=None,
        )

        text = _text(ReportlabPdfRenderer().render_quote(doc))

        assert "Renewal invoice total" not in text
        assert "Discount" not in text
        assert "$10,080.05" in text

    def test_sets_metadata(self) -> None:
        metadata = PdfReader(io.BytesIO(ReportlabPdfRenderer().render_quote(_quote()))).metadata

        assert metadata is not None
        assert (metadata.title, metadata.author) == ("Quote Q-000007", "Acme Inc.")

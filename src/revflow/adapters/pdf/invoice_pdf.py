"""Invoice and quote PDFs with reportlab: an A4 page (or more) with parties, line items and totals.

Amounts are integer minor units, shown with exactly the ISO 4217 number of decimals of the currency
(``Decimal(amount).scaleb(-exponent)``, never float) and the conventions of the document's locale.

Fonts: reportlab's built-in Helvetica only knows cp1252 (€, £, ¥ are fine; ₹, ₩, ₪ or Cyrillic are
not). When a document needs more, the first available Unicode TrueType font from ``unicode_fonts``
is used for the whole document; when there is none, money is shown with the ISO code ("1,234.00 INR")
and any other character Helvetica cannot show becomes "?", so rendering never fails on text.
"""

from __future__ import annotations

import functools
import io
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar
from xml.sax.saxutils import escape

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

from revflow.domain.money import Currency
from revflow.services.ports import DocumentLine, DocumentParty, InvoiceDocument, QuoteDocument

__all__ = ["UNICODE_FONT_CANDIDATES", "ReportlabPdfRenderer"]

#: (regular, bold) TrueType files tried in order when a document needs more than cp1252.
UNICODE_FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
)

#: Unit prices show at most this many decimals beyond the currency's exponent (Stripe's precision for
#: ``unit_amount_decimal`` in minor units), so any valid price is shown exactly.
_UNIT_PRICE_EXTRA_DECIMALS = 12

# Characters babel emits that cp1252 lacks, mapped to ones it has (None drops the character).
_CP1252_SUBSTITUTES = str.maketrans(
    {"\u202f": "\xa0", "\u2009": " ", "\u2212": "-", "\u200e": None, "\u200f": None}
)

# CLDR currency spacing, which babel leaves out: a letter symbol next to a digit gets a no-break space.
_CURRENCY_SPACING = re.compile(r"(?<=[^\W\d])(?=\d)|(?<=\d)(?=[^\W\d])")

_MARGIN = 18 * mm
_FRAME_PADDING = 6  # reportlab's default Frame padding, inside the page margins
_GREY = colors.HexColor("#6b7280")
_RULE = colors.HexColor("#d1d5db")


@dataclass(frozen=True, slots=True)
class _Typeface:
    regular: str
    bold: str
    unicode: bool  # False: cp1252 only


_HELVETICA = _Typeface("Helvetica", "Helvetica-Bold", unicode=False)


class _Unencodable(Exception):
    """Some text of the document cannot be shown with a cp1252 font."""


@functools.cache
def _register_ttf(regular: str, bold: str) -> _Typeface | None:
    """Return the typeface of the two TrueType files, registered with reportlab once; None if missing."""
    if not (os.path.isfile(regular) and os.path.isfile(bold)):
        return None
    faces = []
    for path in (regular, bold):
        name = "revflow-" + os.path.splitext(os.path.basename(path))[0]
        pdfmetrics.registerFont(TTFont(name, path))
        faces.append(name)
    return _Typeface(faces[0], faces[1], unicode=True)


def _unicode_typeface(candidates: Sequence[tuple[str, str]]) -> _Typeface | None:
    """Return the first available Unicode typeface among ``candidates``, or None."""
    for regular, bold in candidates:
        face = _register_ttf(regular, bold)
        if face is not None:
            return face
    return None


def _with_fraction(pattern: str, min_frac: int, max_frac: int) -> str:
    """Return a babel number pattern with its fraction replaced: ``min_frac`` fixed, up to ``max_frac``."""
    fraction = "." + "0" * min_frac + "#" * (max_frac - min_frac) if max_frac else ""
    return re.sub(r"0(?:\.[0#]*)?(?![0#.])", "0" + fraction, pattern)


class ReportlabPdfRenderer:
    """:class:`~revflow.services.ports.PdfRenderer` drawing A4 documents with reportlab.

    ``unicode_fonts`` lists (regular, bold) TrueType files to use when Helvetica's cp1252 is not
    enough; an empty sequence forces the ISO-code / "?" fallback.
    """

    def __init__(self, unicode_fonts: Sequence[tuple[str, str]] = UNICODE_FONT_CANDIDATES) -> None:
        self._unicode_fonts = tuple(unicode_fonts)

    def render_invoice(self, doc: InvoiceDocument) -> bytes:
        """Return the PDF bytes of the invoice ``doc``."""
        return self._render(doc, _InvoiceBuilder, f"Invoice {doc.number or 'Draft'}")

    def render_quote(self, doc: QuoteDocument) -> bytes:
        """Return the PDF bytes of the quote ``doc``."""
        return self._render(doc, _QuoteBuilder, f"Quote {doc.number or 'Draft'}")

    def _render(self, doc: D, kind: type[_Builder[D]], title: str) -> bytes:
        try:
            builder = kind(doc, _HELVETICA, lossy=False)
            story = builder.story()
        except _Unencodable:
            face = _unicode_typeface(self._unicode_fonts)
            builder = kind(doc, face or _HELVETICA, lossy=face is None)
            story = builder.story()
        buffer = io.BytesIO()
        template = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=_MARGIN,
            rightMargin=_MARGIN,
            topMargin=_MARGIN,
            bottomMargin=_MARGIN,
            title=title,
            author=doc.seller.name,
            creator="Revflow",
        )
        template.build(story, onFirstPage=builder.draw_page_number, onLaterPages=builder.draw_page_number)
        return buffer.getvalue()


class _Printable(Protocol):
    """What every printed document has (both :class:`InvoiceDocument` and :class:`QuoteDocument`)."""

    @property
    def number(self) -> str | None: ...
    @property
    def currency(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def seller(self) -> DocumentParty: ...
    @property
    def lines(self) -> tuple[DocumentLine, ...]: ...


D = TypeVar("D", bound=_Printable)


class _Builder(ABC, Generic[D]):
    """Turns one document into flowables with one typeface: the pieces every document shares.

    With a cp1252 typeface and ``lossy`` False, any text it cannot show raises :class:`_Unencodable`;
    with ``lossy`` True, money shows ISO codes and such characters become "?".
    """

    def __init__(self, doc: D, face: _Typeface, *, lossy: bool) -> None:
        self._doc = doc
        self._face = face
        self._lossy = lossy
        self._locale = Locale.parse(doc.locale)
        self._exponent = Currency.of(doc.currency).exponent
        self._width = A4[0] - 2 * (_MARGIN + _FRAME_PADDING)
        self._body = ParagraphStyle("body", fontName=face.regular, fontSize=9, leading=12)
        self._bold = ParagraphStyle("bold", parent=self._body, fontName=face.bold)
        self._small = ParagraphStyle("small", parent=self._body, fontSize=8, leading=10, textColor=_GREY)
        self._right = ParagraphStyle("right", parent=self._body, alignment=TA_RIGHT)
        self._right_bold = ParagraphStyle("right_bold", parent=self._right, fontName=face.bold)
        self._title = ParagraphStyle("title", parent=self._bold, fontSize=20, leading=24)

    # -- text and numbers -------------------------------------------------------------------------

    def _plain(self, text: str) -> str:
        """Return ``text`` with only characters the typeface can show; may raise _Unencodable."""
        text = text.translate(_CP1252_SUBSTITUTES)
        if self._face.unicode:
            return text
        try:
            text.encode("cp1252")
        except UnicodeEncodeError:
            if not self._lossy:
                raise _Unencodable from None
            text = text.encode("cp1252", errors="replace").decode("cp1252")
        return text

    def _para(self, text: str, style: ParagraphStyle) -> Paragraph:
        """Return a Paragraph of the plain ``text`` (XML-escaped, newlines kept)."""
        return Paragraph(escape(self._plain(text)).replace("\n", "<br/>"), style)

    def _currency(self, value: Decimal, max_frac: int) -> str:
        """Return ``value`` (major units) formatted with the locale's currency pattern."""
        if self._lossy:  # no symbol: the ISO code after the plain number
            pattern = _with_fraction(self._locale.decimal_formats[None].pattern, self._exponent, max_frac)
            return f"{format_decimal(value, format=pattern, locale=self._locale)}\xa0{self._doc.currency}"
        pattern = _with_fraction(self._locale.currency_formats["standard"].pattern, self._exponent, max_frac)
        text = format_currency(
            value, self._doc.currency, format=pattern, locale=self._locale, currency_digits=False
        )
        return _CURRENCY_SPACING.sub("\xa0", text)

    def _money(self, minor: int) -> str:
        """Return an amount of minor units formatted with exactly the currency's ISO decimals."""
        return self._currency(Decimal(minor).scaleb(-self._exponent), self._exponent)

    def _unit_price(self, minor: Decimal) -> str:
        """Return a unit price of (possibly fractional) minor units in major units, all decimals kept."""
        return self._currency(minor.scaleb(-self._exponent), self._exponent + _UNIT_PRICE_EXTRA_DECIMALS)

    def _date(self, value: date) -> str:
        """Return ``value`` in the locale's medium date format."""
        return str(format_date(value, format="medium", locale=self._locale))

    # -- blocks -----------------------------------------------------------------------------------

    @abstractmethod
    def story(self) -> list[Any]:
        """Return the flowables of the whole document."""

    def _title_block(self, title: str, facts: Sequence[tuple[str, str | None]]) -> Table:
        """Return ``title`` beside a table of the ``facts`` that have a value."""
        rows = [[self._para(k, self._small), self._para(v, self._right)] for k, v in facts if v is not None]
        meta = Table(rows, colWidths=[30 * mm, 50 * mm], style=[("VALIGN", (0, 0), (-1, -1), "MIDDLE")])
        return Table(
            [[self._para(title, self._title), meta]],
            colWidths=[self._width - 80 * mm, 80 * mm],
            style=_tight([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        )

    def _parties_block(self, buyer_heading: str, buyer: DocumentParty) -> Table:
        """Return the seller and buyer blocks side by side."""
        half = self._width / 2
        cells = [[self._party("From", self._doc.seller), self._party(buyer_heading, buyer)]]
        return Table(cells, colWidths=[half, half], style=_tight([("VALIGN", (0, 0), (-1, -1), "TOP")]))

    def _amounts(self, rows: Sequence[tuple[str, int, bool]], rule_above: str | None) -> Table:
        """Return the right-aligned table of labelled amounts (bold when flagged), ruled above
        ``rule_above``."""
        cells = [
            [
                self._para(label, self._right_bold if strong else self._right),
                self._para(self._money(amount), self._right_bold if strong else self._right),
            ]
            for label, amount, strong in rows
        ]
        style: list[tuple[Any, ...]] = []
        if rule_above is not None:
            at = next(i for i, (label, _, _) in enumerate(rows) if label == rule_above)
            style.append(("LINEABOVE", (0, at), (-1, at), 0.8, colors.black))
        return Table(cells, colWidths=[50 * mm, 45 * mm], hAlign="RIGHT", style=_tight(style))

    def _party(self, heading: str, party: DocumentParty) -> list[Paragraph]:
        """Return the heading, name, email, address lines and tax ids of ``party``."""
        details = [party.email or "", *party.address_lines, *party.tax_ids]
        return [
            self._para(heading, self._small),
            self._para(party.name, self._bold),
            *(self._para(line, self._body) for line in details if line),
        ]

    def _line_row(self, line: DocumentLine) -> list[Any]:
        """Return the table cells of one document line."""
        description: list[Paragraph] = [self._para(line.description, self._body)]
        if line.period:
            start, end = (self._date(moment) for moment in line.period)
            description.append(self._para(f"{start} \u2013 {end}", self._small))
        return [
            description,
            self._para(
                str(format_decimal(line.quantity, locale=self._locale, decimal_quantization=False)),
                self._right,
            ),
            self._para(self._unit_price(line.unit_amount_decimal), self._right),
            self._para(self._money(line.amount), self._right),
        ]

    def _lines(self) -> Table:
        """Return the line items table; its header repeats on every page."""
        header = [self._para(label, self._bold) for label in ("Description",)]
        header += [self._para(label, self._right_bold) for label in ("Qty", "Unit price", "Amount")]
        numbers = [18 * mm, 38 * mm, 40 * mm]
        return Table(
            [header, *(self._line_row(line) for line in self._doc.lines)],
            colWidths=[self._width - sum(numbers), *numbers],
            repeatRows=1,
            style=_tight(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.3, _RULE),
                ]
            ),
        )

    def draw_page_number(self, canvas: Any, template: Any) -> None:
        """Draw "<number> · Page n" at the bottom right of the current page; returns None."""
        label = self._plain(f"{self._doc.number or 'Draft'} · Page {canvas.getPageNumber()}")
        canvas.saveState()
        canvas.setFont(self._face.regular, 8)
        canvas.setFillColor(_GREY)
        canvas.drawRightString(A4[0] - _MARGIN - _FRAME_PADDING, _MARGIN / 2, label)
        canvas.restoreState()


class _InvoiceBuilder(_Builder[InvoiceDocument]):
    """An invoice: parties, line items and totals."""

    def story(self) -> list[Any]:
        """Return the flowables of the whole invoice."""
        doc = self._doc
        story: list[Any] = [self._header(), Spacer(1, 8 * mm), self._parties(), Spacer(1, 8 * mm)]
        story += [self._lines(), Spacer(1, 4 * mm), self._totals()]
        if doc.memo:
            story += [Spacer(1, 6 * mm), self._para(doc.memo, self._body)]
        if doc.footer:
            story += [Spacer(1, 6 * mm), self._para(doc.footer, self._small)]
        return story

    def _header(self) -> Table:
        """Return the title beside the number, status, dates and extra fields."""
        doc = self._doc
        facts: list[tuple[str, str | None]] = [
            ("Invoice number", doc.number or "Draft"),
            ("Status", doc.status.replace("_", " ").capitalize()),
            ("Issue date", self._date(doc.issue_date) if doc.issue_date else None),
            ("Due date", self._date(doc.due_date) if doc.due_date else None),
            *doc.extra.items(),
        ]
        return self._title_block(doc.title, facts)

    def _parties(self) -> Table:
        """Return the seller and buyer blocks side by side."""
        return self._parties_block("Bill to", self._doc.buyer)

    def _totals(self) -> Table:
        """Return subtotal, discount, tax, total, applied credit, amount paid and amount due."""
        doc = self._doc
        rows: list[tuple[str, int, bool]] = [("Subtotal", doc.subtotal, False)]
        if doc.discount:
            rows.append(("Discount", -doc.discount, False))
        rows += [("Tax", doc.tax, False), ("Total", doc.total, True)]
        if doc.applied_balance:
            rows.append(("Applied customer credit", -doc.applied_balance, False))
        rows += [("Amount paid", doc.amount_paid, False), ("Amount due", doc.amount_remaining, True)]
        return self._amounts(rows, rule_above="Total")


class _QuoteBuilder(_Builder[QuoteDocument]):
    """A quote: its terms, the negotiated prices per billing period, the discount, and what the first
    invoice and a renewal come to."""

    def story(self) -> list[Any]:
        """Return the flowables of the whole quote."""
        doc = self._doc
        story: list[Any] = [self._header(), Spacer(1, 8 * mm), self._parties_block("Quote for", doc.buyer)]
        story += [Spacer(1, 8 * mm), self._lines(), Spacer(1, 4 * mm)]
        if doc.discount_description:
            story += [self._para(f"Discount: {doc.discount_description}", self._body), Spacer(1, 2 * mm)]
        story.append(self._totals())
        if doc.memo:
            story += [Spacer(1, 6 * mm), self._para(doc.memo, self._body)]
        if doc.footer:
            story += [Spacer(1, 6 * mm), self._para(doc.footer, self._small)]
        return story

    def _header(self) -> Table:
        """Return the title beside the number, status, validity, start, term and extra fields."""
        doc = self._doc
        facts: list[tuple[str, str | None]] = [
            ("Quote number", doc.number or "Draft"),
            ("Status", doc.status.replace("_", " ").capitalize()),
            ("Issue date", self._date(doc.issue_date) if doc.issue_date else None),
            ("Valid until", self._date(doc.valid_until) if doc.valid_until else None),
            ("Start", self._date(doc.start) if doc.start else "On acceptance"),
            ("Term", doc.term),
            ("Trial", doc.trial),
            *doc.extra.items(),
        ]
        return self._title_block(doc.title, facts)

    def _totals(self) -> Table:
        """Return the first invoice's subtotal, discount and total, and the total of a renewal."""
        doc = self._doc
        rows: list[tuple[str, int, bool]] = [("Subtotal", doc.first_invoice_subtotal, False)]
        if doc.first_invoice_discount:
            rows.append(("Discount", -doc.first_invoice_discount, False))
        rows.append(("First invoice total", doc.first_invoice_total, True))
        if doc.renewal_total is not None:
            rows.append(("Renewal invoice total", doc.renewal_total, False))
        return self._amounts(rows, rule_above="First invoice total")


def _tight(commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Return table style ``commands`` plus zero padding on the outer sides, so tables align."""
    return [*commands, ("LEFTPADDING", (0, 0), (0, -1), 0), ("RIGHTPADDING", (-1, 0), (-1, -1), 0)]

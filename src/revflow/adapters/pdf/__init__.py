"""PDF rendering of billing documents."""

from __future__ import annotations

from revflow.adapters.pdf.invoice_pdf import ReportlabPdfRenderer

__all__ = ["ReportlabPdfRenderer"]

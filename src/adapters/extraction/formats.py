"""The call that reads a file as its type: what an extraction worker runs (it loads every
parser; the service process never imports this module)."""

from __future__ import annotations

from adapters.extraction.docx_text import docx_text
from adapters.extraction.file_types import DOCX, HTML, MARKDOWN, PDF, content_type_of
from adapters.extraction.html_text import html_text
from adapters.extraction.markdown_text import markdown_text, plain_text
from adapters.extraction.pdf_text import pdf_text
from domain.extraction import ExtractedText, FileLimits

__all__ = ["content_type_of", "read_as"]


def read_as(content_type: str, data: bytes, limits: FileLimits) -> ExtractedText:
    """Read `data` as `content_type` (one content_type_of returned)."""
    if content_type == PDF:
        return pdf_text(data, limits)
    if content_type == DOCX:
        return docx_text(data, limits)
    if content_type == HTML:
        return html_text(data)
    if content_type == MARKDOWN:
        return markdown_text(data)
    return plain_text(data)

"""PDF: each page's text layer by pypdf; pages joined by blank lines, where each begins noted."""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from adapters.extraction.text_builder import TextBuilder, Unreadable
from domain.extraction import NO_TEXT, ExtractedText, FileLimits

PDF = "application/pdf"


def pdf_text(data: bytes, limits: FileLimits) -> ExtractedText:
    """The PDF's text, a page at a time; its title from the document information."""
    if b"%PDF-" not in data[:1024]:
        raise Unreadable("not a PDF file (no %PDF- header)")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file's warnings are noise here
    reader = PdfReader(io.BytesIO(data), strict=False)
    _open(reader)
    pages = len(reader.pages)
    if pages > limits.pdf_pages.value:
        raise Unreadable(f"the PDF has {pages} pages: {limits.pdf_pages}")
    builder = TextBuilder()
    for page in reader.pages:
        builder.add_page(page.extract_text() or "")
    if not builder.has_text:
        raise Unreadable(NO_TEXT)
    info = reader.metadata
    title = str(info.title) if info is not None and info.title else None
    return builder.build(PDF, title)


def _open(reader: PdfReader) -> None:
    """Read an encrypted PDF only when it opens without a password (restrictions alone)."""
    if not reader.is_encrypted:
        return
    try:
        opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except (DependencyError, FileNotDecryptedError, NotImplementedError):
        opened = False
    if not opened:
        raise Unreadable("the PDF is encrypted with a password; send it decrypted")

"""PDF: each page's text layer by pypdf; pages joined by blank lines, where each begins noted,
and where each bookmark's heading begins as a section."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from adapters.extraction.file_types import PDF
from adapters.extraction.text_builder import TextBuilder, Unreadable
from domain.extraction import NO_TEXT, ExtractedText, FileLimits

MAX_OUTLINE = 10_000  # bookmarks looked up: a hostile outline may be huge


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
    builder.sections.extend(_outline_offsets(reader, builder.text, [0, *builder.pages]))
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


def _outline_offsets(reader: PdfReader, text: str, page_starts: list[int]) -> list[int]:
    """Where the PDF's bookmarks (its outline) begin in `text`: each entry's title looked up on
    the page it points to (whitespace may differ). Entries not found there are left out."""
    found: set[int] = set()
    pending: list[Any] = [reader.outline]
    seen = 0
    while pending and seen < MAX_OUTLINE:
        entry = pending.pop()
        if isinstance(entry, list):
            pending.extend(reversed(entry))
            continue
        seen += 1
        page = reader.get_destination_page_number(entry)
        words = str(entry.title or "").split()
        if page is None or not words or page >= len(page_starts):
            continue
        end = page_starts[page + 1] if page + 1 < len(page_starts) else len(text)
        pattern = re.compile(r"\s+".join(map(re.escape, words)))
        match = pattern.search(text, page_starts[page], end)
        if match:
            found.add(match.start())
    return sorted(found)

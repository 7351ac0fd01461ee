"""Which reader a file needs (by its extension, else its declared type, else its first bytes),
and the call that reads it: what the extraction child runs."""

from __future__ import annotations

import posixpath

from adapters.extraction.docx_text import DOCX, docx_text
from adapters.extraction.html_text import HTML, html_text
from adapters.extraction.markdown_text import MARKDOWN, TEXT, markdown_text, plain_text
from adapters.extraction.pdf_text import PDF, pdf_text
from domain.errors import UnsupportedFileTypeError
from domain.extraction import ExtractedText, FileLimits

EXTENSIONS = {
    ".pdf": PDF,
    ".html": HTML,
    ".htm": HTML,
    ".docx": DOCX,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".text": TEXT,
}
TYPES = frozenset(EXTENSIONS.values()) | {"application/xhtml+xml", "text/x-markdown"}
SUPPORTED = "PDF, HTML, Word .docx, Markdown or UTF-8 text (.pdf .html .htm .docx .md .txt)"


def content_type_of(name: str, declared: str | None, head: bytes = b"") -> str:
    """The type to read `name` as; UnsupportedFileTypeError for any other.

    The extension decides (browsers and curl often declare application/octet-stream); a name
    without one is read as its declared type, or as a PDF if it begins like one.
    """
    extension = posixpath.splitext(name.lower())[1]
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    kind = (declared or "").split(";")[0].strip().lower()
    if not extension and kind in TYPES:
        return {"application/xhtml+xml": HTML, "text/x-markdown": MARKDOWN}.get(kind, kind)
    if not extension and head.startswith(b"%PDF-"):
        return PDF
    raise UnsupportedFileTypeError(
        name, f"unsupported file type {extension or kind or '(none)'}; send {SUPPORTED}"
    )


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

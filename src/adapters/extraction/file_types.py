"""The file types the extractors read, and which one a file is: light, so the service process
can tell (415) without loading any parser."""

from __future__ import annotations

import posixpath

from domain.errors import UnsupportedFileTypeError

PDF = "application/pdf"
HTML = "text/html"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN = "text/markdown"
TEXT = "text/plain"

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

"""Text extraction: the port that turns an uploaded file's bytes into a document's text.

Files come from clients and are not trusted: an extractor bounds what reading one may cost
(`FileLimits`) and says what is wrong with one it cannot read, never failing otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from itertools import pairwise
from typing import Protocol

from domain.errors import InvalidInputError
from domain.limits import Limit
from domain.model import Layout

NO_TEXT = "no text could be extracted; scanned documents need OCR, which is not supported"


@dataclass(frozen=True)
class ExtractedText:
    """What a file says: its text, its title if it names one, its type, and where its headings
    and pages begin in `text` (`layout`)."""

    text: str
    title: str | None
    content_type: str
    layout: Layout = field(default_factory=Layout)

    def __post_init__(self) -> None:
        for name, offsets in (("sections", self.layout.sections), ("pages", self.layout.pages)):
            increasing = all(a < b for a, b in pairwise(offsets))
            if not increasing or any(not 0 <= each < len(self.text) for each in offsets):
                raise InvalidInputError(f"layout {name} must increase and lie within the text")


@dataclass(frozen=True)
class FileLimits:
    """What one upload, and extracting one file, may cost; each value at least 1.

    `file_bytes` bounds one file, `upload_bytes` and `upload_files` one request;
    `pdf_pages` a PDF; `extracted_bytes` what a compressed file (a DOCX) unpacks to;
    `extraction_seconds` and `extraction_memory_bytes` the process reading one file.
    """

    file_bytes: Limit
    upload_bytes: Limit
    upload_files: Limit
    pdf_pages: Limit
    extracted_bytes: Limit
    extraction_seconds: Limit
    extraction_memory_bytes: Limit

    def __post_init__(self) -> None:
        for each in fields(self):
            limit = getattr(self, each.name)
            if limit.value < 1:
                raise InvalidInputError(f"{limit.name} must be at least 1")


class TextExtractor(Protocol):
    """Reads uploaded files. Thread-safe; each call bounded by the extractor's FileLimits."""

    def content_type(self, name: str, declared_type: str | None = None, head: bytes = b"") -> str:
        """The type `extract` would read the file as (its name's extension, else
        `declared_type`, else its first bytes `head` tell); UnsupportedFileTypeError if none."""
        ...

    def extract(self, name: str, data: bytes, declared_type: str | None = None) -> ExtractedText:
        """The text of the file `name` (its extension and `declared_type`, the part's
        Content-Type, say what it is; the bytes must agree).

        Raises UnsupportedFileTypeError for a type it does not read, FileUnreadableError
        (message: why) for a malformed, encrypted or text-less file or one over a limit.
        """
        ...

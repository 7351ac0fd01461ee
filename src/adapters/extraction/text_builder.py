"""Joins a file's blocks of text into one text, noting where its headings and pages begin."""

from __future__ import annotations

import re

from domain.extraction import ExtractedText
from domain.model import Layout

# NUL and the other C0 controls but tab and newline, and lone surrogates: documents reject them.
_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
SEPARATOR = "\n\n"


class Unreadable(Exception):
    """The file cannot be read; the message says why, for the client."""


def clean(text: str) -> str:
    """`text` with Windows line ends made plain and characters no document may hold dropped."""
    return _UNUSABLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


class TextBuilder:
    """Blocks (paragraphs, headings, pages) joined by blank lines; offsets are the text's."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.sections: list[int] = []
        self.pages: list[int] = []
        self.first_heading: str | None = None

    def add(self, block: str, heading: bool = False) -> None:
        """Append a block (skipped if blank); a heading starts a section."""
        block = clean(block).strip()
        if not block:
            return
        if heading:
            self.sections.append(self._next_offset())
            self.first_heading = self.first_heading or " ".join(block.split())
        self._append(block)

    def add_page(self, text: str) -> None:
        """Append page 1, 2, ...: each page after the first begins a page, even a blank one."""
        if self._parts:
            self.pages.append(self._next_offset())
        self._append(clean(text).strip())

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def has_text(self) -> bool:
        return any(part.strip() for part in self._parts)

    def build(self, content_type: str, title: str | None) -> ExtractedText:
        text = self.text
        if not text.strip():
            raise Unreadable("the file holds no text")
        # A blank last page begins where the text ends: no chunk can lie on it.
        pages = tuple(offset for offset in self.pages if offset < len(text))
        layout = Layout(sections=tuple(sorted(set(self.sections))), pages=pages)
        title = " ".join(title.split()) if title else None
        return ExtractedText(text, title or self.first_heading, content_type, layout)

    def _next_offset(self) -> int:
        return self._length + (len(SEPARATOR) if self._parts else 0)

    def _append(self, block: str) -> None:
        if self._parts:
            self._parts.append(SEPARATOR)
            self._length += len(SEPARATOR)
        self._parts.append(block)
        self._length += len(block)

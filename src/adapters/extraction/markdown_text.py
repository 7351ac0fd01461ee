"""Markdown and plain text: the text as it was written; Markdown's headings by markdown-it-py."""

from __future__ import annotations

from itertools import accumulate

from markdown_it import MarkdownIt

from adapters.extraction.file_types import MARKDOWN, TEXT
from adapters.extraction.text_builder import Unreadable, clean
from domain.extraction import ExtractedText
from domain.model import Layout


def decoded(data: bytes) -> str:
    """UTF-8 (a byte order mark dropped), with characters no document may hold removed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte {error.start})") from None
    text = clean(text)
    if not text.strip():
        raise Unreadable("the file holds no text")
    return text


def plain_text(data: bytes) -> ExtractedText:
    return ExtractedText(decoded(data), None, TEXT)


def markdown_text(data: bytes) -> ExtractedText:
    """The Markdown source itself (what a reader searches for), with where each heading's line
    begins; the title is the first level-1 heading, else the first heading."""
    text = decoded(data)
    tokens = MarkdownIt("commonmark").parse(text)
    # markdown-it counts lines between "\n" only (not str.splitlines' other line ends).
    line_starts = [0, *accumulate(len(line) + 1 for line in text.split("\n"))]
    sections: list[int] = []
    headings: list[tuple[str, str]] = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            offset = line_starts[token.map[0]]
            while offset < len(text) and text[offset].isspace():  # indented up to 3 spaces
                offset += 1
            if not sections or offset > sections[-1]:
                sections.append(offset)
            headings.append((token.tag, tokens[index + 1].content.strip()))
    title = next((words for tag, words in headings if tag == "h1" and words), None)
    title = title or next((words for _, words in headings if words), None)
    return ExtractedText(text, title, MARKDOWN, Layout(sections=tuple(sections)))

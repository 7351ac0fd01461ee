"""HTML: the main content's text by BeautifulSoup (html.parser), a block per paragraph or
heading; navigation, headers, footers, scripts and styles left out."""

from __future__ import annotations

from collections.abc import Iterator

from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    ProcessingInstruction,
    Tag,
)

from adapters.extraction.file_types import HTML
from adapters.extraction.text_builder import TextBuilder
from domain.extraction import ExtractedText

HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCKS = HEADINGS | frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "li", "main", "ol", "p", "pre", "section", "summary",
        "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
# Not the page's content: chrome around it, and what is never shown as text.
LEFT_OUT = (
    "script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
    "iframe", "head", "title", "button", "select",
)  # fmt: skip
NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)


def html_text(data: bytes) -> ExtractedText:
    """The text of the page's <main> (or <article>, or <body>); its <title>, else first heading."""
    try:  # most pages are UTF-8: guessing an encoding from the bytes is slow on a large page
        markup: str | bytes = data.decode("utf-8")
    except UnicodeDecodeError:
        markup = data  # BeautifulSoup reads a <meta charset>, else guesses
    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(LEFT_OUT):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    builder = TextBuilder()
    for block, text in _blocks(root):
        if block.name != "pre":
            text = " ".join(text.split())
        builder.add(text, heading=block.name in HEADINGS)
    return builder.build(HTML, title)


def _blocks(root: Tag) -> Iterator[tuple[Tag, str]]:
    """(block, its text) in document order: each string goes to its nearest block."""
    current: Tag | None = None
    strings: list[str] = []
    for node in root.descendants:
        if not isinstance(node, NavigableString) or isinstance(node, NOT_TEXT):
            continue
        block = next((p for p in node.parents if p.name in BLOCKS), root)
        if block is not current:
            if current is not None:
                yield current, "".join(strings)
            current, strings = block, []
        strings.append(str(node))
    if current is not None:
        yield current, "".join(strings)

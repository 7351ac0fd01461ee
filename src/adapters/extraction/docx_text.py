"""Word .docx: paragraphs and tables in order by python-docx; Heading and Title styles start
sections. The zip is checked first (zip_guard)."""

from __future__ import annotations

import io

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from adapters.extraction.file_types import DOCX
from adapters.extraction.text_builder import TextBuilder
from adapters.extraction.zip_guard import check_zip
from domain.extraction import ExtractedText, FileLimits


def docx_text(data: bytes, limits: FileLimits) -> ExtractedText:
    """The document's body text; its title from the document properties, else first heading."""
    check_zip(data, limits, "DOCX")
    document = docx.Document(io.BytesIO(data))
    builder = TextBuilder()
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            builder.add(block.text, heading=_is_heading(block))
        elif isinstance(block, Table):
            for row in block.rows:
                cells = dict.fromkeys(cell.text.strip() for cell in row.cells)  # merged: once
                builder.add(" | ".join(cell for cell in cells if cell))
    return builder.build(DOCX, document.core_properties.title or None)


def _is_heading(paragraph: Paragraph) -> bool:
    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    return name == "Title" or name.startswith("Heading")

"""Files for the upload tests, made at test time by the libraries that write them (no fixtures
on disk): PDFs by fpdf2, Word files by python-docx, hostile zips by zipfile."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import docx
from fpdf import FPDF

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)


def pdf(pages: Sequence[str], title: str | None = None, password: str | None = None) -> bytes:
    """A PDF with one page of text per item of `pages` (an empty one: a page without text)."""
    document = FPDF()
    if title:
        document.set_title(title)
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        if text:
            document.multi_cell(0, 10, text)
        else:
            document.rect(20, 20, 50, 50)  # drawn, not written: a scan has no text layer either
    if password is not None:
        document.set_encryption(owner_password="owner", user_password=password)
    return bytes(document.output())


def pdf_with_bookmarks(sections: Sequence[tuple[str, str]]) -> bytes:
    """A PDF of (heading, body) sections, a page each, every heading a bookmark."""
    document = FPDF()
    document.set_font("helvetica", size=12)
    for heading, body in sections:
        document.add_page()
        document.start_section(heading)
        document.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        document.multi_cell(0, 10, body, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def word(blocks: Sequence[tuple[str, str]], title: str | None = None) -> bytes:
    """A .docx of (style, text) paragraphs: style "Heading 1", "Title" or "" (Normal)."""
    document = docx.Document()
    if title:
        document.core_properties.title = title
    for style, text in blocks:
        document.add_paragraph(text, style=style or None)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def with_member(container: bytes, name: str, content: bytes) -> bytes:
    """`container` (a zip) with member `name` replaced by `content`."""
    source = zipfile.ZipFile(io.BytesIO(container))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = content if member.filename == name else source.read(member)
            target.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def zip_bomb(unpacked: int) -> bytes:
    """A .docx whose document.xml inflates to `unpacked` bytes (a few KB compressed per MB)."""
    xml = b'<?xml version="1.0"?>' + b" " * (unpacked - 21)
    return with_member(word([("", "small")]), "word/document.xml", xml)


def billion_laughs() -> bytes:
    """A .docx whose document.xml declares nested entities (9 levels of 10: 10**9 "lol"s)."""
    return with_member(word([("", "small")]), "word/document.xml", BILLION_LAUGHS)

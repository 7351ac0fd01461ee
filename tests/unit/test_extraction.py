"""The extractors, in this process: text, title and layout (offsets at the headings and pages
they name) of each type, and the refusals of hostile or unreadable files."""

from __future__ import annotations

import pytest

from adapters.extraction.formats import content_type_of, read_as
from adapters.extraction.text_builder import Unreadable
from domain.errors import UnsupportedFileTypeError
from domain.extraction import NO_TEXT, FileLimits
from domain.limits import Limit
from file_samples import billion_laughs, pdf, pdf_with_bookmarks, word, zip_bomb

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def limits(**values: int) -> FileLimits:
    defaults = {
        "file_bytes": 1 << 26, "upload_bytes": 1 << 28, "upload_files": 100, "pdf_pages": 50,
        "extracted_bytes": 1 << 24, "extraction_seconds": 30, "extraction_memory_bytes": 1 << 31,
    }  # fmt: skip
    defaults.update(values)
    return FileLimits(
        **{name: Limit(value, f"KB_{name.upper()}") for name, value in defaults.items()}
    )


def test_pdf_pages_begin_where_each_page_text_begins():
    pages = ["Cats purr on page one.", "Dogs bark on page two.", "", "Birds sing on page four."]
    extracted = read_as("application/pdf", pdf(pages, title="Animals"), limits())
    text, starts = extracted.text, extracted.layout.pages
    assert extracted.title == "Animals" and extracted.content_type == "application/pdf"
    assert len(starts) == 3  # pages 2, 3 (blank) and 4
    assert text.startswith("Cats purr")
    assert text[starts[0] :].startswith("Dogs bark")
    assert text[starts[2] :].startswith("Birds sing")
    assert starts[0] < starts[1] < starts[2]


def test_pdf_bookmarks_are_sections_where_their_headings_begin():
    sections = [("Getting started", "Install it."), ("Going further", "Tune it. " * 30)]
    extracted = read_as("application/pdf", pdf_with_bookmarks(sections), limits())
    text = extracted.text
    assert [text[start:].split("\n")[0] for start in extracted.layout.sections] == [
        "Getting started",
        "Going further",
    ]
    assert extracted.layout.sections[1] == extracted.layout.pages[0]


def test_pdf_without_a_text_layer_is_refused_as_needing_ocr():
    with pytest.raises(Unreadable, match="scanned documents need OCR") as refused:
        read_as("application/pdf", pdf(["", ""]), limits())
    assert str(refused.value) == NO_TEXT


def test_pdf_with_a_user_password_is_refused():
    with pytest.raises(Unreadable, match="encrypted"):
        read_as("application/pdf", pdf(["secret"], password="letmein"), limits())


def test_pdf_encrypted_without_a_user_password_is_read():
    assert "open" in read_as("application/pdf", pdf(["open"], password=""), limits()).text


def test_pdf_over_the_page_limit_is_refused_naming_the_setting():
    with pytest.raises(Unreadable, match="3 pages: KB_PDF_PAGES is 2"):
        read_as("application/pdf", pdf(["a", "b", "c"]), limits(pdf_pages=2))


def test_a_file_that_only_claims_to_be_a_pdf_is_refused():
    with pytest.raises(Unreadable, match="not a PDF"):
        read_as("application/pdf", b"hello", limits())


def test_html_main_content_keeps_headings_as_sections():
    page = (
        b"<html><head><title>The Page</title><style>p{}</style></head><body>"
        b"<nav>Home | About</nav><header>Site banner</header><main>"
        b"<h1>Cats</h1><p>Cats <b>purr</b>.</p><h2>Care</h2><div>Feed <i>daily</i>.</div>"
        b"</main><footer>(c) 2026</footer><script>var x = 1;</script></body></html>"
    )
    extracted = read_as("text/html", page, limits())
    text, sections = extracted.text, extracted.layout.sections
    assert extracted.title == "The Page"
    assert text == "Cats\n\nCats purr.\n\nCare\n\nFeed daily."
    assert [text[start:].split("\n")[0] for start in sections] == ["Cats", "Care"]


def test_html_without_a_title_is_titled_by_its_first_heading():
    extracted = read_as("text/html", b"<body><p>intro</p><h2>First</h2><p>x</p></body>", limits())
    assert extracted.title == "First"


def test_docx_headings_are_sections_and_its_title_property_the_title():
    blocks = [("Heading 1", "Introduction"), ("", "Some words."), ("Heading 2", "Details")]
    extracted = read_as(DOCX, word([*blocks, ("", "More words.")], title="Report"), limits())
    text, sections = extracted.text, extracted.layout.sections
    assert extracted.title == "Report"
    assert [text[start:].split("\n")[0] for start in sections] == ["Introduction", "Details"]
    assert "More words." in text


def test_docx_without_a_title_property_is_titled_by_its_first_heading():
    extracted = read_as(DOCX, word([("", "lead"), ("Heading 1", "Findings")]), limits())
    assert extracted.title == "Findings"


def test_docx_that_unpacks_past_the_limit_is_refused_before_parsing():
    with pytest.raises(Unreadable, match=r"unpacks to \d+ bytes: KB_EXTRACTED_BYTES is 1000000"):
        read_as(DOCX, zip_bomb(5_000_000), limits(extracted_bytes=1_000_000))


def test_docx_whose_zip_lies_about_a_member_size_is_refused():
    bomb = bytearray(zip_bomb(5_000_000))
    # Declare 100 bytes for document.xml in its local and central headers.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = -1
        while (at := bomb.find(signature, at + 1)) != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if bomb[name_at : name_at + 17] == b"word/document.xml":
                bomb[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    with pytest.raises(Unreadable, match=r"damaged \(word/document\.xml"):
        read_as(DOCX, bytes(bomb), limits())


def test_docx_declaring_entities_is_refused():
    with pytest.raises(Unreadable, match="declares a DTD or entities"):
        read_as(DOCX, billion_laughs(), limits())


def test_a_file_that_only_claims_to_be_a_docx_is_refused():
    with pytest.raises(Unreadable, match="not a DOCX"):
        read_as(DOCX, b"plain words", limits())


def test_markdown_sections_point_at_each_heading_line():
    source = "Intro line\n\n# Cats\n\nPurr.\r\n\n  ## Care\n\nFeed.\n\nSetext\n======\n"
    extracted = read_as("text/markdown", source.encode(), limits())
    text, sections = extracted.text, extracted.layout.sections
    assert extracted.title == "Cats"
    assert "\r" not in text
    assert [text[start:].split("\n")[0] for start in sections] == ["# Cats", "## Care", "Setext"]


def test_plain_text_must_be_utf8():
    assert read_as("text/plain", "café".encode("utf-8-sig"), limits()).text == "café"
    with pytest.raises(Unreadable, match="not UTF-8"):
        read_as("text/plain", "café".encode("latin-1"), limits())


def test_nul_and_control_characters_are_dropped():
    assert read_as("text/plain", b"a\x00b\x07c", limits()).text == "abc"


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("a.PDF", None, "application/pdf"),
        ("page.htm", "application/octet-stream", "text/html"),
        ("notes.md", None, "text/markdown"),
        ("README", "text/plain; charset=utf-8", "text/plain"),
    ],
)
def test_content_type_comes_from_the_extension_then_the_declared_type(name, declared, expected):
    assert content_type_of(name, declared) == expected


def test_a_pdf_without_an_extension_is_known_by_its_first_bytes():
    assert content_type_of("scan", "application/octet-stream", b"%PDF-1.7") == "application/pdf"


@pytest.mark.parametrize("name", ["old.doc", "sheet.xlsx", "picture.png", "noextension"])
def test_other_types_are_unsupported(name):
    with pytest.raises(UnsupportedFileTypeError, match="unsupported file type"):
        content_type_of(name, "application/octet-stream")


def test_html_in_another_encoding_is_read_by_its_meta_charset():
    page = '<meta charset="iso-8859-1"><title>Café</title><p>Crème brûlée.</p>'
    extracted = read_as("text/html", page.encode("latin-1"), limits())
    assert extracted.title == "Café" and extracted.text == "Crème brûlée."

"""Documents with a Layout through the service: chunks along sections, pages on passages."""

import pytest

from domain import Layout, NewDocument, SearchRequest
from domain.errors import InvalidInputError


def words(prefix, count):
    return " ".join(f"{prefix}{i}" for i in range(count))


def book():
    """Three sections of 13, 13 and 30 words (window 16): a heading near every window's end."""
    parts = [words("alpha", 13), words("beta", 13), words("gamma", 30)]
    starts = [0, len(parts[0]) + 2, len(parts[0]) + len(parts[1]) + 4]
    return "\n\n".join(parts), starts


def test_a_document_is_chunked_along_its_sections_and_keeps_its_layout(service, kb):
    text, starts = book()
    layout = Layout(sections=tuple(starts), pages=(starts[2],))
    (stored,) = service.add_documents(kb, [NewDocument(text, id="b", layout=layout)])
    spans = [chunk.span for chunk in stored.chunks]
    assert [span.start for span in spans[:3]] == starts  # each section begins a chunk
    assert spans[0].end == starts[1] and spans[1].end == starts[2]
    assert service.get_document(kb, "b").layout == layout
    (plain,) = service.add_documents(kb, [NewDocument(text, id="p")])
    assert [chunk.span.start for chunk in plain.chunks][1] not in starts
    assert service.get_document(kb, "p").layout == Layout()


def test_a_hit_names_the_page_of_its_passage_and_none_without_pages(service, kb):
    text, starts = book()
    paged = Layout(pages=(starts[1], starts[2]))
    service.add_documents(
        kb,
        [
            NewDocument(text, id="paged", layout=paged),
            NewDocument(text, id="sections", layout=Layout(sections=tuple(starts))),
        ],
    )
    hits = service.search(kb, SearchRequest(query=words("gamma", 12), top_k=2))
    by_id = {hit.id: hit for hit in hits}
    assert by_id["paged"].passage.page == paged.page_of(by_id["paged"].passage.start) == 3
    assert by_id["sections"].passage.page is None
    first = service.search(kb, SearchRequest(query=words("alpha", 12), top_k=2))
    assert {hit.id: hit.passage.page for hit in first} == {"paged": 1, "sections": None}


def test_an_upsert_re_embeds_when_only_the_layout_changes(service, kb):
    text, starts = book()
    layout = Layout(sections=tuple(starts))
    service.add_documents(kb, [NewDocument(text, id="b", layout=layout)])
    before = service.get_document(kb, "b")
    same, created = service.upsert_document(kb, "b", text, {"v": 1}, layout)
    assert not created and same.chunks == before.chunks and same.layout == layout
    replaced, _ = service.upsert_document(kb, "b", text, {"v": 2})
    assert replaced.layout == Layout()
    assert [c.span for c in replaced.chunks] != [c.span for c in before.chunks]


def test_a_metadata_update_keeps_the_layout(service, kb):
    text, starts = book()
    layout = Layout(sections=tuple(starts), pages=(starts[2],))
    service.add_documents(kb, [NewDocument(text, id="b", layout=layout)])
    assert service.update_document_metadata(kb, "b", {"x": 1}).layout == layout
    assert service.get_document(kb, "b").layout == layout


def test_a_layout_beyond_the_text_is_refused_before_anything_is_stored(service, kb):
    with pytest.raises(InvalidInputError, match="beyond the text"):
        service.add_documents(kb, [NewDocument("short text", id="x", layout=Layout(pages=(99,)))])
    assert service.list_documents(kb).items == []

"""bench.structure's books: headings where the layout says, pages at spaces, chunks to sections."""

from bench import beir, structure

from domain.model import Span

CORPUS = [
    beir.CorpusDocument(f"d{i}", f"Title {i}", " ".join(f"w{i}x{j}" for j in range(20 + i)))
    for i in range(7)
]


def test_books_put_each_entry_under_a_heading_at_its_section_offset():
    books = structure.make_books(CORPUS, per_book=3, seed=1, page_chars=50)
    assert [len(book.entry_ids) for book in books] == [3, 3, 1]
    assert sorted(e for book in books for e in book.entry_ids) == [d.id for d in CORPUS]
    for book in books:
        for start, entry_id in zip(book.layout.sections, book.entry_ids):
            number = entry_id[1:]
            assert book.text.startswith(f"## Title {number}\n\n", start)
        assert book.layout.pages and all(book.text[p - 1] == " " for p in book.layout.pages)
        assert all(b - a >= 50 for a, b in zip((0, *book.layout.pages), book.layout.pages))
    assert structure.make_books(CORPUS, 3, 1, 0)[0].layout.pages == ()


def test_a_chunk_belongs_to_the_section_holding_most_of_it():
    (book,) = structure.make_books(CORPUS[:2], per_book=2, seed=3, page_chars=0)
    second = book.layout.sections[1]
    assert structure.section_of(book, Span(second - 5, second + 50)) == book.entry_ids[1]
    assert structure.section_of(book, Span(0, second + 5)) == book.entry_ids[0]

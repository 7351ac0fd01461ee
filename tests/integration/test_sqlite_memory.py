"""The durable repository keeps texts in its file, not in RAM, yet returns them whole."""

import sqlite3
from pathlib import Path

import pytest

from adapters.heap import release_free_memory
from adapters.sqlite.repository import SqliteDocumentRepository
from contracts import make_doc, make_kb, unit_rows
from domain.errors import StorageError

DOCUMENTS = 2000
TEXT_CHARS = 10_000  # 20 MB of text in all


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def text_of(number: int) -> str:
    return (f"document {number} says " * TEXT_CHARS)[:TEXT_CHARS]


def stored_size_mb(repo: SqliteDocumentRepository) -> float:
    vectors = unit_rows(100)
    release_free_memory()
    before = resident_mb()
    for start in range(0, DOCUMENTS, 100):
        batch = [make_doc(f"d{i}", [i + 1], text_of(i)) for i in range(start, start + 100)]
        repo.add_documents("kb", batch, vectors)
    del batch
    release_free_memory()
    return resident_mb() - before


def test_20_mb_of_texts_add_less_than_a_third_of_it_to_the_process_and_come_back(tmp_path):
    path = tmp_path / "kb.sqlite3"
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    grown = stored_size_mb(repo)
    total_mb = DOCUMENTS * TEXT_CHARS / 1e6
    assert grown < total_mb / 3, f"{grown:.1f} MB resident for {total_mb:.0f} MB of text"
    assert repo.get_document("kb", "d7").text == text_of(7)
    assert repo.documents_for_chunks("kb", [8])[8].text == text_of(7)
    repo.close()
    release_free_memory()
    before = resident_mb()
    repo = SqliteDocumentRepository(path)  # a start reads everything but the texts
    release_free_memory()
    grown = resident_mb() - before
    assert grown < total_mb / 3, f"{grown:.1f} MB resident after reopening"
    assert [doc.text for doc in repo.list_documents("kb", 1, "d1998")] == [text_of(1999)]
    repo.close()


def test_a_text_row_deleted_behind_the_service_is_a_storage_error_not_an_empty_text(tmp_path):
    path = tmp_path / "kb.sqlite3"
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    repo.add_documents("kb", [make_doc("a", [1]), make_doc("b", [2])], unit_rows(2))
    other = sqlite3.connect(path)
    with other:
        other.execute("DELETE FROM documents WHERE id = 'a'")
    other.close()
    with pytest.raises(StorageError, match="'a'"):
        repo.get_document("kb", "a")
    assert repo.get_document("kb", "b").text == make_doc("b", [2]).text
    repo.close()

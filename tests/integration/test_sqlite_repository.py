"""The durable repository: the port contract, plus surviving a reopen and refusing foreign files."""

import hashlib
import json
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from adapters.sqlite import texts as sqlite_texts
from adapters.sqlite.repository import SqliteDocumentRepository
from adapters.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from contracts import (
    DocumentRepositoryContract,
    kept_vectors_of,
    make_doc,
    make_kb,
    unit_rows,
)
from domain.digests import content_hash
from domain.errors import StorageError
from domain.model import Layout


class TestSqliteDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self, tmp_path):
        opened = []

        def make():
            opened.append(SqliteDocumentRepository(tmp_path / f"kb{len(opened)}.sqlite3"))
            return opened[-1]

        yield make
        for repository in opened:
            repository.close()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "kb.sqlite3"


def reopen(repository, path):
    repository.close()
    return SqliteDocumentRepository(path)


def test_everything_written_is_there_after_reopening(path):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    a, b = make_doc("a", [1, 2], tag="x"), make_doc("b", [3])
    vectors = unit_rows(3)
    repo.add_documents("kb", [a, b], vectors)
    repo.update_metadata("kb", "b", {"tag": "y"}, b.updated_at)
    repo = reopen(repo, path)
    assert repo.get_document("kb", "a") == a
    assert repo.get_document("kb", "b").metadata == {"tag": "y"}
    labels, kept = kept_vectors_of(repo, "kb")
    assert labels.tolist() == [1, 2, 3]
    assert np.array_equal(kept, vectors)
    assert repo.allocate_chunk_ids(1) == [4]
    repo.close()


def test_an_unpublished_knowledge_base_stays_unpublished_after_reopening(path):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb("new"), building="job-1")
    repo.add_documents("new", [make_doc("a", [1, 2])], unit_rows(2))
    repo.add_knowledge_base(make_kb("kb"))
    repo.add_documents("kb", [make_doc("b", [3])], unit_rows(1))
    repo = reopen(repo, path)
    assert [kb.name for kb in repo.list_knowledge_bases(10)] == ["kb"]
    assert kept_vectors_of(repo, "kb")[0].tolist() == [3]  # loads beside an unpublished one
    assert repo.unpublished_knowledge_bases() == [("new", "job-1")]
    assert repo.remove_unpublished("new")
    repo = reopen(repo, path)
    assert repo.unpublished_knowledge_bases() == []
    query = "SELECT count(*) FROM chunks WHERE kb = 'new'"
    assert sqlite3.connect(path).execute(query).fetchone() == (0,)
    repo.close()


def test_removals_and_replacements_survive_reopening(path):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    repo.add_knowledge_base(make_kb("gone"))
    repo.add_documents("kb", [make_doc("a", [1]), make_doc("b", [2])], unit_rows(2))
    repo.remove_documents("kb", ["a"])
    repo.replace_document("kb", make_doc("b", [3, 4], text="new text here"), unit_rows(2))
    repo.remove_knowledge_base("gone")
    repo = reopen(repo, path)
    assert [d.id for d in repo.list_documents("kb", 10)] == ["b"]
    assert [c.id for c in repo.get_document("kb", "b").chunks] == [3, 4]
    assert kept_vectors_of(repo, "kb")[0].tolist() == [3, 4]
    assert [kb.name for kb in repo.list_knowledge_bases(10)] == ["kb"]
    repo.close()


def test_each_knowledge_base_reloads_its_own_documents_and_vectors(path):
    repo = SqliteDocumentRepository(path)
    for name in ["big", "small"]:
        repo.add_knowledge_base(make_kb(name))
    big, small = unit_rows(4, seed=1), unit_rows(2, seed=2)
    repo.add_documents("big", [make_doc("a", [1, 2]), make_doc("b", [4])], big[:3])
    repo.add_documents("small", [make_doc("a", [3, 6])], small)  # same id, other kb
    repo.add_documents("big", [make_doc("c", [5], tag="x")], big[3:])
    repo = reopen(repo, path)
    for name, labels, vectors in [("big", [1, 2, 4, 5], big), ("small", [3, 6], small)]:
        kept_labels, kept = kept_vectors_of(repo, name)
        assert kept_labels.tolist() == labels
        assert np.array_equal(kept, vectors)
    assert {k: d.id for k, d in repo.documents_for_chunks("big", range(8)).items()} == {
        1: "a", 2: "a", 4: "b", 5: "c"
    }  # fmt: skip
    assert [c.id for c in repo.get_document("small", "a").chunks] == [3, 6]
    assert repo.get_document("big", "c").metadata == {"tag": "x"}
    assert repo.stats("small").chunk_count == 2
    repo.close()


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(path):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"my precious notes\n" * 10)
    with pytest.raises(StorageError, match="not a kb-service database"):
        SqliteDocumentRepository(path)
    assert path.read_bytes() == b"my precious notes\n" * 10


def test_another_applications_sqlite_file_is_refused_and_left_untouched(path):
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="another application"):
        SqliteDocumentRepository(path)
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused_and_left_untouched(path):
    SqliteDocumentRepository(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer kb-service"):
        SqliteDocumentRepository(path)
    assert path.read_bytes() == before


def test_a_second_owner_of_the_same_file_is_refused(path):
    first = SqliteDocumentRepository(path)
    with pytest.raises(StorageError, match="in use by another"):
        SqliteDocumentRepository(path)
    first.close()
    SqliteDocumentRepository(path).close()


def test_the_file_is_in_wal_mode_with_full_sync(path):
    repo = SqliteDocumentRepository(path)
    assert repo._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert repo._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    repo.close()


def test_a_zero_byte_database_file_is_refused_and_left_untouched(path):
    path.parent.mkdir(parents=True)
    path.touch()  # what a truncated file, or a copy that went wrong, leaves
    with pytest.raises(StorageError, match=r"kb\.sqlite3 is empty \(0 bytes\)"):
        SqliteDocumentRepository(path)
    assert path.read_bytes() == b""


def test_a_new_database_appears_whole_under_its_name_with_nothing_left_beside_it(path):
    SqliteDocumentRepository(path).close()
    assert path.stat().st_size > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["kb.sqlite3", "kb.sqlite3.lock"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_creation_cut_short_earlier_is_redone(path):
    path.parent.mkdir(parents=True)
    half_made = path.with_name(path.name + ".new")
    half_made.write_bytes(b"SQLite format 3\x00 and then the power went out")
    SqliteDocumentRepository(path).close()
    assert not half_made.exists()
    SqliteDocumentRepository(path).close()


def stored_document_and_chunks(path, kb="kb", doc_id="a", chunks=2):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb(kb))
    repo.add_documents(kb, [make_doc(doc_id, list(range(1, chunks + 1)))], unit_rows(chunks))
    repo.add_documents(kb, [make_doc("other", [chunks + 1])], unit_rows(1))
    repo.close()


@pytest.mark.parametrize("chunks", [1, 2])
def test_a_chunk_row_deleted_behind_the_service_is_refused_at_start(path, chunks):
    stored_document_and_chunks(path, kb="notes", doc_id="a", chunks=chunks)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM chunks WHERE id = ?", (chunks,))
    db.close()
    with pytest.raises(StorageError, match=r"knowledge base 'notes'.*document 'a'") as refused:
        SqliteDocumentRepository(path)
    assert f"{chunks - 1} chunk" in refused.value.message
    assert f"{chunks} were" in refused.value.message


def first_version_database(path, kb, document, vectors):
    """A file as kb-service wrote it before the chunk count was stored (schema version 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO knowledge_bases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kb.name, kb.model, kb.dimension, kb.created_at.isoformat(), kb.description,
             json.dumps(dict(kb.metadata)), kb.chunking.value, kb.chunk_overlap),
        )  # fmt: skip
        db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kb.name, document.id, document.text, json.dumps(dict(document.metadata)),
             document.created_at.isoformat(), document.updated_at.isoformat(), 0),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            [(chunk.id, kb.name, document.id, chunk.span.start, chunk.span.end, row.tobytes())
             for chunk, row in zip(document.chunks, vectors)],
        )  # fmt: skip
    db.close()


def test_a_database_of_the_first_schema_version_is_migrated_and_loads(path):
    document, vectors = make_doc("a", [1, 2, 3], tag="x"), unit_rows(3)
    first_version_database(path, make_kb(), document, vectors)
    repo = SqliteDocumentRepository(path)
    assert repo.get_document("kb", "a") == document
    labels, kept = kept_vectors_of(repo, "kb")
    assert labels.tolist() == [1, 2, 3] and np.array_equal(kept, vectors)
    repo.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute("DELETE FROM chunks WHERE id = 3")  # the counts were filled in: this shows
    db.close()
    with pytest.raises(StorageError, match="document 'a'"):
        SqliteDocumentRepository(path)


def test_hashes_are_listed_from_ram_after_a_reopen_without_reading_a_text(path, monkeypatch):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    document = make_doc("a", [1], text="kept text", tag="x")
    repo.add_documents("kb", [document], unit_rows(1))
    repo = reopen(repo, path)

    def no_texts(*args):
        raise AssertionError("a hash listing read texts from the file")

    monkeypatch.setattr(sqlite_texts, "read", no_texts)
    (digest,) = repo.list_digests("kb", 10)
    assert (digest.id, digest.content_hash, digest.metadata) == (
        "a",
        document.content_hash,
        {"tag": "x"},
    )
    repo.close()


def test_a_first_version_database_gets_the_content_hashes_of_its_texts(path):
    document = make_doc("a", [1, 2], text="old stored text")
    first_version_database(path, make_kb(), document, unit_rows(2))
    repo = SqliteDocumentRepository(path)
    expected = "sha256:" + hashlib.sha256(b"old stored text").hexdigest()
    assert [d.content_hash for d in repo.list_digests("kb", 10)] == [expected]
    repo.close()


def database_before_layouts(path, kb, document, vectors):
    """A file as kb-service wrote it just before documents had a layout column."""
    before = MIGRATIONS.index(next(m for m in MIGRATIONS if "ADD COLUMN layout" in m))
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.create_function("kb_content_hash", 1, content_hash, deterministic=True)
        for step in MIGRATIONS[:before]:
            db.executescript(step)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {before}")
        db.execute(
            "INSERT INTO knowledge_bases (name, model, dimension, created_at, description, "
            "metadata, chunking, chunk_overlap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kb.name, kb.model, kb.dimension, kb.created_at.isoformat(), kb.description,
             json.dumps(dict(kb.metadata)), kb.chunking.value, kb.chunk_overlap),
        )  # fmt: skip
        db.execute(
            "INSERT INTO documents (kb, id, text, metadata, created_at, updated_at, truncated, "
            "chunk_count, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kb.name, document.id, document.text, json.dumps(dict(document.metadata)),
             document.created_at.isoformat(), document.updated_at.isoformat(), 0,
             len(document.chunks), document.content_hash),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            [(chunk.id, kb.name, document.id, chunk.span.start, chunk.span.end, row.tobytes())
             for chunk, row in zip(document.chunks, vectors)],
        )  # fmt: skip
    db.close()


def test_layouts_survive_a_reopen_and_a_file_from_before_layouts_migrates(path):
    old = make_doc("a", [1, 2], tag="x")
    database_before_layouts(path, make_kb(), old, unit_rows(2))
    repo = SqliteDocumentRepository(path)
    assert repo.get_document("kb", "a") == old and old.layout == Layout()
    paged = replace(make_doc("b", [3]), layout=Layout(sections=(0, 5), pages=(5,)))
    repo.add_documents("kb", [paged], unit_rows(1))
    repo.update_metadata("kb", "b", {"n": 1}, paged.updated_at)
    repo = reopen(repo, path)
    assert repo.get_document("kb", "b").layout == paged.layout
    assert repo.get_document("kb", "a") == old
    assert repo.documents_for_chunks("kb", [3])[3].metadata == {"n": 1}
    repo.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        stored = dict(db.execute("SELECT id, layout FROM documents").fetchall())
    db.close()
    assert stored == {"a": None, "b": '{"sections": [0, 5], "pages": [5]}'}


SPAN_SCAN = "SELECT kb, document_id, id, start, stop FROM chunks ORDER BY kb, document_id, id"


def test_a_start_reads_the_chunk_spans_from_their_own_index_and_not_one_vector(path):
    stored_document_and_chunks(path, chunks=3)
    with sqlite3.connect(path) as db:
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'chunks' AND type = 'index'"
        )
        assert {name for (name,) in indexes if not name.startswith("sqlite_")} == {"chunks_spans"}
        (*_, plan), *_ = db.execute(f"EXPLAIN QUERY PLAN {SPAN_SCAN}").fetchall()
    db.close()
    assert plan == "SCAN chunks USING COVERING INDEX chunks_spans"  # no sort, no table read


def test_a_file_from_before_the_span_index_gets_it_and_loads_the_same(path):
    before = next(i for i, step in enumerate(MIGRATIONS) if "chunks_spans" in step)
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    documents = [make_doc("b", [1, 2], tag="x"), make_doc("a", [3]), make_doc("c", [4, 5, 6])]
    repo.add_documents("kb", documents, unit_rows(6))
    repo.close()
    with sqlite3.connect(path) as db:  # as kb-service left it before chunks_spans
        db.execute("DROP INDEX chunks_spans")
        db.execute("CREATE INDEX chunks_by_document ON chunks(kb, document_id)")
        db.execute(f"PRAGMA user_version = {before}")
    db.close()
    repo = SqliteDocumentRepository(path)
    assert repo.list_documents("kb", 10) == sorted(documents, key=lambda doc: doc.id)
    assert {k: d.id for k, d in repo.documents_for_chunks("kb", range(8)).items()} == {
        1: "b", 2: "b", 3: "a", 4: "c", 5: "c", 6: "c"
    }  # fmt: skip
    repo.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert (
            db.execute(f"EXPLAIN QUERY PLAN {SPAN_SCAN}")
            .fetchall()[-1][-1]
            .endswith("COVERING INDEX chunks_spans")
        )
    db.close()


def test_chunk_rows_of_no_document_are_refused_at_start(path):
    stored_document_and_chunks(path, kb="notes", doc_id="a", chunks=1)
    with sqlite3.connect(path) as db:  # foreign keys are off in this connection
        db.executemany(
            "INSERT INTO chunks VALUES (?, 'notes', 'ghost', 0, 1, ?)",
            [(label, unit_rows(1)[0].tobytes()) for label in (8, 9)],
        )
    db.close()
    with pytest.raises(StorageError, match=r"knowledge base 'notes'.*document 'ghost'") as refused:
        SqliteDocumentRepository(path)
    assert "has 2 chunk row(s) but 0 were stored" in refused.value.message


def test_metadata_of_thousands_of_documents_reloads_each_with_its_own(path):
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    values = [{}, {"n": -0.0}, {"s": "\u00e9\ud800"}, {"tags": ["a", 1.5, True]}]
    documents = [
        replace(make_doc(f"d{i:05}", [i + 1]), metadata=values[i % 4] | {"i": i} if i % 4 else {})
        for i in range(5000)  # more than one batch of rows read at start (scans.BATCH)
    ]
    repo.add_documents("kb", documents, unit_rows(5000))
    repo = reopen(repo, path)
    kept = repo.list_documents("kb", 5000)
    assert [(d.id, d.metadata) for d in kept] == [(d.id, d.metadata) for d in documents]
    assert repr(repo.list_digests("kb", 1, after="d04996")[0].metadata) == "{'n': -0.0, 'i': 4997}"
    repo.close()

"""The durable repository: the port contract, plus surviving a reopen and refusing foreign files."""

import sqlite3

import numpy as np
import pytest

from adapters.sqlite_repository import SqliteDocumentRepository
from adapters.sqlite_schema import SCHEMA_VERSION
from contracts import DocumentRepositoryContract, make_doc, make_kb, unit_rows
from domain.errors import StorageError


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
    labels, kept = repo.load_vectors("kb")
    assert labels.tolist() == [1, 2, 3]
    assert np.array_equal(kept, vectors)
    assert repo.allocate_chunk_ids(1) == [4]
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
    assert repo.load_vectors("kb")[0].tolist() == [3, 4]
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
        kept_labels, kept = repo.load_vectors(name)
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

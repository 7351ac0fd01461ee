"""A FAISS index keeps a copy of itself beside the SQLite file, so a restart takes it back
instead of rebuilding; the catalog brings the copy up to date from the file (the journal)."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import pytest
from test_compressed_knowledge_base import add, answers, assert_same, text

from adapters.faiss import kept as faiss_kept
from adapters.faiss.index import FaissVectorIndex
from adapters.sqlite.repository import SqliteDocumentRepository
from adapters.sqlite.vectors import SqliteVectorStore
from contracts import make_doc, make_kb, unit_rows
from domain.ports import Labels, by_dimension
from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseService
from fakes import FakeEmbedder

ANN, COMPRESS = 40, 150


class Stack:
    """A service over a SQLite file whose FAISS indexes keep a copy in `folder`."""

    def __init__(self, folder: Path, compress: int = COMPRESS) -> None:
        self.path = folder / "kb.sqlite3"
        self.kept = folder / "kb.faiss"
        self.compress = compress
        self.repository = SqliteDocumentRepository(self.path)
        self.store = SqliteVectorStore(self.path)
        self.indexes: list[FaissVectorIndex] = []
        self.loaded: list[Labels | None] = []  # the `labels` of every load_vectors call
        load_vectors = self.repository.load_vectors

        def spied(kb, labels=None):
            self.loaded.append(labels)
            return load_vectors(kb, labels)

        self.repository.load_vectors = spied  # type: ignore[method-assign]
        self.service = KnowledgeBaseService(
            FakeEmbedder(), self.repository, by_dimension(self.make)
        )

    def make(self, dimension: int) -> FaissVectorIndex:
        index = FaissVectorIndex(dimension, ANN, self.compress, store=self.store, kept=self.kept)
        self.indexes.append(index)
        return index

    def settled(self) -> FaissVectorIndex:
        index = self.indexes[-1]
        assert index.wait_for_rebuild(timeout=20)
        return index

    def close(self, shutdown: bool = True) -> None:
        """Stop; without `shutdown` as a killed process does: no last copy written."""
        if shutdown:
            for index in self.indexes:
                index.close()
        self.store.close()
        self.repository.close()


@pytest.fixture
def stack(tmp_path):
    made = Stack(tmp_path)
    made.service.create_knowledge_base("kb")
    yield made
    made.close(shutdown=False)


def restarted(stack: Stack) -> Stack:
    again = Stack(stack.path.parent, stack.compress)
    assert again.service.load() == 1
    return again


def test_a_restart_takes_the_copy_back_and_reads_only_what_changed_since(stack):
    add([stack.service], 0, 300)
    assert stack.settled().compressed
    assert stack.kept.is_file()  # written once the rebuild was swapped in
    add([stack.service], 300, 10)  # after the copy: the journal has them, the copy not
    stack.service.delete_documents("kb", ["d0", "d1", "d2"])
    stack.service.upsert_document("kb", "d5", "w1 w2 w3 changed", {"n": 5})
    before = answers(stack.service)
    stack.close(shutdown=False)  # killed: the copy is 14 changes behind
    again = restarted(stack)
    try:
        index = again.settled()
        assert index.compressed and not index.rebuilding and len(index) == 307
        assert len(again.loaded) == 1 and len(again.loaded[0]) == 11  # 10 added + d5 anew
        assert_same(answers(again.service), before)
        assert again.service.search("kb", SearchRequest(query=text(305), top_k=1))[0].id == "d305"
    finally:
        again.close()


def test_a_clean_shutdown_writes_the_changes_so_the_next_start_reads_no_vector(stack):
    add([stack.service], 0, 300)
    stack.settled()
    stack.service.delete_documents("kb", ["d7"])
    before = answers(stack.service)
    stack.close()  # shutdown: the copy is written again, one change behind
    again = restarted(stack)
    try:
        assert again.loaded == []
        assert_same(answers(again.service), before)
    finally:
        again.close()


def test_without_a_copy_the_start_rebuilds_and_keeps_one(stack):
    add([stack.service], 0, 300)
    stack.settled()
    before = answers(stack.service)
    stack.close(shutdown=False)
    stack.kept.unlink()
    again = restarted(stack)
    try:
        assert again.loaded == [None]  # every vector, streamed
        index = again.settled()
        assert index.compressed
        assert_same(answers(again.service), before)
        index.close()  # waits for the copy written in the background after the load
        assert again.kept.is_file()
    finally:
        again.close()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other dimension"])
def test_a_copy_that_does_not_fit_is_deleted_and_the_index_rebuilt(stack, damage, caplog):
    add([stack.service], 0, 300)
    stack.settled()
    before = answers(stack.service)
    stack.close(shutdown=False)
    if damage == "truncated":
        stack.kept.write_bytes(stack.kept.read_bytes()[:5000])
    elif damage == "garbage":
        stack.kept.write_bytes(b"not an index " * 100)
    else:
        faiss.write_index(faiss.IndexIVFFlat(faiss.IndexFlatIP(4), 4, 1), str(stack.kept))
    with caplog.at_level(logging.WARNING, logger="adapters.faiss.kept"):
        again = restarted(stack)
    try:
        assert "ignoring the kept vector index" in caplog.text
        assert again.loaded == [None]
        assert_same(answers(again.service), before)
    finally:
        again.close()


def test_a_deleted_knowledge_base_takes_its_copy_along_and_a_new_one_starts_afresh(stack):
    add([stack.service], 0, 300)
    stack.settled()
    assert stack.kept.is_file()
    stack.service.delete_knowledge_base("kb")
    assert not stack.kept.exists()
    stack.indexes[0].close()  # a write after the deletion must not bring it back
    assert not stack.kept.exists()


def test_a_failed_write_keeps_the_old_copy_and_leaves_no_temporary_file(stack, monkeypatch):
    add([stack.service], 0, 300)
    index = stack.settled()
    old = stack.kept.read_bytes()

    def full_disk(built, path):
        Path(path).write_bytes(b"half")
        raise RuntimeError("write error: No space left on device")

    monkeypatch.setattr(faiss_kept.faiss, "write_index", full_disk)
    stack.service.delete_documents("kb", ["d1"])
    index.close()  # due: one change; the write fails with a warning, nothing raised
    assert stack.kept.read_bytes() == old
    assert [p.name for p in stack.kept.parent.iterdir() if p.suffix == ".tmp"] == []
    monkeypatch.undo()  # room again: the change is still due, and written at the next chance
    index.close()
    assert faiss.read_index(str(stack.kept)).ntotal == 299


def test_many_changes_write_a_new_copy_in_the_background(stack, monkeypatch):
    monkeypatch.setattr(faiss_kept, "MIN_SAVE_CHANGES", 20)
    add([stack.service], 0, 300)
    index = stack.settled()
    first = stack.kept.stat().st_mtime_ns
    add([stack.service], 300, 30)
    writer = index._kept._writer  # type: ignore[union-attr]
    if writer is not None:
        writer.join(20)
    assert stack.kept.stat().st_mtime_ns != first
    assert faiss.read_index(str(stack.kept)).ntotal == 330


def test_an_index_back_to_exact_search_drops_its_copy(stack):
    add([stack.service], 0, 100)
    assert stack.settled().approximate and stack.kept.is_file()
    stack.service.delete_documents("kb", [f"d{n}" for n in range(90)])  # 10: below ANN / 2
    assert not stack.settled().approximate
    assert not stack.kept.exists()


def test_a_compressed_copy_is_not_taken_back_without_a_file_to_re_score_from(tmp_path):
    index = FaissVectorIndex(8, 2, 2, store=None, kept=tmp_path / "x.faiss")
    rows = unit_rows(200, dim=8)
    sample = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(8), 8, 4, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    sample.train(rows)
    sample.set_direct_map_type(faiss.DirectMap.Hashtable)
    faiss.write_index(sample, str(tmp_path / "x.faiss"))
    assert index.resume().tolist() == [] and not (tmp_path / "x.faiss").exists()


def test_labels_of_removed_chunks_are_never_handed_out_again_after_a_restart(tmp_path):
    path = tmp_path / "kb.sqlite3"
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    labels = repo.allocate_chunk_ids(3)
    repo.add_documents("kb", [make_doc("a", labels)], unit_rows(3))
    repo.remove_documents("kb", ["a"])
    repo.close()
    repo = SqliteDocumentRepository(path)
    try:
        assert repo.allocate_chunk_ids(1)[0] > max(labels)
    finally:
        repo.close()


def test_a_writer_killed_half_way_leaves_the_old_copy_whole(stack, monkeypatch):
    add([stack.service], 0, 300)
    index = stack.settled()
    whole = stack.kept.read_bytes()

    def killed(built, path):  # the process dies half-way through writing the new copy
        Path(path).write_bytes(whole[: len(whole) // 2])
        raise SystemExit("killed")

    monkeypatch.setattr(faiss_kept.faiss, "write_index", killed)
    stack.service.delete_documents("kb", ["d1"])
    with pytest.raises(SystemExit):
        index.close()
    assert stack.kept.read_bytes() == whole  # the half is only ever the temporary file
    assert stack.kept.with_name(stack.kept.name + ".tmp").exists()  # swept at the next start


def test_thresholds_changed_since_the_copy_apply_at_start(stack):
    add([stack.service], 0, 300)
    assert stack.settled().compressed
    before = answers(stack.service)
    stack.close()
    stack.compress = 1000  # KB_COMPRESS_THRESHOLD raised: float32 lists again
    again = restarted(stack)
    try:
        index = again.settled()
        assert index.approximate and not index.compressed
        assert_same(answers(again.service), before)
    finally:
        again.close()

"""bench.scale's streamed restart corpus: the rows, exact truth and data dir of the whole."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import pytest
from bench import scale, scale_data, scale_restart
from bench.restart import DATABASE_FILE, BenchError

from adapters.sqlite.repository import SqliteDocumentRepository
from contracts import kept_vectors_of
from model_folder import l6_folder


def unit_rows(count: int, dimension: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def streamed(pool: np.ndarray, count: int, noise: float = 0.05) -> np.ndarray:
    blocks = list(scale_data.scaled_blocks(pool, count, noise))
    assert [first for first, _ in blocks] == list(range(0, count, scale_data.BLOCK))
    return np.concatenate([block for _, block in blocks])


@pytest.mark.parametrize("count", [1, 499, 500, 501, 16_385, 65_536, 65_537, 2 * 65_536 + 1])
def test_streamed_blocks_are_bit_for_bit_the_rows_scaled_returns(count: int) -> None:
    pool = unit_rows(500, 16, seed=1)
    assert np.array_equal(streamed(pool, count), scale.scaled(pool, count, 0.05))


def test_streamed_blocks_match_at_the_real_dimension() -> None:
    pool = unit_rows(3000, 384, seed=2)
    assert np.array_equal(streamed(pool, 70_000, 0.07), scale.scaled(pool, 70_000, 0.07))


@pytest.mark.parametrize("count", [10, 16_385, 40_000])
def test_the_running_top_10_is_exact_search_over_every_row(count: int) -> None:
    pool, queries = unit_rows(2000, 32, seed=3), unit_rows(25, 32, seed=4)
    top = scale_data.RunningTop(queries)
    for first, block in scale_data.scaled_blocks(pool, count, 0.05):
        top.add(first, block)
    _, expected = faiss.knn(
        queries, scale.scaled(pool, count, 0.05), 10, metric=faiss.METRIC_INNER_PRODUCT
    )
    assert np.array_equal(top.rows, expected)


def test_ids_of_rows_are_the_ids_in_row_order() -> None:
    ids = scale_data.document_ids()
    in_order = [next(ids) for _ in range(1000)]
    assert len(set(in_order)) == 1000
    assert scale_data.ids_of_rows([999, 0, 17]) == {
        0: in_order[0],
        17: in_order[17],
        999: in_order[999],
    }


def test_block_texts_continue_where_the_last_block_stopped() -> None:
    pool = ["a", "b", "c"]
    assert scale_data.block_texts(pool, 0, 4) + scale_data.block_texts(pool, 4, 7) == [
        "a", "b", "c", "a (round 2)", "b (round 2)", "c (round 2)", "a (round 3)",
    ]  # fmt: skip
    assert scale.scaled_texts(pool, 7) == scale_data.block_texts(pool, 0, 7)


def table(path: Path, query: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path / DATABASE_FILE)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


@pytest.mark.model
def test_plain_sqlite_writes_the_rows_the_repository_writes(tmp_path: Path) -> None:
    pool, queries = unit_rows(7000, 384, seed=5), unit_rows(5, 384, seed=6)
    texts = [f"gloss {i}" for i in range(len(pool))]
    now, count = datetime(2026, 1, 2, tzinfo=UTC), 20_000
    for name, writer_class in scale_data.WRITERS.items():
        writer = writer_class(tmp_path / name, l6_folder(), 384, now)
        rows = scale_data.stream_corpus(pool, texts, queries, count, 0.05, writer)
        writer.close()
        scale_data.check_counts(tmp_path / name, count)
    for query in (
        "SELECT * FROM knowledge_bases",
        "SELECT * FROM documents ORDER BY id",
        "SELECT * FROM chunks ORDER BY id",
        "SELECT * FROM counters",
    ):
        assert table(tmp_path / "sqlite", query) == table(tmp_path / "repository", query)
    repository = SqliteDocumentRepository(tmp_path / "sqlite" / DATABASE_FILE)
    try:
        labels, vectors = kept_vectors_of(repository, scale_data.KB_NAME)
        ids = scale_data.ids_of_rows([0, count - 1])
        assert repository.get_document(scale_data.KB_NAME, ids[count - 1]).text == (
            f"gloss {(count - 1) % len(pool)} (round 3)"
        )
        assert repository.get_document(scale_data.KB_NAME, ids[0]).metadata == {"n": 0}
    finally:
        repository.close()
    assert np.array_equal(labels, np.arange(1, count + 1))
    assert np.array_equal(vectors, scale.scaled(pool, count, 0.05))
    assert rows.shape == (5, 10)
    with pytest.raises(BenchError, match="expected 20001"):
        scale_data.check_counts(tmp_path / "sqlite", count + 1)


def test_sizes_too_large_for_one_process_point_at_the_restart_size(capsys) -> None:
    with pytest.raises(SystemExit):
        scale.parse_args(["--sizes", "100000,3000000", "--model", "unused"])
    assert "--restart-size" in capsys.readouterr().err
    assert scale.parse_args(["--sizes", "", "--model", "m"]).sizes == []


def test_settle_waits_until_the_kept_copies_stop_changing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(scale_restart, "QUIET_SECONDS", 1.5)
    kept = tmp_path / scale_restart.INDEXES / "kb"
    kept.mkdir(parents=True)
    (tmp_path / DATABASE_FILE).write_bytes(b"x" * 10)

    def write() -> None:
        for size in range(1, 5):
            (kept / "vectors.faiss").write_bytes(b"v" * size * 100)
            time.sleep(0.7)

    writer = threading.Thread(target=write)
    started = time.monotonic()
    writer.start()
    waited = scale_restart.settle(tmp_path, timeout=60)
    writer.join()
    assert waited >= 2.1 + 1.5 - 0.5 and time.monotonic() - started < 30
    assert scale_restart.disk(tmp_path) == {
        "sqlite_bytes": 10,
        "indexes_bytes": 400,
        "disk_bytes": 410,
    }

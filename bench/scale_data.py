"""The scale bench's corpus as a stream: vectors, texts, ids, exact truth and the data dir.

At 10,000,000 chunks the vectors alone are 15 GB of float32 and the texts and ids a few GB of
Python strings: held at once, the bench would take most of a 24 GB machine from the server it
measures. Everything here works on one block of `BLOCK` rows at a time, in the seeded order of
`bench.scale.scaled` (the same rows, bit for bit), so the bench process stays at the pool of
real embeddings plus a block, whatever the count.

The data dir is written either with plain sqlite3 (the default: `DirectWriter`) or through
`SqliteDocumentRepository` (`RepositoryWriter`, as the service writes). Both give the same rows:
the knowledge base is created by the repository (which creates and migrates the file), and the
direct writer inserts documents with the repository's own `document_row` and chunks exactly as
`SqliteDocumentRepository._insert` does. The repository path keeps every document in its RAM
cache and commits each batch with FULL sync; the direct one has no cache and commits a block
at a time without waiting for the disk (a bench file, rebuilt when in doubt).
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from adapters.embedding.model_fingerprint import identify
from adapters.sqlite import rows as sqlite_rows
from adapters.sqlite.repository import SqliteDocumentRepository
from bench.restart import DATABASE_FILE, BenchError
from domain.model import Chunk, Document, KnowledgeBase, Span

KB_NAME = "scale-bench"
SEED = 20240501
BLOCK = 16384  # rows a block: a quarter of `bench.scale.scaled`'s, whose noise it draws alike
K = 10


def scaled_blocks(
    pool: np.ndarray, count: int, noise: float, seed: int = SEED
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of the `count` rows `bench.scale.scaled` returns, block by block.

    `pool`, then noisy re-normalised copies of it. The generator's normal draws are one
    stream however they are split, and each row's arithmetic is the same as in `scaled`, so
    smaller blocks give identical rows (tests/unit/test_scale_bench.py checks it)."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, BLOCK):
        rows = np.arange(start, min(count, start + BLOCK))
        block = pool[rows % len(pool)]  # a copy: fancy indexing
        copies = rows >= len(pool)
        block[copies] += rng.standard_normal((int(copies.sum()), pool.shape[1])) * noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield start, block


def block_texts(pool: Sequence[str], start: int, stop: int) -> list[str]:
    """The texts of rows start..stop: the glosses, then " (round k)" copies of them."""
    size = len(pool)
    return [
        pool[i % size] + (f" (round {i // size + 1})" if i >= size else "")
        for i in range(start, stop)
    ]


def document_ids(seed: int = SEED) -> Iterator[str]:
    """The uuid4-hex ids of the documents, in row order (seeded: a reused dir matches)."""
    id_rng = random.Random(seed)
    while True:
        yield uuid.UUID(int=id_rng.getrandbits(128), version=4).hex


def ids_of_rows(rows: Iterable[int], seed: int = SEED) -> dict[int, str]:
    """The ids of some rows, without making the id of every row before them."""
    wanted = set(rows)
    id_rng = random.Random(seed)
    found: dict[int, str] = {}
    for row in range(max(wanted, default=-1) + 1):
        bits = id_rng.getrandbits(128)
        if row in wanted:
            found[row] = uuid.UUID(int=bits, version=4).hex
    return found


class RunningTop:
    """The exact top 10 by inner product of each query over rows seen block by block."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
        self.rows = np.full((len(queries), K), -1, dtype=np.int64)

    def add(self, start: int, block: np.ndarray) -> None:
        """Merge a block's best 10 (numpy's matmul: 3x faster than faiss.knn here)."""
        scores = self.queries @ block.T
        if scores.shape[1] > K:
            best = np.argpartition(-scores, K, axis=1)[:, :K]
            scores = np.take_along_axis(scores, best, axis=1)
        else:
            best = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        both_scores = np.hstack([self.scores, scores])
        both_rows = np.hstack([self.rows, best + start])
        order = np.argsort(-both_scores, axis=1, kind="stable")[:, :K]
        self.scores = np.take_along_axis(both_scores, order, axis=1)
        self.rows = np.take_along_axis(both_rows, order, axis=1)


def model_fingerprint(model: str, dimension: int) -> str:
    """What the server will find its model to be: a knowledge base without it is refused (409)."""
    config = json.loads((Path(model) / "sentence_bert_config.json").read_text())
    return identify(model, Path(model), dimension, int(config["max_seq_length"])).fingerprint


def documents_of(
    texts: Sequence[str], ids: Iterator[str], labels: Sequence[int], first: int, now: datetime
) -> list[Document]:
    """One document of one chunk per text; metadata {"n": row}."""
    return [
        Document(next(ids), text, {"n": first + i}, now, now, (Chunk(label, Span(0, len(text))),))
        for i, (text, label) in enumerate(zip(texts, labels, strict=True))
    ]


class Writer(Protocol):
    def write(self, first: int, texts: Sequence[str], vectors: np.ndarray) -> None: ...

    def close(self) -> None: ...


class RepositoryWriter:
    """Through `SqliteDocumentRepository.add_documents`, as the service writes (RAM grows)."""

    def __init__(self, path: Path, model: str, dimension: int, now: datetime) -> None:
        self.repository = SqliteDocumentRepository(path / DATABASE_FILE)
        self.repository.add_knowledge_base(
            KnowledgeBase(
                name=KB_NAME,
                model=model,
                dimension=dimension,
                created_at=now,
                fingerprint=model_fingerprint(model, dimension),
            )
        )
        self.ids = document_ids()
        self.now = now

    def write(self, first: int, texts: Sequence[str], vectors: np.ndarray) -> None:
        labels = self.repository.allocate_chunk_ids(len(texts))
        self.repository.add_documents(
            KB_NAME, documents_of(texts, self.ids, labels, first, self.now), vectors
        )

    def close(self) -> None:
        self.repository.close()


class DirectWriter:
    """Plain sqlite3 on a file the repository created: the repository's rows, no RAM cache."""

    def __init__(self, path: Path, model: str, dimension: int, now: datetime) -> None:
        RepositoryWriter(path, model, dimension, now).close()  # creates, migrates, adds the kb
        self.db = sqlite3.connect(path / DATABASE_FILE, isolation_level=None)
        self.db.execute("PRAGMA synchronous = OFF")  # this connection only; the file keeps WAL
        (top,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        self.next_label = int(top) + 1
        self.ids = document_ids()
        self.now = now

    def write(self, first: int, texts: Sequence[str], vectors: np.ndarray) -> None:
        labels = range(self.next_label, self.next_label + len(texts))
        self.next_label += len(texts)
        documents = documents_of(texts, self.ids, labels, first, self.now)
        chunks = [(doc.id, chunk) for doc in documents for chunk in doc.chunks]
        blobs = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                f"INSERT INTO documents ({sqlite_rows.DOCUMENT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [sqlite_rows.document_row(KB_NAME, doc) for doc in documents],
            )
            self.db.executemany(  # as SqliteDocumentRepository._insert
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        chunk.id,
                        KB_NAME,
                        doc_id,
                        chunk.span.start,
                        chunk.span.end,
                        blobs[row].tobytes(),
                    )
                    for row, (doc_id, chunk) in enumerate(chunks)
                ],
            )
            self.db.execute(  # the label counter, as _insert keeps it
                "UPDATE counters SET value = MAX(value, ?) WHERE name = 'next_chunk_id'",
                (self.next_label,),
            )

    def close(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


WRITERS: dict[str, type[DirectWriter] | type[RepositoryWriter]] = {
    "sqlite": DirectWriter,
    "repository": RepositoryWriter,
}


def stream_corpus(
    pool: np.ndarray,
    pool_texts: Sequence[str],
    queries: np.ndarray,
    count: int,
    noise: float,
    writer: Writer | None,
) -> np.ndarray:
    """One pass over the `count` rows: the exact top-10 rows of each query, and each block
    written by `writer` (None: a reused data dir, truth only)."""
    top = RunningTop(queries)
    for first, block in scaled_blocks(pool, count, noise):
        top.add(first, block)
        if writer is not None:
            writer.write(first, block_texts(pool_texts, first, first + len(block)), block)
    return top.rows


def check_counts(path: Path, count: int) -> None:
    """The file's rows must be what was written. Counted in SQL: reopening it with the
    repository would load its RAM cache (GBs at 10M) into this process; the server's start
    checks every document's chunk rows, and the bench its counts over HTTP."""
    db = sqlite3.connect(f"{(path / DATABASE_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        (documents,) = db.execute("SELECT count(*) FROM documents").fetchone()
        (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
    finally:
        db.close()
    if documents != count or chunks != count:
        raise BenchError(
            f"{path}: {documents} documents and {chunks} chunks, expected {count} of each"
        )


# Figures shared by bench.scale and bench.scale_restart


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def rss_bytes(field: str = "VmRSS", pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no {field} in /proc/{pid}/status")

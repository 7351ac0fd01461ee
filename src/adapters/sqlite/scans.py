"""Reading the SQLite file whole at start: every document as a packed record, every vector.

No port of its own: `SqliteDocumentRepository` refills its in-memory cache and the vector index
with these; both read in rowid order, the fastest way through a large file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from adapters.memory import document_records as records
from adapters.sqlite import rows as sqlite_rows
from domain.digests import digest_bytes
from domain.errors import StorageError
from domain.ports import VECTOR_BATCH, Labels, Vectors


def document_records(
    db: sqlite3.Connection, path: Path, names: Sequence[str]
) -> dict[str, list[tuple[str, bytes]]]:
    """(id, packed record without its text) of every document, by knowledge base.

    Two table scans in rowid order, not index walks: those read the rows in random order
    and took three times as long at a million documents. StorageError if a document's chunk
    rows are not the ones it was stored with.
    """
    chunks: dict[str, dict[str, bytes]] = {kb: {} for kb in names}
    rows = db.execute("SELECT kb, document_id, id, start, stop FROM chunks")
    rows.row_factory = None  # plain tuples: a million sqlite3.Row objects cost seconds
    for kb, doc_id, label, start, stop in rows:
        packed, of_kb = records.CHUNK.pack(label, start, stop), chunks[kb]
        of_kb[doc_id] = of_kb[doc_id] + packed if doc_id in of_kb else packed
    loaded: dict[str, list[tuple[str, bytes]]] = {kb: [] for kb in names}
    rows = db.execute(
        "SELECT kb, id, metadata, created_at, updated_at, truncated, chunk_count, content_hash, "
        "layout "
        "FROM documents"
    )
    rows.row_factory = None
    width = records.CHUNK.size
    for kb, doc_id, metadata, created_at, updated_at, truncated, count, digest, layout in rows:
        packed = chunks[kb].pop(doc_id, b"")
        if len(packed) != count * width:
            raise sqlite_rows.disagreement(path, kb, doc_id, len(packed) // width, count)
        record = records.pack_fields(
            "",  # texts stay in the file: the repository reads them for the documents it returns
            records.pack_metadata(json.loads(metadata) if metadata != "{}" else {}),
            records.iso_instant(created_at),
            records.iso_instant(updated_at),
            packed,
            bool(truncated),
            digest_bytes(digest),
            b"" if layout is None else records.pack_layout(sqlite_rows.layout_from_json(layout)),
        )
        loaded[kb].append((doc_id, record))
    for kb, orphans in chunks.items():
        for doc_id, packed in orphans.items():  # chunk rows of no document
            raise sqlite_rows.disagreement(path, kb, doc_id, len(packed) // width, 0)
    return loaded


def reader(path: Path) -> sqlite3.Connection:
    """A read-only connection in a read transaction, for `vectors`: its snapshot of the file
    is taken at its first read (WAL: writers go on beside it); the caller closes it."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    db.execute("BEGIN")
    return db


def vectors(
    db: sqlite3.Connection, kb: str, labels: Labels, dimension: int, whole: bool
) -> Iterator[tuple[Labels, Vectors]]:
    """The vectors of `labels` (ascending, all kept in `kb`) in batches of VECTOR_BATCH rows;
    StorageError unless every one is found.

    `whole` (`labels` are all of `kb`, most of the file): one scan in rowid order ("+kb"
    keeps SQLite off the (kb, document_id) index, which would read the rows in random order).
    Else rowid lookups in ascending order, a batch at a time.
    """
    try:
        if whole:
            rows = db.execute("SELECT id, vector FROM chunks WHERE +kb = ? ORDER BY id", (kb,))
            yield from _batches(rows, kb, labels, dimension)
            return
        for first in range(0, len(labels), VECTOR_BATCH):
            wanted = labels[first : first + VECTOR_BATCH]
            rows = db.execute(READ_SOME, (kb, json.dumps(wanted.tolist())))
            yield from _batches(rows, kb, wanted, dimension)
    except sqlite3.Error as error:
        raise StorageError(f"reading the vectors of {kb!r}: {error}") from error


READ_SOME = (
    "SELECT id, vector FROM chunks WHERE kb = ? AND id IN (SELECT value FROM json_each(?)) "
    "ORDER BY id"
)


def _batches(
    rows: Iterable[tuple[int, bytes]], kb: str, labels: Labels, dimension: int
) -> Iterator[tuple[Labels, Vectors]]:
    """Rows (label, float32 blob) as (labels, vectors) batches; StorageError unless the rows
    are exactly `labels`, in order."""
    width, done = dimension * 4, 0
    batch: list[bytes] = []
    for label, blob in rows:
        if done + len(batch) >= len(labels) or label != labels[done + len(batch)]:
            raise _disagree(kb)
        if len(blob) != width:
            raise _disagree(kb)
        batch.append(blob)
        if len(batch) == VECTOR_BATCH:
            yield labels[done : done + len(batch)], _matrix(batch, dimension)
            done, batch = done + len(batch), []
    if batch:
        yield labels[done : done + len(batch)], _matrix(batch, dimension)
        done += len(batch)
    if done != len(labels):
        raise _disagree(kb)


def _matrix(blobs: list[bytes], dimension: int) -> Vectors:
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)


def _disagree(kb: str) -> StorageError:
    return StorageError(f"knowledge base {kb!r}: the stored vectors do not match")

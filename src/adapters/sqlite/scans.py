"""Reading the SQLite file whole at start: every document as a packed record, every vector.

No port of its own: `SqliteDocumentRepository` refills its in-memory cache and the vector index
with these; both read in rowid order, the fastest way through a large file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adapters.memory import document_records as records
from adapters.sqlite import rows as sqlite_rows
from domain.digests import digest_bytes
from domain.errors import StorageError
from domain.ports import Labels, Vectors


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
        "SELECT kb, id, metadata, created_at, updated_at, truncated, chunk_count, content_hash "
        "FROM documents"
    )
    rows.row_factory = None
    width = records.CHUNK.size
    for kb, doc_id, metadata, created_at, updated_at, truncated, count, content_hash in rows:
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
            digest_bytes(content_hash),
        )
        loaded[kb].append((doc_id, record))
    for kb, orphans in chunks.items():
        for doc_id, packed in orphans.items():  # chunk rows of no document
            raise sqlite_rows.disagreement(path, kb, doc_id, len(packed) // width, 0)
    return loaded


def vectors(
    db: sqlite3.Connection, kb: str, count: int, dimension: int, most_of_the_file: bool
) -> tuple[Labels, Vectors]:
    """The `count` kept vectors of `kb`, read row by row into one array sized up front."""
    labels = np.empty(count, dtype=np.int64)
    found = np.empty((count, dimension), dtype=np.float32)
    # reshape(-1): a memoryview of a (0, d) array cannot be cast (an empty KB at start)
    target = found.reshape(-1).data.cast("B")
    width = dimension * 4
    # Most of the file: "+kb" keeps SQLite off the (kb, document_id) index, for a scan
    # in rowid order instead of rows in random order. A small part: the index.
    column = "+kb" if most_of_the_file else "kb"
    rows = db.execute(f"SELECT id, vector FROM chunks WHERE {column} = ? ORDER BY id", (kb,))
    rows.row_factory = None
    done = 0
    for done, (label, blob) in enumerate(rows, start=1):
        if done > count or len(blob) != width:
            raise StorageError(f"knowledge base {kb!r}: the stored vectors do not match")
        labels[done - 1] = label
        target[(done - 1) * width : done * width] = blob
    if done != count:
        raise StorageError(f"knowledge base {kb!r}: the stored vectors do not match")
    return labels, found

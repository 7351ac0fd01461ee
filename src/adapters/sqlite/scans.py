"""Reading the SQLite file whole at start: every document as a packed record, every vector.

No port of its own: `SqliteDocumentRepository` refills its in-memory cache and the vector index
with these. The start reads two things end to end: the chunk spans from their covering index
(in document id order, without reading one vector blob) and the documents in rowid order, the
fastest way through a large table.
"""

from __future__ import annotations

import json
import marshal
import sqlite3
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from adapters.memory import document_records as records
from adapters.sqlite import rows as sqlite_rows
from domain.digests import HASH_PREFIX
from domain.errors import StorageError
from domain.ports import VECTOR_BATCH, Labels, Vectors

BATCH = 4096  # document rows whose metadata one json.loads call reads (8 times faster)


class Loaded(NamedTuple):
    """One knowledge base read whole: each document's packed record by id, in id order where
    the file allows (so sorting the ids costs a pass), and each chunk label with its owner."""

    records: dict[str, bytes]
    labels: array[int]  # 8 bytes each, not an int object each
    owners: list[str]  # the very id objects the records are keyed by


def document_records(db: sqlite3.Connection, path: Path, names: Sequence[str]) -> dict[str, Loaded]:
    """Every document of the knowledge bases `names`, as records without their text.

    StorageError if a document's chunk rows are not the ones it was stored with. At 10 million
    documents the chunks table holds 15 GB of vectors: the spans come from the covering index
    chunks_spans instead (0.6 GB), and no second map of spans is kept beside the
    records: each document's record replaces its spans in the same dict.
    """
    loaded = _chunk_spans(db, names)
    _fill_records(db, path, loaded)
    counts = dict(db.execute("SELECT kb, count(*) FROM documents GROUP BY kb").fetchall())
    for kb, found in loaded.items():
        if len(found.records) != counts.get(kb, 0):  # a key no document replaced: spans of none
            raise _orphan(db, path, kb)
    return loaded


def _chunk_spans(db: sqlite3.Connection, names: Sequence[str]) -> dict[str, Loaded]:
    """Each document's packed chunks (label, start, end), by id in id order, and the labels."""
    loaded = {kb: Loaded({}, array("q"), []) for kb in names}
    rows = db.execute(
        "SELECT kb, document_id, id, start, stop FROM chunks INDEXED BY chunks_spans "
        "ORDER BY kb, document_id, id"  # the index's own order: no sort, no table read
    )
    rows.row_factory = None  # plain tuples: a million sqlite3.Row objects cost seconds
    pack = records.CHUNK.pack
    spans, labels, owners = Loaded({}, array("q"), [])
    last_kb: str | None = None
    last_id: str | None = None
    owner = ""
    for kb, doc_id, label, start, stop in rows:
        if kb != last_kb:
            (spans, labels, owners), last_kb, last_id = loaded[kb], kb, None
        if doc_id == last_id:  # the document's next chunk: one id object for all its labels
            spans[owner] += pack(label, start, stop)
        else:
            spans[doc_id], owner = pack(label, start, stop), doc_id
            last_id = doc_id
        labels.append(label)
        owners.append(owner)
    return loaded


def _fill_records(db: sqlite3.Connection, path: Path, loaded: dict[str, Loaded]) -> None:
    """Replace each document's spans with its record.

    The record is `records.pack_fields` written out here, with no text: a call less per row is
    a second less per 10 million documents.
    """
    rows = db.execute(
        "SELECT kb, id, metadata, created_at, updated_at, truncated, chunk_count, content_hash, "
        "layout FROM documents"
    )
    rows.row_factory = None
    width, header, instant = records.CHUNK.size, records.HEADER.pack, records.iso_instant
    by_kb = {kb: found.records for kb, found in loaded.items()}
    while batch := rows.fetchmany(BATCH):
        # One JSON array for the batch: json.loads has a microsecond of overhead per call.
        metadata = json.loads("[" + ",".join([row[2] for row in batch]) + "]")
        for row, fields in zip(batch, metadata, strict=True):
            kb, doc_id, _, created_at, updated_at, truncated, count, digest, layout = row
            spans = by_kb[kb]
            packed = spans.get(doc_id, b"")
            if len(packed) != count * width:
                raise sqlite_rows.disagreement(path, kb, doc_id, len(packed) // width, count)
            kept = marshal.dumps(fields) if fields else b""  # records.pack_metadata, no copy
            extra = b"" if layout is None else _layout(layout)
            flags = (records.TRUNCATED if truncated else 0) | (records.LAYOUT if extra else 0)
            created = instant(created_at)
            updated = created if updated_at == created_at else instant(updated_at)
            spans[doc_id] = b"".join(
                (
                    header(*created, *updated, flags, count, len(kept)),
                    bytes.fromhex(digest.removeprefix(HASH_PREFIX)),
                    packed,
                    extra,
                    kept,
                )
            )


def _layout(layout: str) -> bytes:
    return records.pack_layout(sqlite_rows.layout_from_json(layout))


def _orphan(db: sqlite3.Connection, path: Path, kb: str) -> StorageError:
    """The error naming a document of `kb` that has chunk rows but no row of its own."""
    doc_id, count = db.execute(
        "SELECT document_id, count(*) FROM chunks AS c WHERE kb = ? AND NOT EXISTS "
        "(SELECT 1 FROM documents AS d WHERE d.kb = c.kb AND d.id = c.document_id) "
        "GROUP BY document_id ORDER BY document_id LIMIT 1",
        (kb,),
    ).fetchone()
    return sqlite_rows.disagreement(path, kb, doc_id, count, 0)


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

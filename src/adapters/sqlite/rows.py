"""The rows of kb-service's SQLite file: knowledge bases, documents and chunks to and from columns.

No port of its own: `SqliteDocumentRepository` reads and writes its file through it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from domain.errors import StorageError
from domain.model import Chunking, Document, KnowledgeBase, Layout
from domain.ports import Vectors

NEXT = "next_chunk_id"  # the counters row of the next chunk label to hand out

KB_COLUMNS = (
    "name, model, dimension, created_at, description, metadata, chunking, chunk_overlap, "
    "fingerprint"
)


def kb_row(kb: KnowledgeBase) -> tuple[Any, ...]:
    return (
        kb.name, kb.model, kb.dimension, kb.created_at.isoformat(), kb.description,
        json.dumps(dict(kb.metadata)), kb.chunking.value, kb.chunk_overlap, kb.fingerprint,
    )  # fmt: skip


def kb_from_row(row: sqlite3.Row) -> KnowledgeBase:
    return KnowledgeBase(
        name=row["name"],
        model=row["model"],
        dimension=row["dimension"],
        created_at=datetime.fromisoformat(row["created_at"]),
        description=row["description"],
        metadata=json.loads(row["metadata"]),
        chunking=Chunking(row["chunking"]),
        chunk_overlap=row["chunk_overlap"],
        fingerprint=row["fingerprint"],
    )


DOCUMENT_COLUMNS = (
    "kb, id, text, metadata, created_at, updated_at, truncated, chunk_count, content_hash, layout"
)


def document_row(kb: str, doc: Document) -> tuple[Any, ...]:
    return (
        kb, doc.id, doc.text, json.dumps(dict(doc.metadata)), doc.created_at.isoformat(),
        doc.updated_at.isoformat(), int(doc.truncated), len(doc.chunks), doc.content_hash,
        layout_json(doc.layout),
    )  # fmt: skip


def layout_json(layout: Layout) -> str | None:
    """The layout column: NULL for a document without one."""
    if not layout:
        return None
    return json.dumps({"sections": list(layout.sections), "pages": list(layout.pages)})


def layout_from_json(text: str | None) -> Layout:
    if text is None:
        return Layout()
    stored = json.loads(text)
    return Layout(tuple(stored["sections"]), tuple(stored["pages"]))


def disagreement(path: Path, kb: str, doc_id: str, found: int, stored: int) -> StorageError:
    return StorageError(
        f"{path}: knowledge base {kb!r}, document {doc_id!r} has {found} chunk row(s) but "
        f"{stored} were stored with it: the index and the documents disagree, so kb-service will "
        "not start on this file. Something other than kb-service changed it; restore it from a "
        "backup."
    )


def insert(
    db: sqlite3.Connection, kb: str, documents: Sequence[Document], vectors: Vectors
) -> None:
    """Insert the documents' rows and their chunks' (a float32 blob each, `vectors` in order)."""
    db.executemany(
        f"INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [document_row(kb, doc) for doc in documents],
    )
    chunks = [(doc.id, chunk) for doc in documents for chunk in doc.chunks]
    if chunks:  # labels are never handed out again, not even after a restart
        top = max(chunk.id for _, chunk in chunks) + 1
        db.execute(f"UPDATE counters SET value = MAX(value, ?) WHERE name = '{NEXT}'", (top,))
    blobs = np.ascontiguousarray(vectors, dtype=np.float32)
    db.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
        [
            (chunk.id, kb, doc_id, chunk.span.start, chunk.span.end, blobs[row].tobytes())
            for row, (doc_id, chunk) in enumerate(chunks)
        ],
    )


def delete(db: sqlite3.Connection, kb: str, document_ids: Sequence[str]) -> None:
    keys = [(kb, doc_id) for doc_id in document_ids]
    db.executemany("DELETE FROM chunks WHERE kb = ? AND document_id = ?", keys)
    db.executemany("DELETE FROM documents WHERE kb = ? AND id = ?", keys)

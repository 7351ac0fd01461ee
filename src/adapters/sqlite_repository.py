"""SqliteDocumentRepository: reads from RAM, every write committed to SQLite (WAL, FULL sync)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.memory_repository import InMemoryDocumentRepository
from adapters.sqlite_schema import open_database
from domain.errors import DocumentExistsError, KnowledgeBaseExistsError, StorageError
from domain.model import Chunk, Chunking, Document, KnowledgeBase, Span
from domain.ports import Labels, Vectors


class SqliteDocumentRepository(InMemoryDocumentRepository):
    """A durable `DocumentRepository`: each write commits to SQLite before RAM changes.

    Reads are served from the in-memory parent, which is rebuilt from the file at start.
    Vectors are kept only in the file (float32 blobs) and handed to the index by
    `load_vectors`, so nothing is embedded twice. One process owns the file.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self._db, self._owner = open_database(Path(path))
        with self._lock:
            self._load()

    @staticmethod
    def check(path: Path | str) -> None:
        """Raise StorageError if `path` cannot be opened as ours (creating it if absent)."""
        db, owner = open_database(Path(path))
        db.close()
        owner.close()

    def close(self) -> None:
        """Close the file and give up ownership, so another repository may open it."""
        with self._lock:
            self._db.close()
            self._owner.close()

    def ping(self) -> None:
        """Ask the file a trivial question; StorageError if it cannot answer (for /readyz)."""
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM knowledge_bases LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise StorageError(f"the SQLite database does not answer: {error}") from error

    def _load(self) -> None:
        for row in self._db.execute("SELECT * FROM knowledge_bases ORDER BY name"):
            super().add_knowledge_base(_kb_from_row(row))
        chunks: dict[tuple[str, str], list[Chunk]] = {}
        # Rowid order is chunk id order: a plain table scan, no index walk, no sort.
        query = "SELECT id, kb, document_id, start, stop FROM chunks"
        for cid, kb, doc_id, start, stop in self._db.execute(query):
            chunks.setdefault((kb, doc_id), []).append(Chunk(cid, Span(start, stop)))
        loaded: dict[str, list[Document]] = {}
        for row in self._db.execute("SELECT * FROM documents"):
            key = (row["kb"], row["id"])
            document = _document_from_row(row, tuple(chunks.pop(key, [])))
            loaded.setdefault(row["kb"], []).append(document)
        for kb, documents in loaded.items():
            self._shelf(kb).put_all(documents)
        (top,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        self._next_id = int(top) + 1

    def allocate_chunk_ids(self, count: int) -> list[int]:
        with self._lock:
            start, self._next_id = self._next_id, self._next_id + count
            return list(range(start, self._next_id))

    def add_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._lock:
            if kb.name in self._shelves:
                raise KnowledgeBaseExistsError(kb.name)
            with self._db:
                self._db.execute(
                    "INSERT INTO knowledge_bases VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _kb_row(kb)
                )
            super().add_knowledge_base(kb)

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._lock:
            self._shelf(kb.name)
            with self._db:
                self._db.execute(
                    "UPDATE knowledge_bases SET description = ?, metadata = ? WHERE name = ?",
                    (kb.description, json.dumps(dict(kb.metadata)), kb.name),
                )
            super().update_knowledge_base(kb)

    def remove_knowledge_base(self, name: str) -> None:
        with self._lock:
            self._shelf(name)
            with self._db:
                self._db.execute("DELETE FROM chunks WHERE kb = ?", (name,))
                self._db.execute("DELETE FROM documents WHERE kb = ?", (name,))
                self._db.execute("DELETE FROM knowledge_bases WHERE name = ?", (name,))
            super().remove_knowledge_base(name)

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        with self._lock:
            taken = self.existing_ids(kb, [doc.id for doc in documents])
            if taken:
                raise DocumentExistsError(kb, taken)
            with self._db:
                self._insert(kb, documents, vectors)
            super().add_documents(kb, documents, vectors)

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        with self._lock:
            self._shelf(kb)
            with self._db:
                self._delete(kb, [document.id])
                self._insert(kb, [document], vectors)
            return super().replace_document(kb, document, vectors)

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        with self._lock:
            self.get_document(kb, document_id)
            with self._db:
                self._db.execute(
                    "UPDATE documents SET metadata = ?, updated_at = ? WHERE kb = ? AND id = ?",
                    (json.dumps(metadata), updated_at.isoformat(), kb, document_id),
                )
            return super().update_metadata(kb, document_id, metadata, updated_at)

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        with self._lock:
            present = self.existing_ids(kb, list(dict.fromkeys(document_ids)))
            with self._db:
                self._delete(kb, present)
            return super().remove_documents(kb, present)

    def load_vectors(self, kb: str) -> tuple[Labels, Vectors]:
        with self._lock:
            dimension = self._shelf(kb).kb.dimension
            # "+kb" keeps SQLite off the (kb, document_id) index: a rowid-order scan, no sort.
            rows = self._db.execute("SELECT id, vector FROM chunks WHERE +kb = ?", (kb,)).fetchall()
        labels = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return labels, matrix.reshape(len(rows), dimension).copy()

    def _insert(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        self._db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [_document_row(kb, doc) for doc in documents],
        )
        chunks = [(doc.id, chunk) for doc in documents for chunk in doc.chunks]
        blobs = np.ascontiguousarray(vectors, dtype=np.float32)
        self._db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            [
                (chunk.id, kb, doc_id, chunk.span.start, chunk.span.end, blobs[row].tobytes())
                for row, (doc_id, chunk) in enumerate(chunks)
            ],
        )

    def _delete(self, kb: str, document_ids: Sequence[str]) -> None:
        keys = [(kb, doc_id) for doc_id in document_ids]
        self._db.executemany("DELETE FROM chunks WHERE kb = ? AND document_id = ?", keys)
        self._db.executemany("DELETE FROM documents WHERE kb = ? AND id = ?", keys)


def _kb_row(kb: KnowledgeBase) -> tuple[Any, ...]:
    return (
        kb.name, kb.model, kb.dimension, kb.created_at.isoformat(), kb.description,
        json.dumps(dict(kb.metadata)), kb.chunking.value, kb.chunk_overlap,
    )  # fmt: skip


def _kb_from_row(row: sqlite3.Row) -> KnowledgeBase:
    return KnowledgeBase(
        name=row["name"],
        model=row["model"],
        dimension=row["dimension"],
        created_at=datetime.fromisoformat(row["created_at"]),
        description=row["description"],
        metadata=json.loads(row["metadata"]),
        chunking=Chunking(row["chunking"]),
        chunk_overlap=row["chunk_overlap"],
    )


def _document_row(kb: str, doc: Document) -> tuple[Any, ...]:
    return (
        kb, doc.id, doc.text, json.dumps(dict(doc.metadata)), doc.created_at.isoformat(),
        doc.updated_at.isoformat(), int(doc.truncated),
    )  # fmt: skip


def _document_from_row(row: sqlite3.Row, chunks: tuple[Chunk, ...]) -> Document:
    return Document(
        id=row["id"],
        text=row["text"],
        metadata=json.loads(row["metadata"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        chunks=chunks,
        truncated=bool(row["truncated"]),
    )

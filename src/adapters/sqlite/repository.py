"""SqliteDocumentRepository: every write committed to SQLite (WAL, FULL sync); RAM for lookups."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.heap import release_free_memory
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.sqlite import rows as sqlite_rows
from adapters.sqlite import scans, texts
from adapters.sqlite.schema import open_database
from adapters.sqlite.writes import SqliteWrites
from domain.digests import DocumentDigest
from domain.errors import (
    DocumentExistsError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    StorageError,
)
from domain.filters import Filter
from domain.model import Document, KnowledgeBase, KnowledgeBaseStats
from domain.ports import Labels, Vectors


class SqliteDocumentRepository:
    """A durable `DocumentRepository`: each write commits to SQLite before RAM changes.

    It composes an in-memory repository (the cache that answers lookups, rebuilt from the file
    at start) with the SQLite file as its journal: a write commits to the file, then to the
    cache, under this repository's lock, so writers see one order. The cache holds everything
    but the texts (ids, metadata for filters, chunk spans, chunk label -> document): texts are
    read from the file, under the same lock, for the documents a call returns, so RAM does not
    grow with them (18 MB at 5,000 long documents). Vectors are kept only in the file (float32
    blobs) and handed to the index by `load_vectors`, so nothing is embedded twice. One process
    owns the file.
    """

    def __init__(self, path: Path | str) -> None:
        self._cache = InMemoryDocumentRepository(keep_texts=False)
        self._lock = threading.RLock()  # one writer at a time: the file, then the cache
        self._path = Path(path)
        self._db, self._owner = open_database(self._path)
        self._writes = SqliteWrites(self._db, self._path.parent)
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
        """Ask the file a trivial question; StorageError if it cannot answer (for /readyz).

        StorageFullError after a write found the disk full, until there is room again.
        """
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM knowledge_bases LIMIT 1").fetchall()
                self._writes.check_space()
        except sqlite3.Error as error:
            raise StorageError(f"the SQLite database does not answer: {error}") from error

    def _load(self) -> None:
        for row in self._db.execute("SELECT * FROM knowledge_bases ORDER BY name"):
            self._cache.add_knowledge_base(sqlite_rows.kb_from_row(row), row["building"])
        for kb, loaded in scans.document_records(self._db, self._path, self._names()).items():
            self._cache.load_records(kb, *loaded)
        (top,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        (kept,) = self._db.execute(
            f"SELECT value FROM counters WHERE name = '{sqlite_rows.NEXT}'"
        ).fetchone()
        self._next_id = max(int(top) + 1, int(kept))
        release_free_memory()  # the rows read: without it their pages stay resident

    # Reads: the cache answers, and the file gives the texts of the documents returned. Both
    # under the lock: there the cache holds exactly what the file has committed.

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        return self._cache.get_knowledge_base(name)

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        return self._cache.list_knowledge_bases(limit, after)

    def stats(self, name: str) -> KnowledgeBaseStats:
        return self._cache.stats(name)

    def get_document(self, kb: str, document_id: str) -> Document:
        with self._lock:
            return self._filled(kb, [self._cache.get_document(kb, document_id)])[0]

    def existing_ids(self, kb: str, document_ids: Collection[str]) -> list[str]:
        return self._cache.existing_ids(kb, document_ids)

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        with self._lock:
            return self._filled(kb, self._cache.list_documents(kb, limit, after, where))

    def list_digests(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[DocumentDigest]:
        return self._cache.list_digests(kb, limit, after, where)  # hashes are in RAM: no text

    def content_hashes(
        self, kb: str, limit: int, after: str | None = None
    ) -> list[tuple[str, str]]:
        return self._cache.content_hashes(kb, limit, after)  # in RAM: no text read

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        return self._cache.chunk_ids_matching(kb, where)

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        with self._lock:
            owners = self._cache.documents_for_chunks(kb, chunk_ids)
            unique = {doc.id: doc for doc in owners.values()}  # labels of one document share it
            complete = {doc.id: doc for doc in self._filled(kb, list(unique.values()))}
        return {label: complete[doc.id] for label, doc in owners.items()}

    def _filled(self, kb: str, documents: Collection[Document]) -> list[Document]:
        return texts.filled(self._db, self._path, kb, documents)

    def unpublished_knowledge_bases(self) -> list[tuple[str, str]]:
        return self._cache.unpublished_knowledge_bases()

    def _names(self) -> list[str]:
        """Every knowledge base's name, the unpublished ones too."""
        published = [kb.name for kb in self._cache.list_knowledge_bases(sys.maxsize)]
        return published + [name for name, _ in self._cache.unpublished_knowledge_bases()]

    # Writes: the file first, then the cache.

    def allocate_chunk_ids(self, count: int) -> list[int]:
        with self._lock:
            start, self._next_id = self._next_id, self._next_id + count
            return list(range(start, self._next_id))

    def add_knowledge_base(self, kb: KnowledgeBase, building: str | None = None) -> None:
        with self._lock:
            if kb.name in self._names():
                raise KnowledgeBaseExistsError(kb.name)
            self._writes.commit(
                lambda: self._db.execute(
                    f"INSERT INTO knowledge_bases ({sqlite_rows.KB_COLUMNS}, building) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*sqlite_rows.kb_row(kb), building),
                )
            )
            self._cache.add_knowledge_base(kb, building)

    def publish_knowledge_base(self, name: str) -> None:
        with self._lock:
            if name not in dict(self._cache.unpublished_knowledge_bases()):
                raise KnowledgeBaseNotFoundError(name)
            self._writes.commit(
                lambda: self._db.execute(
                    "UPDATE knowledge_bases SET building = NULL WHERE name = ?", (name,)
                )
            )
            self._cache.publish_knowledge_base(name)

    def remove_unpublished(self, name: str) -> bool:
        with self._lock:
            if name not in dict(self._cache.unpublished_knowledge_bases()):
                return False
            self._writes.commit(lambda: self._drop(name))
            return self._cache.remove_unpublished(name)

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._lock:
            self._cache.get_knowledge_base(kb.name)
            self._writes.commit(
                lambda: self._db.execute(
                    "UPDATE knowledge_bases SET description = ?, metadata = ?, model = ?, "
                    "fingerprint = ? WHERE name = ?",
                    (
                        kb.description,
                        json.dumps(dict(kb.metadata)),
                        kb.model,
                        kb.fingerprint,
                        kb.name,
                    ),
                )
            )
            self._cache.update_knowledge_base(kb)

    def remove_knowledge_base(self, name: str) -> None:
        with self._lock:
            self._cache.get_knowledge_base(name)
            self._writes.commit(lambda: self._drop(name))
            self._cache.remove_knowledge_base(name)

    def _drop(self, name: str) -> None:
        self._db.execute("DELETE FROM chunks WHERE kb = ?", (name,))
        self._db.execute("DELETE FROM documents WHERE kb = ?", (name,))
        self._db.execute("DELETE FROM knowledge_bases WHERE name = ?", (name,))

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        with self._lock:
            taken = self._cache.existing_ids(kb, [doc.id for doc in documents], unpublished=True)
            if taken:
                raise DocumentExistsError(kb, taken)
            self._writes.commit(lambda: sqlite_rows.insert(self._db, kb, documents, vectors))
            self._cache.add_documents(kb, documents, vectors)

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        with self._lock:
            self._cache.get_knowledge_base(kb)

            def replace() -> None:
                sqlite_rows.delete(self._db, kb, [document.id])
                sqlite_rows.insert(self._db, kb, [document], vectors)

            known = texts.read(self._db, self._path, kb, [document.id])  # before the row goes
            self._writes.commit(replace)
            previous = self._cache.replace_document(kb, document, vectors)
            if previous is None:
                return None
            return texts.with_texts(self._path, kb, [previous], known)[0]

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        with self._lock:
            self._cache.get_document(kb, document_id)
            self._writes.commit(
                lambda: self._db.execute(
                    "UPDATE documents SET metadata = ?, updated_at = ? WHERE kb = ? AND id = ?",
                    (json.dumps(metadata), updated_at.isoformat(), kb, document_id),
                )
            )
            return self._filled(
                kb, [self._cache.update_metadata(kb, document_id, metadata, updated_at)]
            )[0]

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        with self._lock:
            present = self._cache.existing_ids(kb, list(dict.fromkeys(document_ids)))
            known = texts.read(self._db, self._path, kb, present)  # before the rows go
            self._writes.commit(lambda: sqlite_rows.delete(self._db, kb, present))
            removed = self._cache.remove_documents(kb, present)
            return texts.with_texts(self._path, kb, removed, known)

    def chunk_labels(self, kb: str) -> Labels:
        return self._cache.labels_of(kb)

    def load_vectors(
        self, kb: str, labels: Labels | None = None
    ) -> Iterator[tuple[Labels, Vectors]]:
        """The kept vectors of `kb` (or of `labels`) in batches, through a read-only connection
        of its own: a load at start does not hold the repository's lock for minutes."""
        db = scans.reader(self._path)
        try:
            with self._lock:  # the file's snapshot and the labels taken at one moment
                db.execute("SELECT 1 FROM chunks LIMIT 1").fetchall()
                dimension = self._cache.get_knowledge_base(kb).dimension
                kept = self._cache.labels_of(kb)
                wanted = kept if labels is None else np.intersect1d(kept, labels)
                # Most of the file: a scan in rowid order beats lookups (see `scans`).
                published = self._cache.list_knowledge_bases(sys.maxsize)
                total = sum(self._cache.stats(other.name).chunk_count for other in published)
            whole = labels is None and len(wanted) * 2 > total
            yield from scans.vectors(db, kb, wanted, dimension, whole)
        finally:
            db.close()
        release_free_memory()

"""InMemoryDocumentRepository: knowledge bases and documents in RAM, gone at exit."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from adapters.memory import document_records as records
from adapters.memory.chunk_owners import ChunkOwners
from adapters.memory.sorted_ids import SortedIds
from domain.digests import DocumentDigest
from domain.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
)
from domain.filters import Filter, matches
from domain.model import Document, KnowledgeBase, KnowledgeBaseStats
from domain.ports import Labels, Vectors


@dataclass
class _Shelf:
    """One knowledge base's documents as packed records (see `document_records`)."""

    kb: KnowledgeBase
    keep_texts: bool = True
    building: str | None = None  # the job building it, while unpublished
    records: dict[str, bytes] = field(default_factory=dict)
    ordered_ids: SortedIds = field(default_factory=SortedIds)  # GC-light order for pages
    owners: ChunkOwners = field(default_factory=ChunkOwners)

    @property
    def chunk_count(self) -> int:
        return len(self.owners)

    def put(self, documents: Sequence[Document]) -> None:
        """Store new documents, or replace ones whose old chunks were dropped."""
        for document in documents:
            if document.id not in self.records:
                self.ordered_ids.add(document.id)
            self.records[document.id] = records.pack(document, self.keep_texts)
        self.owners.add(
            [chunk.id for doc in documents for chunk in doc.chunks],
            [doc.id for doc in documents for _ in doc.chunks],
        )

    def load(self, loaded: dict[str, bytes], labels: Sequence[int], owners: Sequence[str]) -> None:
        """Store many new records at once (at start): one sort, one map update. An empty shelf
        takes `loaded` as its own dict (no second copy of ten million entries); ids that come
        in order make the sort a single pass."""
        if self.records:
            self.records.update(loaded)
        else:
            self.records = loaded
        self.owners.add(labels, owners)
        self.ordered_ids = SortedIds(sorted(self.records))

    def document(self, document_id: str) -> Document:
        return records.unpack(document_id, self.records[document_id])

    def drop(self, document_id: str) -> Document:
        record = self.records.pop(document_id)
        self.ordered_ids.remove(document_id)
        self.owners.remove(records.chunk_ids(record))
        return records.unpack(document_id, record)


class InMemoryDocumentRepository:
    """Volatile `DocumentRepository`. Vectors live only in the index, so none are kept here.

    One lock guards every call: each is short, and it makes every call all-or-nothing.
    With `keep_texts=False` documents come back with an empty text: the cache of a repository
    that keeps the texts elsewhere (SQLite) and fills them in.
    """

    def __init__(self, keep_texts: bool = True) -> None:
        self._keep_texts = keep_texts
        self._shelves: dict[str, _Shelf] = {}
        self._lock = threading.RLock()
        self._next_chunk_id = itertools.count(1)

    def _shelf(self, name: str, unpublished: bool = False) -> _Shelf:
        """The knowledge base's shelf; an unpublished one only where `unpublished` allows."""
        shelf = self._shelves.get(name)
        if shelf is None or (shelf.building is not None and not unpublished):
            raise KnowledgeBaseNotFoundError(name)
        return shelf

    def load_records(
        self, kb: str, loaded: dict[str, bytes], labels: Sequence[int], owners: Sequence[str]
    ) -> None:
        """Store many new packed records of `kb` (by id) at once, with their chunk labels and
        the id owning each: how a journal refills RAM. The cache keeps `loaded` itself."""
        with self._lock:
            self._shelf(kb, unpublished=True).load(loaded, labels, owners)

    def add_knowledge_base(self, kb: KnowledgeBase, building: str | None = None) -> None:
        with self._lock:
            if kb.name in self._shelves:
                raise KnowledgeBaseExistsError(kb.name)
            self._shelves[kb.name] = _Shelf(kb, self._keep_texts, building)

    def publish_knowledge_base(self, name: str) -> None:
        with self._lock:
            shelf = self._shelves.get(name)
            if shelf is None or shelf.building is None:
                raise KnowledgeBaseNotFoundError(name)
            shelf.building = None

    def unpublished_knowledge_bases(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(
                (name, shelf.building)
                for name, shelf in self._shelves.items()
                if shelf.building is not None
            )

    def remove_unpublished(self, name: str) -> bool:
        with self._lock:
            shelf = self._shelves.get(name)
            if shelf is None or shelf.building is None:
                return False
            del self._shelves[name]
            return True

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        with self._lock:
            return self._shelf(name).kb

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        with self._lock:
            names = sorted(
                name
                for name, shelf in self._shelves.items()
                if shelf.building is None and (after is None or name > after)
            )
            return [self._shelves[name].kb for name in names[:limit]]

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._lock:
            self._shelf(kb.name).kb = kb

    def remove_knowledge_base(self, name: str) -> None:
        with self._lock:
            self._shelf(name)
            del self._shelves[name]

    def stats(self, name: str) -> KnowledgeBaseStats:
        with self._lock:
            shelf = self._shelf(name)
            return KnowledgeBaseStats(len(shelf.records), shelf.chunk_count)

    def allocate_chunk_ids(self, count: int) -> list[int]:
        with self._lock:
            return [next(self._next_chunk_id) for _ in range(count)]

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        with self._lock:
            shelf = self._shelf(kb, unpublished=True)
            taken = [doc.id for doc in documents if doc.id in shelf.records]
            if taken:
                raise DocumentExistsError(kb, taken)
            shelf.put(documents)

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        with self._lock:
            shelf = self._shelf(kb)
            previous = shelf.drop(document.id) if document.id in shelf.records else None
            shelf.put([document])
            return previous

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        with self._lock:
            shelf = self._shelf(kb)
            record = shelf.records.get(document_id)
            if record is None:
                raise DocumentNotFoundError(kb, document_id)
            shelf.records[document_id] = records.with_metadata(record, metadata, updated_at)
            return shelf.document(document_id)

    def get_document(self, kb: str, document_id: str) -> Document:
        with self._lock:
            shelf = self._shelf(kb)
            if document_id not in shelf.records:
                raise DocumentNotFoundError(kb, document_id)
            return shelf.document(document_id)

    def existing_ids(
        self, kb: str, document_ids: Collection[str], unpublished: bool = False
    ) -> list[str]:
        """`unpublished` reaches a knowledge base still being built (for the SQLite journal)."""
        with self._lock:
            stored = self._shelf(kb, unpublished).records
            return [doc_id for doc_id in document_ids if doc_id in stored]

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        with self._lock:
            shelf = self._shelf(kb)
            if where is None:
                return [shelf.document(i) for i in shelf.ordered_ids.page(after, limit)]
            # Records are immutable bytes: a filter is tested on a copy of the references,
            # outside the lock, so a slow filter never holds up the other requests.
            candidates = [(i, shelf.records[i]) for i in shelf.ordered_ids.following(after)]
        found: list[Document] = []
        for doc_id, record in candidates:
            if matches(where, records.metadata(record)):
                found.append(records.unpack(doc_id, record))
                if len(found) == limit:
                    break
        return found

    def list_digests(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[DocumentDigest]:
        """From the records alone: the SQLite repository answers with this, reading no text."""
        with self._lock:
            shelf = self._shelf(kb)
            if where is None:
                chosen = shelf.ordered_ids.page(after, limit)
                return [records.digest(i, shelf.records[i]) for i in chosen]
            candidates = [(i, shelf.records[i]) for i in shelf.ordered_ids.following(after)]
        found: list[DocumentDigest] = []
        for doc_id, record in candidates:
            if matches(where, records.metadata(record)):
                found.append(records.digest(doc_id, record))
                if len(found) == limit:
                    break
        return found

    def content_hashes(
        self, kb: str, limit: int, after: str | None = None
    ) -> list[tuple[str, str]]:
        with self._lock:
            shelf = self._shelf(kb)
            return [
                (i, records.content_hash(shelf.records[i]))
                for i in shelf.ordered_ids.page(after, limit)
            ]

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        with self._lock:
            stored = list(self._shelf(kb).records.values())
        return [
            label
            for record in stored
            if matches(where, records.metadata(record))
            for label in records.chunk_ids(record)
        ]

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        with self._lock:
            shelf = self._shelf(kb)
            return [shelf.drop(i) for i in dict.fromkeys(document_ids) if i in shelf.records]

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        with self._lock:
            shelf = self._shelf(kb)
            documents: dict[str, Document] = {}
            found: dict[int, Document] = {}
            for label, doc_id in shelf.owners.owners(chunk_ids):
                document = documents.get(doc_id)
                if document is None:
                    document = documents[doc_id] = shelf.document(doc_id)
                found[label] = document
            return found

    def chunk_labels(self, kb: str) -> Labels:
        """None kept (the index holds the vectors, and a new process starts empty)."""
        with self._lock:
            self._shelf(kb)
        return np.zeros(0, np.int64)

    def load_vectors(
        self, kb: str, labels: Labels | None = None
    ) -> Iterator[tuple[Labels, Vectors]]:
        with self._lock:
            self._shelf(kb)
        return iter(())

    def labels_of(self, kb: str) -> Labels:
        """Every chunk label of `kb`, ascending: what a journal behind this cache keeps."""
        with self._lock:
            return self._shelf(kb).owners.labels()

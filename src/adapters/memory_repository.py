"""InMemoryDocumentRepository: knowledge bases and documents in Python dicts, gone at exit."""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

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
    kb: KnowledgeBase
    documents: dict[str, Document] = field(default_factory=dict)
    ordered_ids: list[str] = field(default_factory=list)
    owners: dict[int, str] = field(default_factory=dict)
    chunk_count: int = 0

    def put(self, document: Document) -> None:
        if document.id not in self.documents:
            bisect.insort(self.ordered_ids, document.id)
        self.documents[document.id] = document
        for chunk in document.chunks:
            self.owners[chunk.id] = document.id
        self.chunk_count += len(document.chunks)

    def put_all(self, documents: list[Document]) -> None:
        """Add many new documents at once (loading at start): one sort instead of many inserts."""
        for document in documents:
            self.documents[document.id] = document
            for chunk in document.chunks:
                self.owners[chunk.id] = document.id
            self.chunk_count += len(document.chunks)
        self.ordered_ids = sorted(self.documents)

    def drop(self, document_id: str) -> Document:
        document = self.documents.pop(document_id)
        del self.ordered_ids[bisect.bisect_left(self.ordered_ids, document_id)]
        for chunk in document.chunks:
            del self.owners[chunk.id]
        self.chunk_count -= len(document.chunks)
        return document


class InMemoryDocumentRepository:
    """Volatile `DocumentRepository`. Vectors live only in the index, so none are kept here.

    One lock guards every call: each is short, and it makes every call all-or-nothing.
    """

    def __init__(self) -> None:
        self._shelves: dict[str, _Shelf] = {}
        self._lock = threading.RLock()
        self._next_chunk_id = itertools.count(1)

    def _shelf(self, name: str) -> _Shelf:
        shelf = self._shelves.get(name)
        if shelf is None:
            raise KnowledgeBaseNotFoundError(name)
        return shelf

    def add_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._lock:
            if kb.name in self._shelves:
                raise KnowledgeBaseExistsError(kb.name)
            self._shelves[kb.name] = _Shelf(kb)

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        with self._lock:
            return self._shelf(name).kb

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        with self._lock:
            names = sorted(name for name in self._shelves if after is None or name > after)
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
            return KnowledgeBaseStats(len(shelf.documents), shelf.chunk_count)

    def allocate_chunk_ids(self, count: int) -> list[int]:
        with self._lock:
            return [next(self._next_chunk_id) for _ in range(count)]

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        with self._lock:
            shelf = self._shelf(kb)
            taken = [doc.id for doc in documents if doc.id in shelf.documents]
            if taken:
                raise DocumentExistsError(kb, taken)
            for document in documents:
                shelf.put(document)

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        with self._lock:
            shelf = self._shelf(kb)
            previous = shelf.drop(document.id) if document.id in shelf.documents else None
            shelf.put(document)
            return previous

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        with self._lock:
            shelf = self._shelf(kb)
            document = replace(
                self.get_document(kb, document_id), metadata=metadata, updated_at=updated_at
            )
            shelf.documents[document_id] = document
            return document

    def get_document(self, kb: str, document_id: str) -> Document:
        with self._lock:
            document = self._shelf(kb).documents.get(document_id)
            if document is None:
                raise DocumentNotFoundError(kb, document_id)
            return document

    def existing_ids(self, kb: str, document_ids: Collection[str]) -> list[str]:
        with self._lock:
            documents = self._shelf(kb).documents
            return [doc_id for doc_id in document_ids if doc_id in documents]

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        with self._lock:
            shelf = self._shelf(kb)
            start = 0 if after is None else bisect.bisect_right(shelf.ordered_ids, after)
            if where is None:
                return [shelf.documents[i] for i in shelf.ordered_ids[start : start + limit]]
            found: list[Document] = []
            for doc_id in itertools.islice(shelf.ordered_ids, start, None):
                document = shelf.documents[doc_id]
                if matches(where, document.metadata):
                    found.append(document)
                    if len(found) == limit:
                        break
            return found

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        with self._lock:
            documents = self._shelf(kb).documents.values()
            return [c.id for d in documents if matches(where, d.metadata) for c in d.chunks]

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        with self._lock:
            shelf = self._shelf(kb)
            return [shelf.drop(i) for i in dict.fromkeys(document_ids) if i in shelf.documents]

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        with self._lock:
            shelf = self._shelf(kb)
            owners = ((label, shelf.owners.get(label)) for label in chunk_ids)
            return {label: shelf.documents[doc_id] for label, doc_id in owners if doc_id}

    def load_vectors(self, kb: str) -> tuple[Labels, Vectors]:
        with self._lock:
            dimension = self._shelf(kb).kb.dimension
        return np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)

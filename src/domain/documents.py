"""Document use cases: write (add, upsert, patch, delete) and read, indexes and store in step."""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from domain.catalog import Slot, WriteContext
from domain.cursor import decode_cursor, encode_cursor
from domain.encoding import EncodedText, encode_texts
from domain.errors import DocumentExistsError, DocumentNotFoundError, InvalidInputError
from domain.filters import Filter, parse_filter
from domain.model import (
    Chunk,
    Document,
    NewDocument,
    Page,
    validate_document_id,
    validate_metadata,
    validate_name,
)
from domain.ports import DocumentLookup, DocumentStore, Labels, Vectors


def new_document_id() -> str:
    return uuid.uuid4().hex


class DocumentWriter:
    """Adds, replaces and removes documents: embeds outside any lock, writes under the catalog's."""

    def __init__(self, context: WriteContext, documents: DocumentStore) -> None:
        self._catalog, self._embedder, self._clock = context
        self._documents = documents

    def add(self, kb_name: str, documents: Sequence[NewDocument]) -> list[Document]:
        """Embed outside the lock, then store all or none; DocumentExistsError if an id is taken."""
        kb, slot = self._catalog.usable(kb_name)
        ids = [doc.id if doc.id is not None else new_document_id() for doc in documents]
        _reject_repeats(ids)
        self._reject_existing(kb_name, ids)
        encoded = encode_texts(
            self._embedder, [doc.text for doc in documents], kb.chunking, kb.chunk_overlap
        )
        now = self._clock()
        with self._catalog.writing(kb_name, slot):
            labels = self._documents.allocate_chunk_ids(sum(len(e.spans) for e in encoded))
            stored: list[Document] = []
            for doc_id, doc, enc in zip(ids, documents, encoded):
                chunk_labels, labels = labels[: len(enc.spans)], labels[len(enc.spans) :]
                stored.append(
                    _document(doc_id, doc.text, doc.metadata, now, now, enc, chunk_labels)
                )
            vectors = _stack([e.vectors for e in encoded], kb.dimension)
            self._documents.add_documents(kb_name, stored, vectors)
            slot.index.add(_labels(stored), vectors)
            slot.keywords.add([(doc.id, doc.text) for doc in stored])
        return stored

    def upsert(
        self, kb_name: str, document_id: str, text: str, metadata: Mapping[str, Any] | None
    ) -> tuple[Document, bool]:
        """Re-embed only a changed text; retry if another write changed the document meanwhile."""
        kb, slot = self._catalog.usable(kb_name)
        new = NewDocument(text=text, id=document_id, metadata=metadata or {})
        encoded: EncodedText | None = None
        while True:
            current = self._find(kb_name, document_id)
            if current is not None and current.text == new.text:
                with self._catalog.writing(kb_name, slot):
                    if self._find(kb_name, document_id) == current:
                        return self._documents.update_metadata(
                            kb_name, document_id, dict(new.metadata), self._clock()
                        ), False
                continue
            if encoded is None:
                (encoded,) = encode_texts(self._embedder, [new.text], kb.chunking, kb.chunk_overlap)
            with self._catalog.writing(kb_name, slot):
                return self._replace(kb_name, slot, new, encoded)

    def update_metadata(
        self, kb_name: str, document_id: str, metadata: Mapping[str, Any]
    ) -> Document:
        validate_document_id(document_id)
        _, slot = self._catalog.usable(kb_name)
        with self._catalog.writing(kb_name, slot):
            return self._documents.update_metadata(
                kb_name, document_id, validate_metadata(metadata), self._clock()
            )

    def delete_one(self, kb_name: str, document_id: str) -> None:
        if not self.delete(kb_name, [document_id], None, False):
            raise DocumentNotFoundError(kb_name, document_id)

    def delete(
        self,
        kb_name: str,
        document_ids: Sequence[str] | None,
        filter: Mapping[str, Any] | None,
        dry_run: bool,
    ) -> list[str]:
        """Pick the doomed ids under the write lock, so none is added or removed meanwhile."""
        if document_ids is None and filter is None:
            raise InvalidInputError(
                "give 'ids', 'filter' or both", errors={"_schema": ["ids or filter required"]}
            )
        for document_id in document_ids or ():
            validate_document_id(document_id)
        where = parse_filter(filter) if filter is not None else None
        slot = self._catalog.slot(kb_name)
        with self._catalog.writing(kb_name, slot):
            doomed = self._doomed(kb_name, document_ids, where)
            if dry_run:
                return doomed
            removed = self._documents.remove_documents(kb_name, doomed)
            slot.index.remove(_labels(removed))
            slot.keywords.remove([doc.id for doc in removed])
        return [doc.id for doc in removed]

    def _doomed(
        self, kb_name: str, document_ids: Sequence[str] | None, where: Filter | None
    ) -> list[str]:
        if where is None:
            assert document_ids is not None
            return self._documents.existing_ids(kb_name, list(dict.fromkeys(document_ids)))
        matching = self._documents.list_documents(kb_name, sys.maxsize, None, where)
        listed = None if document_ids is None else set(document_ids)
        return [doc.id for doc in matching if listed is None or doc.id in listed]

    def _find(self, kb_name: str, document_id: str) -> Document | None:
        try:
            return self._documents.get_document(kb_name, document_id)
        except DocumentNotFoundError:
            return None

    def _reject_existing(self, kb_name: str, ids: Sequence[str]) -> None:
        taken = self._documents.existing_ids(kb_name, ids)
        if taken:
            raise DocumentExistsError(kb_name, taken)

    def _replace(
        self, kb_name: str, slot: Slot, new: NewDocument, encoded: EncodedText
    ) -> tuple[Document, bool]:
        assert new.id is not None
        previous = self._find(kb_name, new.id)
        now = self._clock()
        created_at = previous.created_at if previous else now
        labels = self._documents.allocate_chunk_ids(len(encoded.spans))
        document = _document(new.id, new.text, new.metadata, created_at, now, encoded, labels)
        # What the repository replaced, read under its lock: another process sharing the store
        # may have written this id since `previous` was read.
        replaced = self._documents.replace_document(kb_name, document, encoded.vectors)
        if replaced is not None:
            slot.index.remove(_labels([replaced]))
            slot.keywords.remove([replaced.id])
        slot.index.add(_labels([document]), encoded.vectors)
        slot.keywords.add([(document.id, document.text)])
        return document, replaced is None


class DocumentReader:
    """Reads documents straight from the store: no index, no lock."""

    def __init__(self, documents: DocumentLookup) -> None:
        self._documents = documents

    def get(self, kb_name: str, document_id: str) -> Document:
        validate_name(kb_name)
        return self._documents.get_document(kb_name, validate_document_id(document_id))

    def page(
        self,
        kb_name: str,
        limit: int,
        cursor: str | None,
        filter: Mapping[str, Any] | None,
        digests: bool = False,
    ) -> Page:
        """Documents, or with `digests` only their DocumentDigests (no text read)."""
        where = parse_filter(filter) if filter is not None else None
        validate_name(kb_name)
        listing = self._documents.list_digests if digests else self._documents.list_documents
        found: list[Any] = listing(kb_name, limit + 1, decode_cursor(cursor), where)
        more = len(found) > limit
        return Page(found[:limit], encode_cursor(found[limit - 1].id) if more else None)


def _document(
    doc_id: str,
    text: str,
    metadata: Mapping[str, Any],
    created_at: datetime,
    updated_at: datetime,
    encoded: EncodedText,
    labels: Sequence[int],
) -> Document:
    chunks = tuple(Chunk(label, span) for label, span in zip(labels, encoded.spans))
    return Document(doc_id, text, metadata, created_at, updated_at, chunks, encoded.truncated)


def _labels(documents: Sequence[Document]) -> Labels:
    return np.array([c.id for d in documents for c in d.chunks], dtype=np.int64)


def _stack(blocks: Sequence[Vectors], dimension: int) -> Vectors:
    return np.vstack(blocks) if blocks else np.zeros((0, dimension), np.float32)


def _reject_repeats(ids: Sequence[str]) -> None:
    counts = Counter(ids)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        raise InvalidInputError(
            f"document id(s) {', '.join(map(repr, repeated))} appear more than once in the batch",
            errors={"documents": {"id": [f"repeated: {i}" for i in repeated]}},
        )

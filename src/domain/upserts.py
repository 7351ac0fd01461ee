"""Batch upsert: create or replace many documents in one all-or-nothing write.

The batch counterpart of `DocumentWriter.upsert`, for imports that must be safe to run
again: only new and changed texts are embedded, a metadata-only change is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.catalog import Slot, WriteContext
from domain.documents import _document, _labels, _reject_repeats, _stack
from domain.encoding import EncodedText, encode_texts
from domain.errors import InvalidInputError
from domain.model import Document, NewDocument
from domain.ports import DocumentStore


@dataclass(frozen=True)
class Upserted:
    """What one batch upsert did: how many documents it created and how many it replaced."""

    added: int
    replaced: int


class BatchUpserter:
    """Creates or replaces a batch of documents by id, all or none, under one write lock."""

    def __init__(self, context: WriteContext, documents: DocumentStore) -> None:
        self._catalog, self._embedder, self._clock = context
        self._documents = documents

    def current(self, kb_name: str, ids: Sequence[str]) -> dict[str, Document]:
        """The stored documents among `ids`, by id."""
        found = self._documents.existing_ids(kb_name, ids)
        return {doc_id: self._documents.get_document(kb_name, doc_id) for doc_id in found}

    def upsert(self, kb_name: str, documents: Sequence[NewDocument]) -> Upserted:
        """Store each document under its id (required, not repeated), replacing any there.

        Embeds outside the lock; if another write changed one of these ids meanwhile, reads
        again and embeds what that made new, so the batch always lands whole on what is there.
        """
        kb, slot = self._catalog.usable(kb_name)
        ids = [_id_of(doc) for doc in documents]
        _reject_repeats(ids)
        encoded: dict[str, EncodedText] = {}
        while True:
            before = self.current(kb_name, ids)
            wanted = [doc for doc in documents if _needs_embedding(doc, before)]
            missing = [doc for doc in wanted if _id_of(doc) not in encoded]
            texts = [doc.text for doc in missing]
            layouts = [doc.layout for doc in missing]
            made = encode_texts(
                self._embedder, texts, kb.chunking, kb.chunk_overlap, layouts=layouts
            )
            encoded.update((_id_of(doc), each) for doc, each in zip(missing, made))
            with self._catalog.writing(kb_name, slot):
                if self.current(kb_name, ids) == before:
                    return self._write(kb_name, slot, documents, before, encoded)

    def _write(
        self,
        kb_name: str,
        slot: Slot,
        documents: Sequence[NewDocument],
        before: Mapping[str, Document],
        encoded: Mapping[str, EncodedText],
    ) -> Upserted:
        now = self._clock()
        fresh = [doc for doc in documents if _id_of(doc) not in before]
        changed = [doc for doc in documents if doc.id in before and _needs_embedding(doc, before)]
        relabelled = [doc for doc in documents if not _needs_embedding(doc, before)]
        made = self._made(fresh + changed, before, encoded, now)
        added, replacing = made[: len(fresh)], made[len(fresh) :]
        if added:
            vectors = _stack([encoded[doc.id].vectors for doc in added], 0)
            self._documents.add_documents(kb_name, added, vectors)
        replaced = [
            self._documents.replace_document(kb_name, doc, encoded[doc.id].vectors)
            for doc in replacing
        ]
        for doc in relabelled:
            self._documents.update_metadata(kb_name, _id_of(doc), dict(doc.metadata), now)
        gone = [doc for doc in replaced if doc is not None]
        slot.index.remove(_labels(gone))
        slot.keywords.remove([doc.id for doc in gone])
        if made:
            slot.index.add(_labels(made), _stack([encoded[doc.id].vectors for doc in made], 0))
            slot.keywords.add([(doc.id, doc.text) for doc in made])
        return Upserted(len(added), len(replacing) + len(relabelled))

    def _made(
        self,
        documents: Sequence[NewDocument],
        before: Mapping[str, Document],
        encoded: Mapping[str, EncodedText],
        now: datetime,
    ) -> list[Document]:
        """The documents to store, with fresh chunk labels; a replaced one keeps created_at."""
        labels = self._documents.allocate_chunk_ids(
            sum(len(encoded[_id_of(doc)].spans) for doc in documents)
        )
        made = []
        for doc in documents:
            doc_id = _id_of(doc)
            each = encoded[doc_id]
            mine, labels = labels[: len(each.spans)], labels[len(each.spans) :]
            previous = before.get(doc_id)
            created_at = previous.created_at if previous is not None else now
            made.append(_document(doc_id, doc, created_at, now, each, mine))
        return made


def _needs_embedding(doc: NewDocument, before: Mapping[str, Document]) -> bool:
    previous = before.get(_id_of(doc))
    # Chunks follow the text and its layout (windows end at its sections and pages).
    return previous is None or (previous.text, previous.layout) != (doc.text, doc.layout)


def _id_of(doc: NewDocument) -> str:
    if doc.id is None:
        raise InvalidInputError(
            "a batch upsert needs every document's id", errors={"id": ["required"]}
        )
    return doc.id

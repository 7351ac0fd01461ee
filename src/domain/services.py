"""KnowledgeBaseService: the use cases every entrypoint (HTTP, CLI, library) calls."""

from __future__ import annotations

import logging
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from domain.catalog import Catalog, Slot
from domain.cursor import decode_cursor, encode_cursor
from domain.encoding import EncodedText, encode_texts
from domain.errors import (
    ConflictError,
    DocumentExistsError,
    DocumentNotFoundError,
    InvalidInputError,
    ModelMismatchError,
)
from domain.filters import Filter, parse_filter
from domain.keywords import NoKeywordIndex
from domain.model import (
    Chunk,
    Chunking,
    Document,
    Hit,
    KnowledgeBase,
    KnowledgeBaseStats,
    NewDocument,
    Page,
    validate_metadata,
    validate_name,
)
from domain.ports import (
    DocumentRepository,
    Embedder,
    KeywordIndexFactory,
    Labels,
    VectorIndexFactory,
    Vectors,
)
from domain.ranking import Ranker, SearchRequest

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_CHUNK_OVERLAP = 32
MAX_BATCH_QUERIES = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_document_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    """A knowledge base with its live counts."""

    knowledge_base: KnowledgeBase
    stats: KnowledgeBaseStats


class KnowledgeBaseService:
    """Create knowledge bases, add and remove documents, and rank documents by similarity.

    Thread-safe: embedding happens outside any lock; each knowledge base lets searches run
    together and gives writes exclusive access, so the index and the repository agree.
    """

    def __init__(
        self,
        embedder: Embedder,
        repository: DocumentRepository,
        index_factory: VectorIndexFactory,
        keyword_factory: KeywordIndexFactory | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """`keyword_factory` enables hybrid (keyword + meaning) search; without it only dense."""
        self.embedder = embedder
        self._repository = repository
        self._catalog = Catalog(repository, index_factory, keyword_factory or NoKeywordIndex)
        self._clock = clock
        self._ranker = Ranker(embedder, repository)

    def load(self) -> int:
        """Build every knowledge base's index from the repository; return how many."""
        count = 0
        after: str | None = None
        while batch := self._repository.list_knowledge_bases(500, after):
            for kb in batch:
                self._catalog.load(kb)
                if kb.model != self.embedder.model_name:
                    log.error(
                        "knowledge base %r was built with model %r, not the loaded %r: it will "
                        "refuse searches and writes (409) until the service runs that model",
                        kb.name,
                        kb.model,
                        self.embedder.model_name,
                    )
            count += len(batch)
            after = batch[-1].name
        return count

    # Knowledge bases

    def create_knowledge_base(
        self,
        name: str,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        chunking: Chunking | str = Chunking.WINDOW,
        chunk_overlap: int | None = None,
    ) -> KnowledgeBase:
        """Create an empty knowledge base bound to the loaded model; KnowledgeBaseExistsError.

        `chunk_overlap` defaults to 32 tokens, or half the model's window if that is smaller.
        """
        if chunk_overlap is None:
            chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, self.embedder.window // 2)
        if not 0 <= chunk_overlap < self.embedder.window:
            raise InvalidInputError(
                f"chunk_overlap must be between 0 and {self.embedder.window - 1}",
                errors={"chunk_overlap": [f"must be in [0, {self.embedder.window - 1}]"]},
            )
        kb = KnowledgeBase(
            name=validate_name(name),
            model=self.embedder.model_name,
            dimension=self.embedder.dimension,
            created_at=self._clock(),
            description=description,
            metadata=metadata or {},
            chunking=Chunking(chunking),
            chunk_overlap=chunk_overlap,
        )
        self._catalog.create(kb)
        return kb

    def get_knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        kb = self._repository.get_knowledge_base(name)
        return KnowledgeBaseInfo(kb, self._repository.stats(name))

    def list_knowledge_bases(self, limit: int = 100, cursor: str | None = None) -> Page:
        found = self._repository.list_knowledge_bases(limit + 1, decode_cursor(cursor))
        items = [KnowledgeBaseInfo(kb, self._repository.stats(kb.name)) for kb in found[:limit]]
        more = len(found) > limit
        return Page(items, encode_cursor(found[limit - 1].name) if more else None)

    def update_knowledge_base(
        self,
        kb_name: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo:
        """Change a knowledge base's description and/or metadata (metadata is replaced)."""
        slot = self._catalog.slot(kb_name)
        with self._writing(kb_name, slot):
            kb = self._repository.get_knowledge_base(kb_name)
            changes: dict[str, Any] = {}
            if description is not None:
                changes["description"] = description
            if metadata is not None:
                changes["metadata"] = validate_metadata(metadata)
            kb = replace(kb, **changes)
            self._repository.update_knowledge_base(kb)
            return KnowledgeBaseInfo(kb, self._repository.stats(kb_name))

    def delete_knowledge_base(self, name: str) -> None:
        """Remove a knowledge base with all its documents and vectors."""
        self._catalog.remove(name)

    # Documents

    def add_documents(self, kb_name: str, documents: Sequence[NewDocument]) -> list[Document]:
        """Embed and store new documents, all or none; DocumentExistsError if an id is taken."""
        kb, slot = self._usable(kb_name)
        ids = [doc.id if doc.id is not None else new_document_id() for doc in documents]
        _reject_repeats(ids)
        self._reject_existing(kb_name, ids)
        encoded = encode_texts(
            self.embedder, [doc.text for doc in documents], kb.chunking, kb.chunk_overlap
        )
        now = self._clock()
        with self._writing(kb_name, slot):
            labels = self._repository.allocate_chunk_ids(sum(len(e.spans) for e in encoded))
            stored: list[Document] = []
            for doc_id, doc, enc in zip(ids, documents, encoded):
                chunk_labels, labels = labels[: len(enc.spans)], labels[len(enc.spans) :]
                stored.append(
                    _document(doc_id, doc.text, doc.metadata, now, now, enc, chunk_labels)
                )
            vectors = _stack([e.vectors for e in encoded], kb.dimension)
            self._repository.add_documents(kb_name, stored, vectors)
            slot.index.add(_labels(stored), vectors)
            slot.keywords.add([(doc.id, doc.text) for doc in stored])
        return stored

    def upsert_document(
        self, kb_name: str, document_id: str, text: str, metadata: Mapping[str, Any] | None = None
    ) -> tuple[Document, bool]:
        """Create or replace a document, re-embedding only a changed text; (document, created)."""
        kb, slot = self._usable(kb_name)
        new = NewDocument(text=text, id=document_id, metadata=metadata or {})
        encoded: EncodedText | None = None
        while True:
            current = self._find(kb_name, document_id)
            if current is not None and current.text == new.text:
                with self._writing(kb_name, slot):
                    if self._find(kb_name, document_id) == current:
                        return self._repository.update_metadata(
                            kb_name, document_id, dict(new.metadata), self._clock()
                        ), False
                continue
            if encoded is None:
                (encoded,) = encode_texts(self.embedder, [new.text], kb.chunking, kb.chunk_overlap)
            with self._writing(kb_name, slot):
                return self._replace(kb_name, slot, new, encoded)

    def update_document_metadata(
        self, kb_name: str, document_id: str, metadata: Mapping[str, Any]
    ) -> Document:
        """Replace a document's metadata without re-embedding it."""
        _, slot = self._usable(kb_name)
        with self._writing(kb_name, slot):
            return self._repository.update_metadata(
                kb_name, document_id, validate_metadata(metadata), self._clock()
            )

    def get_document(self, kb_name: str, document_id: str) -> Document:
        return self._repository.get_document(kb_name, document_id)

    def list_documents(
        self,
        kb_name: str,
        limit: int = 100,
        cursor: str | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Page:
        """A page of documents by id; the cursor is the last id, so inserts never shift pages."""
        where = parse_filter(filter) if filter is not None else None
        found = self._repository.list_documents(kb_name, limit + 1, decode_cursor(cursor), where)
        more = len(found) > limit
        return Page(found[:limit], encode_cursor(found[limit - 1].id) if more else None)

    def delete_document(self, kb_name: str, document_id: str) -> None:
        """Remove one document and its vectors; DocumentNotFoundError if absent."""
        if not self.delete_documents(kb_name, [document_id]):
            raise DocumentNotFoundError(kb_name, document_id)

    def delete_documents(
        self,
        kb_name: str,
        document_ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Remove the listed documents and/or those matching `filter`; return the ids removed.

        With both, a document must be listed and match. `dry_run` removes nothing and returns
        what would go.
        """
        if document_ids is None and filter is None:
            raise InvalidInputError(
                "give 'ids', 'filter' or both", errors={"_schema": ["ids or filter required"]}
            )
        where = parse_filter(filter) if filter is not None else None
        slot = self._catalog.slot(kb_name)
        with self._writing(kb_name, slot):
            doomed = self._doomed(kb_name, document_ids, where)
            if dry_run:
                return doomed
            removed = self._repository.remove_documents(kb_name, doomed)
            slot.index.remove(_labels(removed))
            slot.keywords.remove([doc.id for doc in removed])
        return [doc.id for doc in removed]

    # Search

    def search(self, kb_name: str, request: SearchRequest) -> list[Hit]:
        """Rank the knowledge base's documents by cosine similarity to the query, best first."""
        return self.search_many(kb_name, [request])[0]

    def search_many(self, kb_name: str, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """Answer up to 64 searches at once; their query texts share one model batch."""
        if not 1 <= len(requests) <= MAX_BATCH_QUERIES:
            raise InvalidInputError(
                f"a batch holds 1 to {MAX_BATCH_QUERIES} searches",
                errors={"queries": [f"1 to {MAX_BATCH_QUERIES} searches"]},
            )
        kb, slot = self._usable(kb_name)
        return self._ranker.search(kb, slot, requests)

    # Helpers

    @contextmanager
    def _writing(self, kb_name: str, slot: Slot) -> Iterator[None]:
        """Hold the knowledge base exclusively, provided `slot` is still its live index.

        A request takes the slot before embedding; if the knowledge base was deleted (and maybe
        re-created) meanwhile, writing would put vectors into a discarded index.
        """
        with slot.lock.writing():
            if not self._catalog.is_live(kb_name, slot):
                self._repository.get_knowledge_base(kb_name)  # KnowledgeBaseNotFoundError
                raise ConflictError(
                    f"knowledge base {kb_name!r} was deleted and re-created while this request "
                    "ran; nothing was written. Send the request again."
                )
            yield

    def _usable(self, kb_name: str) -> tuple[KnowledgeBase, Slot]:
        slot = self._catalog.slot(kb_name)
        kb = self._repository.get_knowledge_base(kb_name)
        if kb.model != self.embedder.model_name or kb.dimension != self.embedder.dimension:
            raise ModelMismatchError(
                f"knowledge base {kb_name!r} was built with model {kb.model!r} "
                f"({kb.dimension} dimensions) but the service runs {self.embedder.model_name!r} "
                f"({self.embedder.dimension} dimensions); start it with KB_EMBEDDING_MODEL="
                f"{kb.model!r} to use this knowledge base"
            )
        return kb, slot

    def _doomed(
        self, kb_name: str, document_ids: Sequence[str] | None, where: Filter | None
    ) -> list[str]:
        if where is None:
            assert document_ids is not None
            return self._repository.existing_ids(kb_name, list(dict.fromkeys(document_ids)))
        matching = self._repository.list_documents(kb_name, sys.maxsize, None, where)
        listed = None if document_ids is None else set(document_ids)
        return [doc.id for doc in matching if listed is None or doc.id in listed]

    def _find(self, kb_name: str, document_id: str) -> Document | None:
        try:
            return self._repository.get_document(kb_name, document_id)
        except DocumentNotFoundError:
            return None

    def _reject_existing(self, kb_name: str, ids: Sequence[str]) -> None:
        taken = self._repository.existing_ids(kb_name, ids)
        if taken:
            raise DocumentExistsError(kb_name, taken)

    def _replace(
        self, kb_name: str, slot: Slot, new: NewDocument, encoded: EncodedText
    ) -> tuple[Document, bool]:
        assert new.id is not None
        previous = self._find(kb_name, new.id)
        now = self._clock()
        created_at = previous.created_at if previous else now
        labels = self._repository.allocate_chunk_ids(len(encoded.spans))
        document = _document(new.id, new.text, new.metadata, created_at, now, encoded, labels)
        self._repository.replace_document(kb_name, document, encoded.vectors)
        if previous is not None:
            slot.index.remove(_labels([previous]))
            slot.keywords.remove([previous.id])
        slot.index.add(_labels([document]), encoded.vectors)
        slot.keywords.add([(document.id, document.text)])
        return document, previous is None


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

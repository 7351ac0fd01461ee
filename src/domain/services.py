"""KnowledgeBaseService: the use cases every entrypoint (HTTP, CLI, library) calls."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from domain.access import Clock, utc_now
from domain.cursor import decode_cursor, encode_cursor
from domain.documents import DocumentUseCases, new_document_id
from domain.errors import InvalidInputError
from domain.model import (
    Chunking,
    Hit,
    KnowledgeBase,
    KnowledgeBaseStats,
    Page,
    validate_description,
    validate_metadata,
    validate_name,
)
from domain.ports import (
    IndexInfo,
)
from domain.ranking import SearchRequest

__all__ = ["Clock", "KnowledgeBaseInfo", "KnowledgeBaseService", "new_document_id", "utc_now"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_OVERLAP = 32
MAX_BATCH_QUERIES = 64


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    """A knowledge base with its live counts and what its vector index is like now."""

    knowledge_base: KnowledgeBase
    stats: KnowledgeBaseStats
    index: IndexInfo


class KnowledgeBaseService(DocumentUseCases):
    """Create knowledge bases, add and remove documents, and rank documents by similarity.

    Thread-safe: embedding happens outside any lock; each knowledge base lets searches run
    together and gives writes exclusive access, so the index and the repository agree.

    Build it with `KnowledgeBaseService(embedder, repository, index_factory, keyword_factory)`,
    e.g. `index_factory=by_dimension(FaissVectorIndex)`; `keyword_factory` enables hybrid
    (keyword + meaning) search, without it only dense. Stores shared by several processes
    also pass `transaction=` (a UnitOfWork) so each write commits as one.
    """

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
            description=validate_description(description),
            metadata=metadata or {},
            chunking=Chunking(chunking),
            chunk_overlap=chunk_overlap,
        )
        self._catalog.create(kb)
        return kb

    def get_knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        kb = self._repository.get_knowledge_base(validate_name(name))
        return self._info(kb)

    def list_knowledge_bases(self, limit: int = 100, cursor: str | None = None) -> Page:
        found = self._repository.list_knowledge_bases(limit + 1, decode_cursor(cursor))
        items = [self._info(kb) for kb in found[:limit]]
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
                changes["description"] = validate_description(description)
            if metadata is not None:
                changes["metadata"] = validate_metadata(metadata)
            kb = replace(kb, **changes)
            self._repository.update_knowledge_base(kb)
            return self._info(kb)

    def _info(self, kb: KnowledgeBase) -> KnowledgeBaseInfo:
        index = self._catalog.slot(kb.name).index.describe()
        return KnowledgeBaseInfo(kb, self._repository.stats(kb.name), index)

    def delete_knowledge_base(self, name: str) -> None:
        """Remove a knowledge base with all its documents and vectors."""
        self._catalog.remove(name)

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

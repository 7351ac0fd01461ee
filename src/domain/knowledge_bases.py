"""Knowledge base use cases: load, create, read, list, count, update and delete them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from domain.catalog import WriteContext
from domain.cursor import decode_cursor, encode_cursor
from domain.errors import InvalidInputError, ModelMismatchError
from domain.model import (
    Chunking,
    KnowledgeBase,
    KnowledgeBaseStats,
    Page,
    validate_description,
    validate_metadata,
    validate_name,
)
from domain.ports import IndexInfo, KnowledgeBaseStore

log = logging.getLogger(__name__)

DEFAULT_CHUNK_OVERLAP = 32


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    """A knowledge base with its live counts and what its vector index is like now."""

    knowledge_base: KnowledgeBase
    stats: KnowledgeBaseStats
    index: IndexInfo


class KnowledgeBaseUseCases:
    """Knowledge bases bound to the loaded model; `embedder` only names it and sizes its window."""

    def __init__(self, context: WriteContext, knowledge_bases: KnowledgeBaseStore) -> None:
        self._catalog, self._embedder, self._clock = context
        self._knowledge_bases = knowledge_bases

    def load(self) -> int:
        """Build every knowledge base's index from the store; return how many."""
        count = 0
        after: str | None = None
        while batch := self._knowledge_bases.list_knowledge_bases(500, after):
            for kb in batch:
                self._catalog.load(kb)
                self._check_model(kb.name)
            count += len(batch)
            after = batch[-1].name
        return count

    def _check_model(self, name: str) -> None:
        """Adopt a knowledge base from before fingerprints now, or say at start why not."""
        try:
            self._catalog.usable(name)
        except ModelMismatchError as error:
            log.error("%s. Until then it refuses searches and writes.", error.message)

    def create(
        self,
        name: str,
        description: str,
        metadata: Mapping[str, Any] | None,
        chunking: Chunking | str,
        chunk_overlap: int | None,
    ) -> KnowledgeBase:
        window = self._embedder.window
        if chunk_overlap is None:
            chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, window // 2)
        if not 0 <= chunk_overlap < window:
            raise InvalidInputError(
                f"chunk_overlap must be between 0 and {window - 1}",
                errors={"chunk_overlap": [f"must be in [0, {window - 1}]"]},
            )
        kb = KnowledgeBase(
            name=validate_name(name),
            model=self._embedder.model_name,
            dimension=self._embedder.dimension,
            created_at=self._clock(),
            description=validate_description(description),
            metadata=metadata or {},
            chunking=Chunking(chunking),
            chunk_overlap=chunk_overlap,
            fingerprint=self._embedder.fingerprint,
        )
        self._catalog.create(kb)
        return kb

    def get(self, name: str) -> KnowledgeBaseInfo:
        return self._info(self._knowledge_bases.get_knowledge_base(validate_name(name)))

    def page(self, limit: int, cursor: str | None) -> Page:
        found = self._knowledge_bases.list_knowledge_bases(limit + 1, decode_cursor(cursor))
        items = [self._info(kb) for kb in found[:limit]]
        more = len(found) > limit
        return Page(items, encode_cursor(found[limit - 1].name) if more else None)

    def count(self) -> int:
        count, after = 0, None
        while batch := self._knowledge_bases.list_knowledge_bases(1000, after):
            count, after = count + len(batch), batch[-1].name
        return count

    def update(
        self, name: str, description: str | None, metadata: Mapping[str, Any] | None
    ) -> KnowledgeBaseInfo:
        slot = self._catalog.slot(name)
        with self._catalog.writing(name, slot):
            kb = self._knowledge_bases.get_knowledge_base(name)
            changes: dict[str, Any] = {}
            if description is not None:
                changes["description"] = validate_description(description)
            if metadata is not None:
                changes["metadata"] = validate_metadata(metadata)
            kb = replace(kb, **changes)
            self._knowledge_bases.update_knowledge_base(kb)
            return self._info(kb)

    def delete(self, name: str) -> None:
        self._catalog.remove(name)

    def _info(self, kb: KnowledgeBase) -> KnowledgeBaseInfo:
        index = self._catalog.slot(kb.name).index.describe()
        return KnowledgeBaseInfo(kb, self._knowledge_bases.stats(kb.name), index)

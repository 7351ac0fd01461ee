"""Search: turn a query into a unit vector and rank documents by their best chunk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.catalog import Slot
from domain.encoding import encode_query, mean_direction, vector_query
from domain.errors import InvalidInputError
from domain.model import Document, Hit, KnowledgeBase, Passage
from domain.ports import DocumentRepository, Embedder, Vectors

MAX_TOP_K = 1000


@dataclass(frozen=True)
class SearchRequest:
    """Exactly one of `query` (text), `document_id` (more like this) or `vector`."""

    query: str | None = None
    document_id: str | None = None
    vector: Sequence[float] | None = None
    top_k: int = 10
    min_score: float | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("query", "document_id", "vector") if getattr(self, n) is not None]
        if len(given) != 1:
            raise InvalidInputError(
                "give exactly one of 'query', 'document_id' or 'vector'",
                errors={"_schema": ["exactly one of query, document_id, vector is required"]},
            )
        if self.query is not None and not self.query.strip():
            raise InvalidInputError("query must not be empty", errors={"query": ["empty"]})
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidInputError(
                f"top_k must be between 1 and {MAX_TOP_K}",
                errors={"top_k": [f"must be in [1, {MAX_TOP_K}]"]},
            )
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise InvalidInputError(
                "min_score must be between -1 and 1", errors={"min_score": ["must be in [-1, 1]"]}
            )


class Ranker:
    """Ranks a knowledge base's documents by the cosine similarity of their best chunk."""

    def __init__(self, embedder: Embedder, repository: DocumentRepository) -> None:
        self._embedder = embedder
        self._repository = repository

    def search(self, kb: KnowledgeBase, slot: Slot, request: SearchRequest) -> list[Hit]:
        vector = self._query_vector(kb, request)
        with slot.lock.reading():
            if request.document_id is not None:
                vector = self._document_vector(kb, slot, request.document_id)
            assert vector is not None
            return self._rank(kb.name, slot, vector, request)

    def _query_vector(self, kb: KnowledgeBase, request: SearchRequest) -> Vectors | None:
        # Text is embedded before any lock is taken: the model is the slow part.
        if request.query is not None:
            return encode_query(self._embedder, request.query, kb.chunking, kb.chunk_overlap)
        if request.vector is not None:
            return vector_query(request.vector, kb.dimension)
        return None

    def _document_vector(self, kb: KnowledgeBase, slot: Slot, document_id: str) -> Vectors:
        document = self._repository.get_document(kb.name, document_id)
        vectors = slot.index.get([chunk.id for chunk in document.chunks])
        return vectors[0] if len(vectors) == 1 else mean_direction(vectors)

    def _rank(self, kb: str, slot: Slot, vector: Vectors, request: SearchRequest) -> list[Hit]:
        total = len(slot.index)
        excluded = request.document_id
        k = min(total, request.top_k + (1 if excluded else 0))
        while k > 0:
            pairs = slot.index.search(vector, k)
            owners = self._repository.documents_for_chunks(kb, [label for label, _ in pairs])
            best: dict[str, Hit] = {}
            for label, score in pairs:
                if request.min_score is not None and score < request.min_score:
                    return list(best.values())
                document = owners.get(label)
                if document is None or document.id == excluded or document.id in best:
                    continue
                best[document.id] = _hit(document, label, score)
                if len(best) == request.top_k:
                    return list(best.values())
            if k >= total:
                return list(best.values())
            # Several chunks of one document can fill the first k: look further.
            k = min(total, k * 4)
        return []


def _hit(document: Document, label: int, score: float) -> Hit:
    span = next(chunk.span for chunk in document.chunks if chunk.id == label)
    return Hit(
        id=document.id,
        score=min(1.0, max(-1.0, float(score))),
        text=document.text,
        metadata=document.metadata,
        passage=Passage(span.start, span.end, document.text[span.start : span.end]),
    )

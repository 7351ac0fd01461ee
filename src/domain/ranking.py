"""Search: turn queries into unit vectors and rank documents by their best chunk."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from domain.catalog import Catalog, Slot
from domain.encoding import encode_texts, mean_direction, vector_query
from domain.errors import InvalidInputError
from domain.explanation import Explanation, Signal
from domain.fusion import coverage, fuse
from domain.model import Document, Hit, KnowledgeBase, Passage
from domain.ports import ChunkLookup, Embedder, UnitOfWork, Vectors
from domain.search_request import (
    HIT_FIELDS,
    MAX_BATCH_QUERIES,
    MAX_KEYWORD_QUERY_CHARS,
    MAX_QUERY_CHUNKS,
    MAX_TOP_K,
    SearchRequest,
)

__all__ = ["MAX_TOP_K", "Ranker", "SearchRequest"]

EXACT_PASS_LIMIT = 4096  # filtered searches over fewer chunks skip the index: a dot product each
MMR_POOL = 50


class Ranker:
    """Ranks a knowledge base's documents by the cosine similarity of their best chunk."""

    def __init__(
        self,
        catalog: Catalog,
        documents: ChunkLookup,
        embedder: Embedder,
        snapshot: UnitOfWork,
    ) -> None:
        self._catalog = catalog
        self._documents = documents
        self._embedder = embedder
        self._snapshot = snapshot

    def search(self, kb_name: str, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """Answer 1 to MAX_BATCH_QUERIES requests; their query texts share one model batch."""
        if not 1 <= len(requests) <= MAX_BATCH_QUERIES:
            raise InvalidInputError(
                f"a batch holds 1 to {MAX_BATCH_QUERIES} searches",
                errors={"queries": [f"1 to {MAX_BATCH_QUERIES} searches"]},
            )
        kb, slot = self._catalog.usable(kb_name)
        vectors = self._query_vectors(kb, requests)
        # The lock before the snapshot's pooled connection, in the order writers take them.
        with slot.lock.reading(), self._snapshot():
            # Every read below sees one state of the store; it must still hold the knowledge
            # base (another process may have deleted it while the queries were embedded).
            self._catalog.stored(kb.name)
            results = []
            for request, vector in zip(requests, vectors):
                if request.document_id is not None:
                    vector = self._document_vector(kb, slot, request.document_id)
                assert vector is not None
                results.append(self._rank(kb.name, slot, vector, request))
            return results

    def _query_vectors(
        self, kb: KnowledgeBase, requests: Sequence[SearchRequest]
    ) -> list[Vectors | None]:
        # Text is embedded before any lock is taken: the model is the slow part.
        texts = [r.query for r in requests if r.query is not None]
        encoded = iter(
            encode_texts(self._embedder, texts, kb.chunking, kb.chunk_overlap, MAX_QUERY_CHUNKS)
        )
        vectors: list[Vectors | None] = []
        for request in requests:
            if request.query is not None:
                chunks = next(encoded).vectors
                vectors.append(chunks[0] if len(chunks) == 1 else mean_direction(chunks))
            elif request.vector is not None:
                vectors.append(vector_query(request.vector, kb.dimension))
            else:
                vectors.append(None)
        return vectors

    def _document_vector(self, kb: KnowledgeBase, slot: Slot, document_id: str) -> Vectors:
        document = self._documents.get_document(kb.name, document_id)
        vectors = slot.index.get([chunk.id for chunk in document.chunks])
        return vectors[0] if len(vectors) == 1 else mean_direction(vectors)

    def _rank(self, kb: str, slot: Slot, vector: Vectors, request: SearchRequest) -> list[Hit]:
        allowed = None
        if request.where is not None:
            allowed = set(self._documents.chunk_ids_matching(kb, request.where))
        hybrid = request.mode == "hybrid"
        pooled = request.diversity > 0 or hybrid
        wanted = max(request.top_k * 2, MMR_POOL) if pooled else request.top_k
        hits = self._best_documents(kb, slot, vector, request, allowed, wanted)
        if hybrid:
            hits = self._fuse(kb, slot, vector, request, hits, wanted)
        elif request.explain:
            hits = [
                replace(hit, explain=Explanation(Signal(hit.score, rank)))
                for rank, hit in enumerate(hits, start=1)
            ]
        if request.diversity > 0 and len(hits) > 1:
            hits = self._diversify(slot, vector, hits, request)
        if len(request.fields) < len(HIT_FIELDS):
            return [hit.keeping(request.fields) for hit in hits[: request.top_k]]
        return hits[: request.top_k]

    def _best_documents(
        self,
        kb: str,
        slot: Slot,
        vector: Vectors,
        request: SearchRequest,
        allowed: set[int] | None,
        wanted: int,
    ) -> list[Hit]:
        total = len(slot.index) if allowed is None else len(allowed)
        k = min(total, wanted + (1 if request.document_id else 0))
        while k > 0:
            pairs = self._nearest(slot, vector, k, allowed, request)
            owners = self._documents.documents_for_chunks(kb, [label for label, _ in pairs])
            best: dict[str, Hit] = {}
            for label, score in pairs:
                if request.min_score is not None and score < request.min_score:
                    return list(best.values())
                document = owners.get(label)
                if document is None or document.id == request.document_id or document.id in best:
                    continue
                best[document.id] = _hit(document, label, score)
                if len(best) == wanted:
                    return list(best.values())
            if k >= total:
                return list(best.values())
            # Several chunks of one document can fill the first k: look further.
            k = min(total, k * 4)
        return []

    def _fuse(
        self,
        kb: str,
        slot: Slot,
        vector: Vectors,
        request: SearchRequest,
        dense: list[Hit],
        wanted: int,
    ) -> list[Hit]:
        """The dense hits fused with BM25 hits on the query's words (domain/fusion.py)."""
        looked_up = self._keyword_text(kb, request)
        allowed_ids = None
        if request.where is not None:
            matching = self._documents.list_documents(kb, sys.maxsize, None, request.where)
            allowed_ids = {doc.id for doc in matching}
        keyword = [
            (doc_id, score)
            for doc_id, score in slot.keywords.search(looked_up, wanted + 1, allowed_ids)
            if doc_id != request.document_id
        ]
        by_id = {hit.id: hit for hit in dense}
        for doc_id, _ in keyword:
            if doc_id not in by_id:
                by_id[doc_id] = self._scored(kb, slot, vector, doc_id)
        covered: dict[str, float] = {}
        if keyword and request.fusion == "score":
            matches = slot.keywords.term_matches(looked_up, [doc_id for doc_id, _ in keyword])
            covered = coverage(matches)
        cosines = {doc_id: hit.score for doc_id, hit in by_id.items()}
        dense_pairs = [(hit.id, hit.score) for hit in dense]
        fused: list[Hit] = []
        for doc_id, why in fuse(
            dense_pairs, keyword, cosines, covered, request.fusion, request.weight, request.rrf_k
        ):
            hit = by_id[doc_id]
            if request.min_score is None or hit.score >= request.min_score:
                explain = why if request.explain else None
                fused.append(replace(hit, fusion_score=why.fused, explain=explain))
        return fused

    def _keyword_text(self, kb: str, request: SearchRequest) -> str:
        """The query's text, or the "more like this" document's, cut to what a lookup reads."""
        text = request.query
        if text is None and request.document_id is not None:
            text = self._documents.get_document(kb, request.document_id).text
        return (text or "")[:MAX_KEYWORD_QUERY_CHARS]

    def _scored(self, kb: str, slot: Slot, vector: Vectors, document_id: str) -> Hit:
        """A keyword-only hit: its cosine score is its best chunk's, as for dense hits."""
        document = self._documents.get_document(kb, document_id)
        labels = [chunk.id for chunk in document.chunks]
        scores = slot.index.get(labels) @ vector
        best = int(np.argmax(scores))
        return _hit(document, labels[best], float(scores[best]))

    def _nearest(
        self,
        slot: Slot,
        vector: Vectors,
        k: int,
        allowed: set[int] | None,
        request: SearchRequest,
    ) -> list[tuple[int, float]]:
        if allowed is None or len(allowed) > EXACT_PASS_LIMIT:
            return slot.index.search(vector, k, allowed, request.probes, request.exact)
        labels = sorted(allowed)
        scores = slot.index.get(labels) @ vector
        top = np.argsort(-scores, kind="stable")[:k]
        return [(labels[i], float(scores[i])) for i in top]

    def _diversify(
        self, slot: Slot, vector: Vectors, hits: list[Hit], request: SearchRequest
    ) -> list[Hit]:
        """Maximal marginal relevance over the candidates' best chunks."""
        chosen_vectors = slot.index.get([hit.chunk for hit in hits])
        relevance = chosen_vectors @ vector
        similarity = chosen_vectors @ chosen_vectors.T
        weight = request.diversity
        redundancy = np.full(len(hits), -np.inf)  # highest similarity to anything picked
        picked: list[int] = []
        left = np.ones(len(hits), dtype=bool)
        while left.any() and len(picked) < request.top_k:
            penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
            value = np.where(left, (1 - weight) * relevance - weight * penalty, -np.inf)
            best = int(np.argmax(value))
            picked.append(best)
            left[best] = False
            redundancy = np.maximum(redundancy, similarity[best])
        return [hits[i] for i in picked]


def _hit(document: Document, label: int, score: float) -> Hit:
    span = next(chunk.span for chunk in document.chunks if chunk.id == label)
    return Hit(
        id=document.id,
        score=min(1.0, max(-1.0, float(score))),
        text=document.text,
        metadata=document.metadata,
        passage=Passage(
            span.start,
            span.end,
            document.text[span.start : span.end],
            document.layout.page_of(span.start),
        ),
        chunk=label,
    )

"""Fakes for the domain's ports: deterministic, instant, no torch."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from domain.digests import DocumentDigest, content_hash
from domain.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    JobNotFoundError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
)
from domain.filters import Filter, matches
from domain.jobs import Job, JobStatus
from domain.keywords import MAX_MATCHED_TERMS, TermMatches, query_terms
from domain.model import Document, KnowledgeBase, KnowledgeBaseStats
from domain.ports import IndexInfo, Vectors

WORD = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """Bag-of-words embedder: texts sharing words are similar, identical texts score 1.0.

    Each word piece is a regex token; every word hashes to a fixed random direction, so the
    results are stable across runs and processes. `calls` records every `embed` batch. Its
    fingerprint follows what changes its vectors (dimension, window) and its name, unless
    given: the same `fingerprint` under another name is the same model in another place.
    """

    def __init__(
        self,
        dimension: int = 32,
        window: int = 16,
        model_name: str = "fake-model",
        fingerprint: str | None = None,
    ):
        self._dimension = dimension
        self._window = window
        self._model_name = model_name
        identity = f"{model_name}\0{dimension}\0{window}"
        self._fingerprint = fingerprint or hashlib.sha256(identity.encode()).hexdigest()
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._window + 2

    @property
    def window(self) -> int:
        return self._window

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in WORD.finditer(text)]

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.calls.append(list(texts))
        rows = np.zeros((len(texts), self._dimension), np.float32)
        for row, text in enumerate(texts):
            words = [text[s:e].lower() for s, e in self.token_offsets(text)][: self._window]
            for word in words:
                rows[row] += self._direction(word)
            norm = np.linalg.norm(rows[row])
            rows[row] = rows[row] / norm if norm else self._direction("")
        return rows

    def _direction(self, word: str) -> Vectors:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self._dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


class FakeEncoder(FakeEmbedder):
    """The embedding package's `Encoder` port over the same bag of words: `encode` is one call.

    `releases` counts `release_memory` calls (the wrapper's idle hook).
    """

    call_overhead = 6

    def __init__(self, *args: Any, concurrent_calls: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.concurrent_calls = concurrent_calls
        self.releases = 0

    def encode(self, texts: list[str]) -> Vectors:
        return self.embed(texts)

    def release_memory(self) -> None:
        self.releases += 1


class FakeVectorIndex:
    """Brute-force `VectorIndex` over a dict: the reference the FAISS adapter must match."""

    def __init__(self, dimension: int, kept: dict[int, Vectors] | None = None) -> None:
        self._dimension = dimension
        self._vectors: dict[int, Vectors] = {}
        self.expected: list[int] = []  # every `expect` hint, for tests of who gives them
        # Its "copy kept between runs": taken back by `resume`, emptied by `discard`.
        self.kept = kept if kept is not None else {}
        self.discarded = False

    def resume(self) -> np.ndarray:
        self._vectors = {label: vector.copy() for label, vector in self.kept.items()}
        return np.array(sorted(self._vectors), dtype=np.int64)

    def discard(self) -> None:
        self.kept.clear()
        self.discarded = True

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return len(self._vectors)

    def expect(self, count: int) -> None:
        self.expected.append(count)

    def add(self, labels: np.ndarray, vectors: Vectors) -> None:
        keys = [int(label) for label in labels]
        if len(set(keys)) != len(keys) or set(keys) & self._vectors.keys():
            raise ValueError("labels must be unique and new")
        if np.shape(vectors) != (len(keys), self._dimension):
            raise ValueError("wrong vector shape")
        self._vectors.update(zip(keys, np.asarray(vectors, np.float32)))

    def remove(self, labels: Collection[int]) -> int:
        return sum(self._vectors.pop(int(label), None) is not None for label in set(labels))

    def get(self, labels: Sequence[int]) -> Vectors:
        rows = [self._vectors[int(label)] for label in labels]
        return np.vstack(rows) if rows else np.zeros((0, self._dimension), np.float32)

    def describe(self) -> IndexInfo:
        return IndexInfo("fake", len(self._vectors) * self._dimension * 4)

    def search(
        self,
        vector: Vectors,
        k: int,
        allowed: Collection[int] | None = None,
        probes: int | None = None,
        exact: bool = False,
    ) -> list[tuple[int, float]]:
        scored = [  # always exact
            (label, float(np.dot(stored, vector)))
            for label, stored in self._vectors.items()
            if allowed is None or label in allowed
        ]
        scored.sort(key=lambda pair: -pair[1])
        return scored[:k]


class FakeDocumentRepository:
    """Linear-scan `DocumentRepository` over plain dicts; keeps vectors, like a durable one."""

    def __init__(self) -> None:
        self.kbs: dict[str, KnowledgeBase] = {}
        self.docs: dict[str, dict[str, Document]] = {}
        self.vectors: dict[str, dict[int, Vectors]] = {}
        self.building: dict[str, str] = {}  # unpublished knowledge bases: name -> job id
        self._next = 1

    def _docs(self, name: str, unpublished: bool = False) -> dict[str, Document]:
        if name not in self.kbs or (name in self.building and not unpublished):
            raise KnowledgeBaseNotFoundError(name)
        return self.docs[name]

    def add_knowledge_base(self, kb: KnowledgeBase, building: str | None = None) -> None:
        if kb.name in self.kbs:
            raise KnowledgeBaseExistsError(kb.name)
        self.kbs[kb.name], self.docs[kb.name], self.vectors[kb.name] = kb, {}, {}
        if building is not None:
            self.building[kb.name] = building

    def publish_knowledge_base(self, name: str) -> None:
        if self.building.pop(name, None) is None:
            raise KnowledgeBaseNotFoundError(name)

    def unpublished_knowledge_bases(self) -> list[tuple[str, str]]:
        return sorted(self.building.items())

    def remove_unpublished(self, name: str) -> bool:
        if self.building.pop(name, None) is None:
            return False
        del self.kbs[name], self.docs[name], self.vectors[name]
        return True

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        self._docs(name)
        return self.kbs[name]

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        names = [n for n in sorted(self.kbs) if n not in self.building]
        return [self.kbs[n] for n in names if after is None or n > after][:limit]

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        self._docs(kb.name)
        self.kbs[kb.name] = kb

    def remove_knowledge_base(self, name: str) -> None:
        self._docs(name)
        del self.kbs[name], self.docs[name], self.vectors[name]

    def stats(self, name: str) -> KnowledgeBaseStats:
        docs = self._docs(name).values()
        return KnowledgeBaseStats(len(docs), sum(len(d.chunks) for d in docs))

    def allocate_chunk_ids(self, count: int) -> list[int]:
        start, self._next = self._next, self._next + count
        return list(range(start, self._next))

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        docs = self._docs(kb, unpublished=True)
        taken = [d.id for d in documents if d.id in docs]
        if taken:
            raise DocumentExistsError(kb, taken)
        labels = [c.id for d in documents for c in d.chunks]
        docs.update((d.id, d) for d in documents)
        self.vectors[kb].update(zip(labels, vectors))

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        previous = self._docs(kb).get(document.id)
        if previous is not None:
            self.remove_documents(kb, [document.id])
        self.add_documents(kb, [document], vectors)
        return previous

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        document = replace(
            self.get_document(kb, document_id), metadata=metadata, updated_at=updated_at
        )
        self.docs[kb][document_id] = document
        return document

    def get_document(self, kb: str, document_id: str) -> Document:
        document = self._docs(kb).get(document_id)
        if document is None:
            raise DocumentNotFoundError(kb, document_id)
        return document

    def existing_ids(self, kb: str, document_ids: Collection[str]) -> list[str]:
        return [i for i in document_ids if i in self._docs(kb)]

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        docs = self._docs(kb)
        chosen = [docs[i] for i in sorted(docs) if after is None or i > after]
        return [d for d in chosen if where is None or matches(where, d.metadata)][:limit]

    def list_digests(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[DocumentDigest]:
        listed = self.list_documents(kb, limit, after, where)
        return [DocumentDigest(d.id, d.content_hash, d.metadata) for d in listed]

    def content_hashes(self, kb: str, limit: int, after: str | None = None):
        return [(d.id, d.content_hash) for d in self.list_documents(kb, limit, after)]

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        docs = self._docs(kb).values()
        return [c.id for d in docs if matches(where, d.metadata) for c in d.chunks]

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        docs = self._docs(kb)
        removed = [docs.pop(i) for i in dict.fromkeys(document_ids) if i in docs]
        for chunk in (c for d in removed for c in d.chunks):
            del self.vectors[kb][chunk.id]
        return removed

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        owners = {c.id: d for d in self._docs(kb).values() for c in d.chunks}
        return {label: owners[label] for label in chunk_ids if label in owners}

    def chunk_labels(self, kb: str) -> np.ndarray:
        self._docs(kb)
        return np.array(sorted(self.vectors[kb]), dtype=np.int64)

    def load_vectors(
        self, kb: str, labels: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, Vectors]]:
        kept = self.vectors[kb]
        wanted = self.chunk_labels(kb) if labels is None else np.intersect1d(list(kept), labels)
        for first in range(0, len(wanted), 2):  # tiny batches: callers must take several
            batch = wanted[first : first + 2]
            yield batch, np.vstack([kept[int(label)] for label in batch])


class FakeKeywordIndex:
    """Word-overlap keyword index scored by inverse document frequency: a tiny BM25 stand-in.

    With `kept`, a dict the test holds (document id -> text), it keeps a copy of itself there
    as the FTS5 index keeps its file: every add and remove is written to it, `resume` takes it
    back (an empty one counts as none), `discard` empties it and writes to it no more.
    """

    def __init__(self, kept: dict[str, str] | None = None) -> None:
        self._words: dict[str, set[str]] = {}
        self._kept = kept

    def __len__(self) -> int:
        return len(self._words)

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        for doc_id, text in documents:
            self._words[doc_id] = {w.lower() for w in re.findall(r"\w+", text)}
            if self._kept is not None:
                self._kept[doc_id] = text

    def remove(self, document_ids: Collection[str]) -> None:
        for doc_id in document_ids:
            self._words.pop(doc_id, None)
            if self._kept is not None:
                self._kept.pop(doc_id, None)

    def resume(self, kept: Iterable[tuple[str, str]]) -> list[str] | None:
        stored = list(kept)
        if [doc_id for doc_id, _ in stored] != sorted({doc_id for doc_id, _ in stored}):
            raise ValueError("document ids not in ascending order")
        copy = self._kept
        if not copy:
            return None
        hashes = dict(stored)
        for doc_id, text in list(copy.items()):
            if hashes.get(doc_id) != content_hash(text):
                del copy[doc_id]
        if not copy:
            return None
        self.add(list(copy.items()))
        return [doc_id for doc_id, _ in stored if doc_id not in copy]

    def discard(self) -> None:
        if self._kept is not None:
            self._kept.clear()
        self._kept = None

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        query = set(query_terms(text))
        total = len(self._words)

        def idf(word: str) -> float:
            df = sum(word in words for words in self._words.values())
            return float(np.log(1 + total / df)) if df else 0.0

        scored = [
            (doc_id, sum(idf(w) for w in query & words))
            for doc_id, words in self._words.items()
            if (allowed is None or doc_id in allowed) and query & words
        ]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[:k]

    def term_matches(self, text: str, document_ids: Collection[str]) -> TermMatches:
        terms = query_terms(text)[:MAX_MATCHED_TERMS]
        frequencies = {t: sum(t in words for words in self._words.values()) for t in terms}
        matched = {
            doc_id: frozenset(set(terms) & self._words[doc_id])
            for doc_id in document_ids
            if doc_id in self._words and set(terms) & self._words[doc_id]
        }
        return TermMatches(len(self._words), frequencies, matched)


class FakeJobStore:
    """`JobStore` over a dict; `writes` counts the calls that change a job."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.writes = 0
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self.jobs[job.id] = job

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFoundError(job_id)
        return self.jobs[job_id]

    def list(self, limit: int) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda job: job.created_at, reverse=True)[:limit]

    def update(self, job: Job) -> Job:
        with self._lock:
            self.writes += 1
            stored = self.get(job.id)
            if not stored.finished:
                self.jobs[job.id] = replace(job, cancel_requested=stored.cancel_requested)
            return self.jobs[job.id]

    def request_cancel(self, job_id: str, at: datetime) -> Job:
        with self._lock:
            job = self.get(job_id)
            if job.status is JobStatus.QUEUED:
                job = replace(job, status=JobStatus.CANCELLED, cancel_requested=True, updated_at=at)
            elif job.status is JobStatus.RUNNING:
                job = replace(job, cancel_requested=True)
            self.jobs[job_id] = job
            return job

    def fail_unfinished(self, reason: str, updated_before: datetime, at: datetime) -> int:
        with self._lock:
            lost = [
                j for j in self.jobs.values() if not j.finished and j.updated_at < updated_before
            ]
            for job in lost:
                self.jobs[job.id] = replace(
                    job, status=JobStatus.FAILED, error=reason, updated_at=at
                )
            return len(lost)

    def remove_finished(self, updated_before: datetime) -> int:
        with self._lock:
            old = [i for i, j in self.jobs.items() if j.finished and j.updated_at < updated_before]
            for job_id in old:
                del self.jobs[job_id]
            return len(old)

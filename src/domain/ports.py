"""The ports the core depends on, the repository split by role; adapters implement, tests fake."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from domain.digests import DocumentDigest
from domain.filters import Filter
from domain.keywords import TermMatches
from domain.model import Document, KnowledgeBase, KnowledgeBaseStats

Vectors = NDArray[np.float32]
Labels = NDArray[np.int64]

VECTOR_BATCH = 65_536  # rows per batch of `CatalogStore.load_vectors`: 96 MiB at 384 dimensions


@dataclass(frozen=True)
class IndexInfo:
    """A vector index's kind (e.g. "flat", "ivf") and its approximate memory in bytes."""

    kind: str
    memory_bytes: int


class Embedder(Protocol):
    """Turns texts into unit-length vectors with one fixed model."""

    @property
    def model_name(self) -> str:
        """A readable name of the model (its hub id or folder name), never a filesystem path."""

    @property
    def fingerprint(self) -> str:
        """What the model is, wherever it lies: equal for the same weights and configuration
        (any folder, either runtime), different for another checkpoint, pooling, max length or
        dimension. Recorded on every knowledge base."""

    @property
    def dimension(self) -> int:
        """Length of every vector `embed` returns."""

    @property
    def max_seq_length(self) -> int:
        """Word pieces the model sees per input, special tokens included (from the loaded model)."""

    @property
    def window(self) -> int:
        """Word pieces of text per input: `max_seq_length` minus the special tokens."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return a (len(texts), dimension) float32 matrix of L2-normalised rows.

        Inputs longer than the window are cut by the model; callers chunk first.
        """

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character [start, end) of every word piece of `text`, special tokens excluded."""


class VectorIndex(Protocol):
    """Nearest-neighbour search by inner product over int64-labelled unit vectors."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int:
        """Number of vectors held."""

    def add(self, labels: Labels, vectors: Vectors) -> None:
        """Add rows of `vectors` (n, dimension) under `labels` (n,); labels must be new."""

    def expect(self, count: int) -> None:
        """A hint: about `count` vectors are about to be added in bulk (a restore, a load).

        An index that builds itself from its contents (FAISS IVF) may build directly for that
        size; one that needs nothing (pgvector) ignores it. Results never depend on it.
        """

    def remove(self, labels: Collection[int]) -> int:
        """Remove the given labels (unknown ones are ignored); return how many went."""

    def get(self, labels: Sequence[int]) -> Vectors:
        """Return the stored vectors of `labels`, in order; KeyError for an unknown label."""

    def search(
        self,
        vector: Vectors,
        k: int,
        allowed: Collection[int] | None = None,
        probes: int | None = None,
        exact: bool = False,
    ) -> list[tuple[int, float]]:
        """Return up to k (label, inner product) pairs, best first, restricted to `allowed`.

        `probes` trades recall for speed on approximate indexes (IVF nprobe, HNSW efSearch);
        exact indexes ignore it. `exact=True` compares the query with every vector (or every
        allowed one) whatever the index's kind: the true top k, at the cost of a full scan.
        """

    def describe(self) -> IndexInfo:
        """What kind of index this is now and roughly how much memory it holds."""

    def resume(self) -> Labels:
        """Take back the copy this index kept of itself when last in use, if it keeps one (a
        snapshot file beside its store), and return the labels it now holds: empty if none.

        Called once, on a new empty index, before a load at start. The copy may be behind or
        ahead of the store (a crash between the two): the caller removes the labels the store
        no longer keeps and adds the ones missing, so labels must never be handed out twice.
        """

    def discard(self) -> None:
        """The knowledge base is gone: delete whatever this index kept of itself."""


VectorIndexFactory = Callable[[KnowledgeBase], VectorIndex]
"""Makes the vector index of one knowledge base (in RAM, or a view of a shared store)."""


def by_dimension(make: Callable[[int], VectorIndex]) -> VectorIndexFactory:
    """A factory for indexes that only need the dimension, e.g. `by_dimension(FaissVectorIndex)`."""
    return lambda kb: make(kb.dimension)


class KeywordIndex(Protocol):
    """Keyword (BM25) search over one knowledge base's documents, by document id."""

    def __len__(self) -> int:
        """Number of documents held."""

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        """Index (document id, text) pairs; ids must not be indexed already."""

    def remove(self, document_ids: Collection[str]) -> None:
        """Forget the given documents (unknown ids are ignored)."""

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """Up to k (document id, score) pairs, higher score first, restricted to `allowed`.

        Stop words (domain.keywords.STOP_WORDS or the backend's own list) are not looked up.
        """

    def term_matches(self, text: str, document_ids: Collection[str]) -> TermMatches:
        """The query terms of `text` (no stop words), their document frequencies over the
        whole index, and which of them each of `document_ids` holds."""

    def resume(self, kept: Iterable[tuple[str, str]]) -> list[str] | None:
        """Take back the copy this index kept of itself when last in use, if it keeps one (a
        file beside its store), and bring it in line with `kept`: every (document id, content
        hash of its text) the store holds, in ascending id order, streamed. Documents no longer
        kept, or kept with another text, are forgotten; the ids of those it lacks are returned,
        for the caller to add. None when nothing was kept: the caller adds every document.

        Called once, on a new empty index, before a load at start.
        """

    def discard(self) -> None:
        """The knowledge base is gone: delete whatever this index kept of itself."""


KeywordIndexFactory = Callable[[KnowledgeBase], KeywordIndex]

UnitOfWork = Callable[[], AbstractContextManager[None]]
"""Opens a unit of work: every repository and index call the current thread makes inside it
commits together or not at all (stores shared by several processes, such as PostgreSQL).
Without one, each call is atomic on its own and the knowledge base's lock keeps them in step."""

Clock = Callable[[], datetime]
"""Tells the time stamped on knowledge bases and documents (timezone-aware)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class KnowledgeBaseStore(Protocol):
    """Knowledge bases and their counts: the knowledge base use cases' role.

    Every call of every repository role is all-or-nothing, and raises
    KnowledgeBaseNotFoundError for an unknown knowledge base name.

    A knowledge base stored `building` (by a restore's job) is unpublished: no call finds it
    (not listed, counted, read, updated or removed: KnowledgeBaseNotFoundError) except
    `add_documents` and the calls below, until `publish_knowledge_base` shows it whole at once.
    """

    def add_knowledge_base(self, kb: KnowledgeBase, building: str | None = None) -> None:
        """Store a new knowledge base; KnowledgeBaseExistsError if the name is taken (by an
        unpublished one too). With `building`, the id of the job that builds it, it is stored
        unpublished."""

    def publish_knowledge_base(self, name: str) -> None:
        """Make an unpublished knowledge base visible, in one step; KnowledgeBaseNotFoundError
        if there is no unpublished one of that name."""

    def unpublished_knowledge_bases(self) -> list[tuple[str, str]]:
        """(name, building job id) of every unpublished knowledge base, by name."""

    def remove_unpublished(self, name: str) -> bool:
        """Remove an unpublished knowledge base with all its rows; False if there is none of
        that name (a published one is never touched)."""

    def get_knowledge_base(self, name: str) -> KnowledgeBase: ...

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        """Up to `limit` knowledge bases ordered by name, names strictly after `after`."""

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        """Store a knowledge base's description, metadata, model and fingerprint anew."""

    def remove_knowledge_base(self, name: str) -> None:
        """Remove a knowledge base with all its documents and chunks."""

    def stats(self, name: str) -> KnowledgeBaseStats: ...


class DocumentLookup(Protocol):
    """Reads documents by id, by page and by metadata filter: what every document role builds on."""

    def get_document(self, kb: str, document_id: str) -> Document:
        """DocumentNotFoundError if absent."""

    def existing_ids(self, kb: str, document_ids: Collection[str]) -> list[str]:
        """Which of `document_ids` are already stored."""

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        """Up to `limit` documents ordered by id, ids strictly after `after`, matching `where`."""

    def list_digests(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[DocumentDigest]:
        """As `list_documents`, only ids, content hashes and metadata: no text is read, so
        a client can compare a whole knowledge base with its source quickly."""


class DocumentStore(DocumentLookup, Protocol):
    """The document writer's role: documents and their chunk labels, read and written."""

    def allocate_chunk_ids(self, count: int) -> list[int]:
        """Return `count` chunk labels never handed out before (unique across all KBs)."""

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        """Store new documents; `vectors` has one row per chunk, in document then chunk order.
        An unpublished knowledge base takes them too (a restore builds it so).

        Raises DocumentExistsError (and stores nothing) if any id is taken. Whether the
        vectors are kept differs per backend: see `CatalogStore`.
        """

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        """Store `document` under its id, replacing any previous one; return the previous."""

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        """Replace a document's metadata and updated_at only (text and chunks unchanged)."""

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        """Remove the documents that exist among `document_ids`; return them."""


class ChunkLookup(DocumentLookup, Protocol):
    """The ranker's role: documents, and which chunks a filter allows and whose they are."""

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        """Labels of every chunk whose document's metadata matches `where`."""

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        """Map each known chunk label to its document; unknown labels are left out."""


class CatalogStore(KnowledgeBaseStore, DocumentLookup, Protocol):
    """The catalog's role: knowledge bases, and what a process rebuilds their indexes from.

    The one role whose answers differ per backend, by what the store keeps:

    - Durable and in-process (SQLite, the test fake): keeps every vector `add_documents` and
      `replace_document` are given; `chunk_labels` and `load_vectors` return them all.
    - Volatile (in memory): keeps none, since the index holds them; `chunk_labels` is empty,
      right for a store that starts empty.
    - Shared with other processes (PostgreSQL): the vector and keyword indexes are tables of
      the store itself; `chunk_labels` returns None and nothing is loaded into this process.

    Keyword indexes are rebuilt from the documents' text (`list_documents`), or brought up to
    date from their content hashes (`list_digests`), unless `chunk_labels` is None.
    """

    def content_hashes(
        self, kb: str, limit: int, after: str | None = None
    ) -> list[tuple[str, str]]:
        """(id, content hash) of up to `limit` documents ordered by id, ids strictly after
        `after`: what a start compares a kept keyword index with (no text, no metadata)."""

    def chunk_labels(self, kb: str) -> Labels | None:
        """Every kept chunk label of a knowledge base, ascending (empty if none are kept).

        None when the indexes live in the repository's own store and are shared (PostgreSQL):
        there is nothing to load into this process.
        """

    def load_vectors(
        self, kb: str, labels: Labels | None = None
    ) -> Iterator[tuple[Labels, Vectors]]:
        """The kept vectors of a knowledge base (of `labels` only, when given; labels not kept
        are skipped) in batches of at most VECTOR_BATCH rows, ascending by label: a load never
        holds every vector twice. Nothing for a store that keeps none."""


class DocumentRepository(CatalogStore, DocumentStore, ChunkLookup, Protocol):
    """Knowledge bases, their documents and chunks: every role above, which adapters implement.

    Every call is all-or-nothing; KnowledgeBaseNotFoundError for an unknown knowledge base.
    Each part of the service takes only the role it uses (the facade hands it this one
    object as that role); the contract tests hold every adapter and fake to the whole of it.
    """

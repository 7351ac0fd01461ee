"""KnowledgeBaseService: the use cases every entrypoint (HTTP, CLI, library) calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, BinaryIO

from domain.archive import ArchiveManifest
from domain.archive_writer import SpooledArchive
from domain.archives import ArchiveExporter
from domain.catalog import Catalog, WriteContext
from domain.documents import DocumentReader, DocumentWriter, new_document_id
from domain.jobs import JobHandle
from domain.keywords import NoKeywordIndex
from domain.knowledge_bases import KnowledgeBaseInfo, KnowledgeBaseUseCases
from domain.model import Chunking, Document, Hit, KnowledgeBase, NewDocument, Page
from domain.ports import (
    Clock,
    DocumentRepository,
    Embedder,
    KeywordIndexFactory,
    UnitOfWork,
    VectorIndexFactory,
    utc_now,
)
from domain.ranking import Ranker, SearchRequest
from domain.restores import ArchiveRestorer

__all__ = ["Clock", "KnowledgeBaseInfo", "KnowledgeBaseService", "new_document_id", "utc_now"]


def _no_keywords(kb: KnowledgeBase) -> NoKeywordIndex:
    return NoKeywordIndex()


class KnowledgeBaseService:
    """Create knowledge bases, add and remove documents, and rank documents by similarity.

    Thread-safe: embedding happens outside any lock; each knowledge base lets searches run
    together and gives writes exclusive access, so the index and the repository agree.

    Build it with `KnowledgeBaseService(embedder, repository, index_factory, keyword_factory)`,
    e.g. `index_factory=by_dimension(FaissVectorIndex)`; `keyword_factory` enables hybrid
    (keyword + meaning) search, without it only dense. Stores shared by several processes
    also pass `transaction=` (a UnitOfWork) so each write commits as one, and `snapshot=` so
    each search's reads see one state of the store (see UnitOfWork).

    A facade: each use case is one call to a part built with only the ports it uses.
    """

    def __init__(
        self,
        embedder: Embedder,
        repository: DocumentRepository,
        index_factory: VectorIndexFactory,
        keyword_factory: KeywordIndexFactory | None = None,
        clock: Clock = utc_now,
        transaction: UnitOfWork = nullcontext,
        snapshot: UnitOfWork = nullcontext,
    ) -> None:
        self.embedder = embedder
        keywords = keyword_factory or _no_keywords
        # Each part is handed the repository as the one role it uses (see domain.ports).
        catalog = Catalog(repository, index_factory, keywords, transaction, embedder)
        context = WriteContext(catalog, embedder, clock)
        self._knowledge_bases = KnowledgeBaseUseCases(context, repository)
        self._writer = DocumentWriter(context, repository)
        self._reader = DocumentReader(repository)
        self._ranker = Ranker(catalog, repository, embedder, snapshot)
        self._exporter = ArchiveExporter(catalog, repository, clock, snapshot)
        self._restorer = ArchiveRestorer(catalog, repository, repository, embedder)

    def load(self) -> int:
        """Build every knowledge base's index from the repository; return how many."""
        return self._knowledge_bases.load()

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
        return self._knowledge_bases.create(name, description, metadata, chunking, chunk_overlap)

    def get_knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        return self._knowledge_bases.get(name)

    def list_knowledge_bases(self, limit: int = 100, cursor: str | None = None) -> Page:
        return self._knowledge_bases.page(limit, cursor)

    def count_knowledge_bases(self) -> int:
        """How many knowledge bases there are now (on a shared store, every process's)."""
        return self._knowledge_bases.count()

    def update_knowledge_base(
        self,
        kb_name: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo:
        """Change a knowledge base's description and/or metadata (metadata is replaced)."""
        return self._knowledge_bases.update(kb_name, description, metadata)

    def delete_knowledge_base(self, name: str) -> None:
        """Remove a knowledge base with all its documents and vectors."""
        self._knowledge_bases.delete(name)

    # Documents

    def add_documents(self, kb_name: str, documents: Sequence[NewDocument]) -> list[Document]:
        """Embed and store new documents, all or none; DocumentExistsError if an id is taken."""
        return self._writer.add(kb_name, documents)

    def upsert_document(
        self, kb_name: str, document_id: str, text: str, metadata: Mapping[str, Any] | None = None
    ) -> tuple[Document, bool]:
        """Create or replace a document, re-embedding only a changed text; (document, created)."""
        return self._writer.upsert(kb_name, document_id, text, metadata)

    def update_document_metadata(
        self, kb_name: str, document_id: str, metadata: Mapping[str, Any]
    ) -> Document:
        """Replace a document's metadata without re-embedding it."""
        return self._writer.update_metadata(kb_name, document_id, metadata)

    def get_document(self, kb_name: str, document_id: str) -> Document:
        return self._reader.get(kb_name, document_id)

    def list_documents(
        self,
        kb_name: str,
        limit: int = 100,
        cursor: str | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Page:
        """A page of documents by id; the cursor is the last id, so inserts never shift pages."""
        return self._reader.page(kb_name, limit, cursor, filter)

    def list_document_digests(
        self,
        kb_name: str,
        limit: int = 100,
        cursor: str | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Page:
        """`list_documents` with only each document's DocumentDigest (id, content_hash,
        metadata): no text is read, so a client compares a whole knowledge base with its
        source in a few pages."""
        return self._reader.page(kb_name, limit, cursor, filter, digests=True)

    def delete_document(self, kb_name: str, document_id: str) -> None:
        """Remove one document and its vectors; DocumentNotFoundError if absent."""
        self._writer.delete_one(kb_name, document_id)

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
        return self._writer.delete(kb_name, document_ids, filter, dry_run)

    # Archives

    def export_archive(self, kb_name: str, spool_dir: str | None = None) -> SpooledArchive:
        """A kb-archive of the knowledge base as it is now: documents, chunk spans, vectors.

        Its data is spooled (in `spool_dir` past a megabyte) while writes to the knowledge base
        wait; then stream `.blocks()` (which closes it at the end), `.size` bytes in all.
        """
        return self._exporter.export(kb_name, spool_dir=spool_dir)

    def inspect_archive(
        self, kb_name: str, stream: BinaryIO, reembed: bool = False
    ) -> ArchiveManifest:
        """The archive's manifest, if a restore of it as `kb_name` can start: else
        ArchiveInvalidError (422), KnowledgeBaseExistsError or ModelMismatchError (409; another
        model's archive needs `reembed`). Reads only the archive's first member."""
        return self._restorer.inspect(kb_name, stream, reembed)

    def check_name_free(self, kb_name: str) -> None:
        """KnowledgeBaseExistsError if a knowledge base `kb_name` exists (or is being restored);
        InvalidInputError for a name no knowledge base can have."""
        self._restorer.check_name_free(kb_name)

    def restore_archive(
        self,
        kb_name: str,
        stream: BinaryIO,
        job: JobHandle,
        reembed: bool = False,
        spool_dir: str | None = None,
    ) -> KnowledgeBase:
        """Create knowledge base `kb_name` from the archive in `stream`, all or nothing.

        With this service's model the archive's vectors are stored as they are (nothing is
        embedded); another model's archive needs `reembed`, which chunks and embeds its texts
        with this one. Nothing is visible until the whole archive was read and checked; on
        ArchiveInvalidError, cancellation (through `job`) or any failure nothing is left.
        Progress goes to `job` in documents. documents.jsonl spools to `spool_dir`.
        """
        return self._restorer.restore(kb_name, stream, reembed, job, spool_dir)

    def discard_abandoned_restores(self, unfinished: Callable[[str], bool]) -> list[str]:
        """Remove what restores left unpublished whose job is not `unfinished` (a process was
        stopped or killed mid-way); return the names. Run at start."""
        return self._restorer.discard_abandoned(unfinished)

    # Search

    def search(self, kb_name: str, request: SearchRequest) -> list[Hit]:
        """Rank the knowledge base's documents by cosine similarity to the query, best first."""
        return self.search_many(kb_name, [request])[0]

    def search_many(self, kb_name: str, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """Answer up to MAX_BATCH_QUERIES searches at once; their texts share one model batch."""
        return self._ranker.search(kb_name, requests)

"""KBClient: one method per kb-service endpoint, plus paging and batching helpers.

The job calls are in `kb_client.jobs`, the archive calls in `kb_client.archives`, the file
upload in `kb_client.files`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, cast

from kb_client.archives import ArchiveCalls
from kb_client.files import FileCalls
from kb_client.imports import ImportCalls
from kb_client.jobs import JobCalls
from kb_client.models import (
    AddedDocument,
    Chunking,
    DeleteResult,
    Document,
    DocumentField,
    DocumentHash,
    Filter,
    Fusion,
    Hit,
    HitField,
    Info,
    KnowledgeBase,
    Metadata,
    Mode,
    NewDocument,
    Page,
    SearchQuery,
)
from kb_client.paths import KNOWLEDGE_BASES, document_path, documents_path, kb_path


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class KBClient(ArchiveCalls, FileCalls, ImportCalls, JobCalls):
    """A kb-service at `url`; `api_key` is sent as `Authorization: Bearer <key>`.

    Calls raise `kb_client.KBError` subclasses (`NotFound`, `Conflict`, `Invalid`, ...).
    429 and 503 answers are retried with exponential backoff, and so are connection errors
    of calls that are safe to repeat. Use it as a context manager, or call `close()`.
    """

    # Knowledge bases

    def create_knowledge_base(
        self,
        name: str,
        description: str | None = None,
        metadata: Metadata | None = None,
        *,
        chunking: Chunking | None = None,
        chunk_overlap: int | None = None,
    ) -> KnowledgeBase:
        body = _without_none(
            name=name,
            description=description,
            metadata=metadata,
            chunking=chunking,
            chunk_overlap=chunk_overlap,
        )
        return cast(KnowledgeBase, self._call("POST", KNOWLEDGE_BASES, json=body))

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        return cast(KnowledgeBase, self._call("GET", kb_path(name)))

    def list_knowledge_bases(self, limit: int = 100, cursor: str | None = None) -> Page:
        params = _without_none(limit=limit, cursor=cursor)
        return cast(Page, self._call("GET", KNOWLEDGE_BASES, params=params))

    def iter_knowledge_bases(self, page_size: int = 100) -> Iterator[KnowledgeBase]:
        """Every knowledge base by name, following `next_cursor` page by page."""
        return _pages(lambda cursor: self.list_knowledge_bases(page_size, cursor))

    def update_knowledge_base(
        self, name: str, description: str | None = None, metadata: Metadata | None = None
    ) -> KnowledgeBase:
        body = _without_none(description=description, metadata=metadata)
        return cast(KnowledgeBase, self._call("PATCH", kb_path(name), json=body))

    def delete_knowledge_base(self, name: str) -> None:
        self._call("DELETE", kb_path(name))

    # Documents

    def add_documents(self, kb: str, documents: Iterable[NewDocument]) -> list[AddedDocument]:
        """Add a batch in one request: all or nothing (`Conflict` if any id exists)."""
        body = {"documents": list(documents)}
        return cast(list[AddedDocument], self._call("POST", documents_path(kb), json=body)["items"])

    def add_document(
        self, kb: str, text: str, id: str | None = None, metadata: Metadata | None = None
    ) -> AddedDocument:
        document = cast(NewDocument, _without_none(id=id, text=text, metadata=metadata))
        return self.add_documents(kb, [document])[0]

    def add_documents_batched(
        self,
        kb: str,
        documents: Iterable[NewDocument],
        batch_size: int = 100,
        on_batch: Callable[[list[AddedDocument]], None] | None = None,
    ) -> list[AddedDocument]:
        """Add any number of documents, `batch_size` per request; each batch is all or nothing."""
        added: list[AddedDocument] = []
        iterator = iter(documents)
        while batch := list(islice(iterator, batch_size)):
            items = self.add_documents(kb, batch)
            added.extend(items)
            if on_batch is not None:
                on_batch(items)
        return added

    def get_document(self, kb: str, id: str) -> Document:
        return cast(Document, self._call("GET", document_path(kb, id)))

    def list_documents(
        self,
        kb: str,
        limit: int = 100,
        cursor: str | None = None,
        filter: Filter | None = None,
        fields: Iterable[DocumentField] | None = None,
    ) -> Page:
        """A page of documents; `fields` keeps only those (and id) in each item."""
        chosen = None if fields is None else ",".join(fields)
        params = _without_none(limit=limit, cursor=cursor, filter=_json(filter), fields=chosen)
        return cast(Page, self._call("GET", documents_path(kb), params=params))

    def iter_document_hashes(
        self, kb: str, filter: Filter | None = None, page_size: int = 1000
    ) -> Iterator[DocumentHash]:
        """Every document's id, content_hash and metadata by id, no text: the service reads
        none either, so a whole knowledge base is compared with its source quickly."""
        fields: list[DocumentField] = ["id", "content_hash", "metadata"]
        return _pages(lambda cursor: self.list_documents(kb, page_size, cursor, filter, fields))

    def iter_documents(
        self, kb: str, filter: Filter | None = None, page_size: int = 100
    ) -> Iterator[Document]:
        """Every document by id (optionally filtered), following `next_cursor`."""
        return _pages(lambda cursor: self.list_documents(kb, page_size, cursor, filter))

    def upsert_document(
        self, kb: str, id: str, text: str, metadata: Metadata | None = None
    ) -> tuple[Document, bool]:
        """Create or replace a document; returns it and whether it was created."""
        body = _without_none(text=text, metadata=metadata)
        response = self.transport.request("PUT", document_path(kb, id), json=body)
        return cast(Document, response.json()), response.status_code == 201

    def update_document_metadata(self, kb: str, id: str, metadata: Metadata) -> Document:
        """Replace a document's metadata; its text is not re-embedded."""
        body = {"metadata": metadata}
        return cast(Document, self._call("PATCH", document_path(kb, id), json=body))

    def delete_document(self, kb: str, id: str) -> None:
        self._call("DELETE", document_path(kb, id))

    def delete_documents(
        self,
        kb: str,
        ids: Iterable[str] | None = None,
        filter: Filter | None = None,
        *,
        dry_run: bool = False,
    ) -> DeleteResult:
        """Delete by ids and/or a metadata filter; `dry_run` only reports what would go."""
        body = _without_none(ids=None if ids is None else list(ids), filter=filter)
        body["dry_run"] = dry_run
        # Deleting the same ids or filter twice leaves the same state: safe to retry.
        path = documents_path(kb) + "/delete"
        return cast(DeleteResult, self._call("POST", path, json=body, idempotent=True))

    # Search

    def search(
        self,
        kb: str,
        query: str | None = None,
        *,
        document_id: str | None = None,
        vector: list[float] | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        filter: Filter | None = None,
        mode: Mode | None = None,
        diversity: float | None = None,
        keyword_weight: float | None = None,
        rrf_k: int | None = None,
        fusion: Fusion | None = None,
        explain: bool | None = None,
        probes: int | None = None,
        exact: bool | None = None,
        fields: list[HitField] | None = None,
    ) -> list[Hit]:
        """Documents most like a text, an existing document or a vector, best first.

        `exact=True` compares with every vector even where the knowledge base is large enough
        to be searched approximately; `probes` tunes that approximate search instead.
        `fields` chooses which of text, metadata and passage the hits carry (default: all).
        `explain=True` gives every hit an `explain` object (its dense, keyword and fused rank).
        """
        body = _without_none(
            query=query,
            document_id=document_id,
            vector=vector,
            top_k=top_k,
            min_score=min_score,
            filter=filter,
            mode=mode,
            diversity=diversity,
            keyword_weight=keyword_weight,
            rrf_k=rrf_k,
            fusion=fusion,
            explain=explain,
            probes=probes,
            exact=exact,
            fields=fields,
        )
        path = kb_path(kb) + "/search"
        return cast(list[Hit], self._call("POST", path, json=body, idempotent=True)["hits"])

    def search_batch(self, kb: str, queries: Iterable[SearchQuery]) -> list[list[Hit]]:
        """Up to the service's KB_MAX_BATCH_QUERIES searches (default 32) in one request; one
        list of hits per query, in order."""
        path = kb_path(kb) + "/search/batch"
        body = {"queries": list(queries)}
        results = self._call("POST", path, json=body, idempotent=True)["results"]
        return [cast(list[Hit], result["hits"]) for result in results]

    # Service

    def info(self) -> Info:
        return cast(Info, self._call("GET", "/v1/info"))

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/healthz"))

    def ready(self) -> dict[str, Any]:
        """/readyz; raises `ServiceUnavailable` (after retries) while the service is loading."""
        return cast(dict[str, Any], self._call("GET", "/readyz"))


def _json(value: Filter | None) -> str | None:
    return None if value is None else json.dumps(value)


def _pages(fetch: Callable[[str | None], Page]) -> Iterator[Any]:
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return

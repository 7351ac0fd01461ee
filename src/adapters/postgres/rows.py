"""The `postgres` backend's rows: columns, rows to domain objects, the statements writers share.

For `PostgresDocumentRepository` (no port of its own), which composes them in its transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from adapters.memory.document_records import trusted
from adapters.postgres.filters import where_sql
from domain.digests import DocumentDigest
from domain.errors import KnowledgeBaseNotFoundError
from domain.filters import Filter
from domain.layout import NO_LAYOUT
from domain.model import Chunk, Chunking, Document, KnowledgeBase, Layout, Span

KB_COLUMNS = (
    "name, model, dimension, created_at, description, metadata, chunking, chunk_overlap, "
    "fingerprint"
)
DOC_COLUMNS = (
    "id, text, metadata, created_at, updated_at, truncated, chunk_labels, chunk_starts, "
    "chunk_ends, content_hash, layout"
)
DIGEST_COLUMNS = "id, content_hash, metadata"
MAX_LIMIT = 2**62  # LIMIT takes a bigint; "no limit" (sys.maxsize) is capped to this


def insert_documents(conn: psycopg.Connection[Any], kb: str, documents: Sequence[Document]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO kb_documents (kb, {DOC_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    kb,
                    doc.id,
                    doc.text,
                    Json(dict(doc.metadata)),
                    doc.created_at,
                    doc.updated_at,
                    doc.truncated,
                    [c.id for c in doc.chunks],
                    [c.span.start for c in doc.chunks],
                    [c.span.end for c in doc.chunks],
                    doc.content_hash,
                    _layout_json(doc.layout),
                )
                for doc in documents
            ],
        )
        with cursor.copy("COPY kb_chunks (label, kb, document_id) FROM STDIN") as copy:
            for doc in documents:
                for chunk in doc.chunks:
                    copy.write_row((chunk.id, kb, doc.id))


def lock_kb(conn: psycopg.Connection[Any], kb: str) -> None:
    """Writers to one knowledge base queue here (its counts row), across processes; a
    knowledge base being built (unpublished) takes documents too."""
    row = conn.execute(
        "SELECT 1 FROM kb_knowledge_bases WHERE name = %s FOR UPDATE", (kb,)
    ).fetchone()
    if row is None:
        raise KnowledgeBaseNotFoundError(kb)


def require_kb(conn: psycopg.Connection[Any], kb: str) -> None:
    """KnowledgeBaseNotFoundError unless `kb` exists and is published."""
    if conn.execute(
        "SELECT 1 FROM kb_knowledge_bases WHERE name = %s AND building IS NULL", (kb,)
    ).fetchone():
        return
    raise KnowledgeBaseNotFoundError(kb)


def taken_ids(conn: psycopg.Connection[Any], kb: str, ids: list[str]) -> list[str]:
    if not ids:
        return []
    rows = conn.execute(
        "SELECT id FROM kb_documents WHERE kb = %s AND id = ANY(%s)", (kb, ids)
    ).fetchall()
    present = {row[0] for row in rows}
    return [doc_id for doc_id in ids if doc_id in present]


def add_counts(conn: psycopg.Connection[Any], kb: str, documents: int, chunks: int) -> None:
    conn.execute(
        "UPDATE kb_knowledge_bases SET document_count = document_count + %s, "
        "chunk_count = chunk_count + %s WHERE name = %s",
        (documents, chunks, kb),
    )


def kb_from_row(row: Sequence[Any]) -> KnowledgeBase:
    name, model, dimension, created_at, description, metadata, chunking, overlap, fingerprint = row
    return KnowledgeBase(
        name=name,
        model=model,
        dimension=dimension,
        created_at=created_at,
        description=description,
        metadata=metadata,
        chunking=Chunking(chunking),
        chunk_overlap=overlap,
        fingerprint=fingerprint,
    )


def document_from_row(row: Sequence[Any]) -> Document:
    doc_id, text, metadata, created_at, updated_at, truncated, labels, starts, ends, *rest = row
    hashed, layout = rest
    chunks = tuple(
        Chunk(int(label), Span(start, end)) for label, start, end in zip(labels, starts, ends)
    )
    fields = {
        "id": doc_id,
        "text": text,
        "metadata": metadata,
        "created_at": created_at,
        "updated_at": updated_at,
        "chunks": chunks,
        "truncated": truncated,
        "content_hash": hashed,
        "layout": NO_LAYOUT if layout is None else trusted(Layout, _layout_fields(layout)),
    }
    return trusted(Document, fields)  # validated when stored, as the memory backend's records


def page_rows(
    conn: psycopg.Connection[Any],
    kb: str,
    columns: str,
    page: tuple[int, str | None],
    where: Filter | None,
) -> list[Any]:
    """`columns` of up to `limit` documents by id, ids after `after`, matching `where`, where
    `page` is (limit, after); KnowledgeBaseNotFoundError for an unknown knowledge base."""
    limit, after = page
    condition, params = (sql.SQL("TRUE"), []) if where is None else where_sql(where)
    query = sql.SQL(
        "SELECT {columns} FROM kb_documents WHERE kb = %s AND (%s::text IS NULL OR id > %s) "
        "AND {where} ORDER BY id LIMIT %s"
    ).format(columns=sql.SQL(columns), where=condition)
    require_kb(conn, kb)
    return conn.execute(query, [kb, after, after, *params, min(limit, MAX_LIMIT)]).fetchall()


def digest_from_row(row: Sequence[Any]) -> DocumentDigest:
    doc_id, hashed, metadata = row
    return DocumentDigest(doc_id, hashed, metadata)


def _layout_json(layout: Layout) -> Json | None:
    """The layout column: NULL for a document without one."""
    if not layout:
        return None
    return Json({"sections": list(layout.sections), "pages": list(layout.pages)})


def _layout_fields(stored: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    return {"sections": tuple(stored["sections"]), "pages": tuple(stored["pages"])}


# (label, document columns...) of chunk labels of one knowledge base: see `documents_by_label`.
OWNERS_OF_LABELS = (
    f"SELECT c.label, {', '.join('d.' + c for c in DOC_COLUMNS.split(', '))} "
    "FROM kb_chunks c JOIN kb_documents d ON d.kb = c.kb AND d.id = c.document_id "
    "WHERE c.kb = %s AND c.label = ANY(%s)"
)


def documents_by_label(rows: Sequence[Sequence[Any]]) -> dict[int, Document]:
    """Each label's document from OWNERS_OF_LABELS rows: one Document per document, shared."""
    documents: dict[str, Document] = {}
    found: dict[int, Document] = {}
    for row in rows:
        document = documents.get(row[1]) or documents.setdefault(row[1], document_from_row(row[1:]))
        found[int(row[0])] = document
    return found

"""PostgresDocumentRepository: knowledge bases, documents and chunk owners in PostgreSQL tables.

Vectors are not kept here: the `postgres` backend's vector and keyword indexes
(PgVectorIndex, PgKeywordIndex) are tables of the same database, written in the same
transaction (PostgresDatabase.transaction), so `chunk_labels` answers None: nothing to load.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Json

from adapters.postgres.database import PostgresDatabase
from adapters.postgres.filters import where_sql
from adapters.postgres.rows import (
    DIGEST_COLUMNS,
    DOC_COLUMNS,
    KB_COLUMNS,
    MAX_LIMIT,
    OWNERS_OF_LABELS,
    add_counts,
    digest_from_row,
    document_from_row,
    documents_by_label,
    insert_documents,
    kb_from_row,
    lock_kb,
    page_rows,
    require_kb,
    taken_ids,
)
from adapters.postgres.schema import DROP_WAIT, drop_hnsw_index, drop_index_or_warn
from domain.digests import DocumentDigest
from domain.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    StorageError,
)
from domain.filters import Filter
from domain.model import Document, KnowledgeBase, KnowledgeBaseStats
from domain.ports import Labels, Vectors


class PostgresDocumentRepository:
    """`DocumentRepository` over PostgreSQL; every call is one statement or one transaction."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    # Knowledge bases

    def add_knowledge_base(self, kb: KnowledgeBase, building: str | None = None) -> None:
        with self._db.transaction(), self._db.connection() as conn:
            try:
                with conn.transaction():  # a savepoint: the caller's transaction survives
                    conn.execute(
                        f"INSERT INTO kb_knowledge_bases ({KB_COLUMNS}, building) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            kb.name,
                            kb.model,
                            kb.dimension,
                            kb.created_at,
                            kb.description,
                            Json(dict(kb.metadata)),
                            kb.chunking.value,
                            kb.chunk_overlap,
                            kb.fingerprint,
                            building,
                        ),
                    )
            except pg_errors.UniqueViolation:
                raise KnowledgeBaseExistsError(kb.name) from None
            # One left behind by an earlier namesake: its cast to that one's dimension would
            # refuse this one's vectors, so it must go now.
            if not drop_hnsw_index(conn, kb.name, wait=DROP_WAIT):
                raise StorageError(
                    f"knowledge base {kb.name!r}: the database is busy building an index; "
                    "nothing was created, try again in a moment"
                )

    def get_knowledge_base(self, name: str) -> KnowledgeBase:
        with self._db.connection() as conn:
            row = conn.execute(
                f"SELECT {KB_COLUMNS} FROM kb_knowledge_bases WHERE name = %s AND building IS NULL",
                (name,),
            ).fetchone()
        if row is None:
            raise KnowledgeBaseNotFoundError(name)
        return kb_from_row(row)

    def list_knowledge_bases(self, limit: int, after: str | None = None) -> list[KnowledgeBase]:
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT {KB_COLUMNS} FROM kb_knowledge_bases "
                "WHERE building IS NULL AND (%s::text IS NULL OR name > %s) ORDER BY name LIMIT %s",
                (after, after, min(limit, MAX_LIMIT)),
            ).fetchall()
        return [kb_from_row(row) for row in rows]

    def update_knowledge_base(self, kb: KnowledgeBase) -> None:
        with self._db.connection() as conn:
            updated = conn.execute(
                "UPDATE kb_knowledge_bases SET description = %s, metadata = %s, model = %s, "
                "fingerprint = %s WHERE name = %s AND building IS NULL",
                (kb.description, Json(dict(kb.metadata)), kb.model, kb.fingerprint, kb.name),
            ).rowcount
        if not updated:
            raise KnowledgeBaseNotFoundError(kb.name)

    def remove_knowledge_base(self, name: str) -> None:
        with self._db.transaction(), self._db.connection() as conn:
            removed = conn.execute(
                "DELETE FROM kb_knowledge_bases WHERE name = %s AND building IS NULL", (name,)
            ).rowcount
            if not removed:
                raise KnowledgeBaseNotFoundError(name)
            drop_index_or_warn(conn, name)

    def publish_knowledge_base(self, name: str) -> None:
        with self._db.transaction(), self._db.connection() as conn:
            published = conn.execute(
                "UPDATE kb_knowledge_bases SET building = NULL "
                "WHERE name = %s AND building IS NOT NULL",
                (name,),
            ).rowcount
        if not published:
            raise KnowledgeBaseNotFoundError(name)

    def unpublished_knowledge_bases(self) -> list[tuple[str, str]]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT name, building FROM kb_knowledge_bases WHERE building IS NOT NULL "
                "ORDER BY name"
            ).fetchall()
        return [(str(name), str(building)) for name, building in rows]

    def remove_unpublished(self, name: str) -> bool:
        with self._db.transaction(), self._db.connection() as conn:
            removed = conn.execute(
                "DELETE FROM kb_knowledge_bases WHERE name = %s AND building IS NOT NULL", (name,)
            ).rowcount
            if removed:
                drop_index_or_warn(conn, name)
        return bool(removed)

    def stats(self, name: str) -> KnowledgeBaseStats:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT document_count, chunk_count FROM kb_knowledge_bases "
                "WHERE name = %s AND building IS NULL",
                (name,),
            ).fetchone()
        if row is None:
            raise KnowledgeBaseNotFoundError(name)
        return KnowledgeBaseStats(int(row[0]), int(row[1]))

    def allocate_chunk_ids(self, count: int) -> list[int]:
        if count <= 0:
            return []
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT nextval('kb_chunk_labels') FROM generate_series(1, %s)", (count,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    # Documents

    def add_documents(self, kb: str, documents: Sequence[Document], vectors: Vectors) -> None:
        with self._db.transaction(), self._db.connection() as conn:
            lock_kb(conn, kb)
            taken = taken_ids(conn, kb, [doc.id for doc in documents])
            if taken:
                raise DocumentExistsError(kb, taken)
            try:
                with conn.transaction():
                    insert_documents(conn, kb, documents)
            except pg_errors.UniqueViolation:
                # Another process stored one of these ids since the check above.
                raise DocumentExistsError(
                    kb, taken_ids(conn, kb, [doc.id for doc in documents])
                ) from None
            add_counts(conn, kb, len(documents), sum(len(d.chunks) for d in documents))

    def replace_document(self, kb: str, document: Document, vectors: Vectors) -> Document | None:
        with self._db.transaction(), self._db.connection() as conn:
            lock_kb(conn, kb)
            row = conn.execute(
                f"SELECT {DOC_COLUMNS} FROM kb_documents WHERE kb = %s AND id = %s FOR UPDATE",
                (kb, document.id),
            ).fetchone()
            previous = None if row is None else document_from_row(row)
            if previous is not None:
                conn.execute(
                    "DELETE FROM kb_documents WHERE kb = %s AND id = %s", (kb, document.id)
                )
            insert_documents(conn, kb, [document])
            chunks = len(document.chunks) - (len(previous.chunks) if previous else 0)
            add_counts(conn, kb, 0 if previous else 1, chunks)
            return previous

    def update_metadata(
        self, kb: str, document_id: str, metadata: dict[str, Any], updated_at: datetime
    ) -> Document:
        with self._db.connection() as conn:
            row = conn.execute(
                f"UPDATE kb_documents SET metadata = %s, updated_at = %s "
                f"WHERE kb = %s AND id = %s RETURNING {DOC_COLUMNS}",
                (Json(metadata), updated_at, kb, document_id),
            ).fetchone()
            if row is None:
                require_kb(conn, kb)
                raise DocumentNotFoundError(kb, document_id)
        return document_from_row(row)

    def get_document(self, kb: str, document_id: str) -> Document:
        with self._db.connection() as conn:
            row = conn.execute(
                f"SELECT {DOC_COLUMNS} FROM kb_documents WHERE kb = %s AND id = %s AND EXISTS "
                "(SELECT 1 FROM kb_knowledge_bases k WHERE k.name = %s AND k.building IS NULL)",
                (kb, document_id, kb),
            ).fetchone()
            if row is None:
                require_kb(conn, kb)
                raise DocumentNotFoundError(kb, document_id)
        return document_from_row(row)

    def existing_ids(self, kb: str, document_ids: Collection[str]) -> list[str]:
        with self._db.connection() as conn:
            require_kb(conn, kb)
            return taken_ids(conn, kb, list(document_ids))

    def list_documents(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[Document]:
        with self._db.connection() as conn:
            rows = page_rows(conn, kb, DOC_COLUMNS, (limit, after), where)
        return [document_from_row(row) for row in rows]

    def list_digests(
        self, kb: str, limit: int, after: str | None = None, where: Filter | None = None
    ) -> list[DocumentDigest]:
        with self._db.connection() as conn:  # the stored hashes: no text leaves the database
            rows = page_rows(conn, kb, DIGEST_COLUMNS, (limit, after), where)
        return [digest_from_row(row) for row in rows]

    def content_hashes(
        self, kb: str, limit: int, after: str | None = None
    ) -> list[tuple[str, str]]:
        return [(d.id, d.content_hash) for d in self.list_digests(kb, limit, after)]

    def chunk_ids_matching(self, kb: str, where: Filter) -> list[int]:
        condition, params = where_sql(where)
        query = sql.SQL(
            "SELECT unnest(chunk_labels) FROM kb_documents WHERE kb = %s AND {where}"
        ).format(where=condition)
        with self._db.connection() as conn:
            require_kb(conn, kb)
            return [int(row[0]) for row in conn.execute(query, [kb, *params])]

    def remove_documents(self, kb: str, document_ids: Collection[str]) -> list[Document]:
        wanted = list(dict.fromkeys(document_ids))
        with self._db.transaction(), self._db.connection() as conn:
            lock_kb(conn, kb)
            rows = conn.execute(
                f"DELETE FROM kb_documents WHERE kb = %s AND id = ANY(%s) RETURNING {DOC_COLUMNS}",
                (kb, wanted),
            ).fetchall()
            removed = {doc.id: doc for doc in map(document_from_row, rows)}
            chunks = sum(len(doc.chunks) for doc in removed.values())
            add_counts(conn, kb, -len(removed), -chunks)
        return [removed[i] for i in wanted if i in removed]

    def documents_for_chunks(self, kb: str, chunk_ids: Collection[int]) -> dict[int, Document]:
        labels = [int(label) for label in chunk_ids]
        if not labels:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute(OWNERS_OF_LABELS, (kb, labels)).fetchall()
        return documents_by_label(rows)

    def chunk_labels(self, kb: str) -> Labels | None:
        with self._db.connection() as conn:
            require_kb(conn, kb)
        return None  # the vectors are the index's own table: nothing to load

    def load_vectors(
        self, kb: str, labels: Labels | None = None
    ) -> Iterator[tuple[Labels, Vectors]]:
        """Nothing: the vectors are the index's own table, never loaded into a process."""
        return iter(())

    def ping(self) -> None:
        self._db.ping()

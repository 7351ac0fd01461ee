"""The `postgres` backend's tables, created or migrated at start by whichever worker comes first.

No port of its own: `PostgresDatabase` migrates with it; the pgvector index and the
repository build and drop HNSW indexes with it.

Every migration runs in one transaction under an advisory lock, so workers and replicas that start
together apply each step once; the version lives in `kb_schema`. A database whose version is
newer than this code knows is refused untouched. Every table is prefixed `kb_` so the service can
share a database with others. Identifiers that must sort like Python strings (knowledge base
names, document ids) use the "C" collation: code-point order, as the `memory` backend sorts.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from domain.errors import StorageError

DROP_WAIT = "2s"  # how long a request waits to drop an index before giving up
LOCK_KEY = 0x4B425356  # "KBSV": the same mark the SQLite file carries as its application_id

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: knowledge bases, documents, chunk owners, vectors, keywords.
    """
    CREATE EXTENSION IF NOT EXISTS vector;

    CREATE TABLE kb_knowledge_bases (
        name text COLLATE "C" PRIMARY KEY,
        model text NOT NULL,
        dimension integer NOT NULL,
        created_at timestamptz NOT NULL,
        description text NOT NULL,
        metadata json NOT NULL,
        chunking text NOT NULL,
        chunk_overlap integer NOT NULL,
        document_count bigint NOT NULL DEFAULT 0,
        chunk_count bigint NOT NULL DEFAULT 0,
        vector_count bigint NOT NULL DEFAULT 0
    );

    -- metadata is kept as the JSON text it came in (key order, 1.0 vs 1), and as jsonb for filters.
    CREATE TABLE kb_documents (
        kb text COLLATE "C" NOT NULL REFERENCES kb_knowledge_bases (name) ON DELETE CASCADE,
        id text COLLATE "C" NOT NULL,
        text text NOT NULL,
        metadata json NOT NULL,
        metadata_jsonb jsonb GENERATED ALWAYS AS (metadata::jsonb) STORED,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        truncated boolean NOT NULL,
        chunk_labels bigint[] NOT NULL,
        chunk_starts integer[] NOT NULL,
        chunk_ends integer[] NOT NULL,
        PRIMARY KEY (kb, id)
    );

    -- Which document owns each chunk label (labels are unique across knowledge bases).
    CREATE TABLE kb_chunks (
        label bigint PRIMARY KEY,
        kb text COLLATE "C" NOT NULL,
        document_id text COLLATE "C" NOT NULL,
        FOREIGN KEY (kb, document_id) REFERENCES kb_documents (kb, id) ON DELETE CASCADE
    );
    CREATE INDEX kb_chunks_document ON kb_chunks (kb, document_id);
    CREATE SEQUENCE kb_chunk_labels;

    -- Vectors of every dimension in one column; each knowledge base gets a partial HNSW index
    -- on embedding::vector(dimension) (see hnsw_index), created with the knowledge base.
    CREATE TABLE kb_vectors (
        label bigint PRIMARY KEY,
        kb text COLLATE "C" NOT NULL REFERENCES kb_knowledge_bases (name) ON DELETE CASCADE,
        embedding vector NOT NULL
    );
    CREATE INDEX kb_vectors_kb ON kb_vectors (kb);

    CREATE TABLE kb_keywords (
        kb text COLLATE "C" NOT NULL REFERENCES kb_knowledge_bases (name) ON DELETE CASCADE,
        document_id text COLLATE "C" NOT NULL,
        terms tsvector NOT NULL,
        PRIMARY KEY (kb, document_id)
    );
    CREATE INDEX kb_keywords_terms ON kb_keywords USING gin (terms);
    """,
    # 2: jobs (restores, ingestions) and their progress, read by every worker. No foreign key:
    # a restore's knowledge base does not exist until it ends.
    """
    CREATE TABLE kb_jobs (
        id text PRIMARY KEY,
        kind text NOT NULL,
        knowledge_base text COLLATE "C",
        status text NOT NULL,
        done bigint NOT NULL,
        total bigint,
        error text,
        cancel_requested boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX kb_jobs_created ON kb_jobs (created_at);
    """,
    # 3: what the model that made a knowledge base's vectors is; '' until one is adopted.
    """
    ALTER TABLE kb_knowledge_bases ADD COLUMN fingerprint text NOT NULL DEFAULT '';
    """,
    # 4: the job building a knowledge base (a restore), NULL once published: until then no read
    # sees it, and it is removed once its job is over without publishing it.
    """
    ALTER TABLE kb_knowledge_bases ADD COLUMN building text;
    """,
    # 5: each document's content hash (domain.digests: "sha256:" + hex of the UTF-8 text), so a
    # listing of hashes reads no text; older rows get theirs computed here.
    """
    ALTER TABLE kb_documents ADD COLUMN content_hash text;
    UPDATE kb_documents
        SET content_hash = 'sha256:' || encode(sha256(convert_to(text, 'UTF8')), 'hex');
    ALTER TABLE kb_documents ALTER COLUMN content_hash SET NOT NULL;
    """,
]

LATEST = len(MIGRATIONS)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to LATEST; return the version found. StorageError if it is newer."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS kb_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM kb_schema").fetchone()
        found = 0 if row is None else int(row[0])
        if found > LATEST:
            raise StorageError(
                f"the database's kb-service schema is version {found}, newer than this "
                f"kb-service knows ({LATEST}); upgrade kb-service instead. Nothing was changed."
            )
        for version in range(found + 1, LATEST + 1):
            conn.execute(MIGRATIONS[version - 1])
        if row is None:
            conn.execute("INSERT INTO kb_schema (version) VALUES (%s)", (LATEST,))
        elif found != LATEST:
            conn.execute("UPDATE kb_schema SET version = %s", (LATEST,))
    return found


def hnsw_index_name(kb: str) -> str:
    """The name of a knowledge base's partial HNSW index (hashed: names may be 64 bytes long)."""
    return "kb_vectors_hnsw_" + hashlib.sha256(kb.encode()).hexdigest()[:24]


def hnsw_index(kb: str) -> sql.Identifier:
    return sql.Identifier(hnsw_index_name(kb))


def hnsw_state(conn: psycopg.Connection[Any], kb: str) -> str:
    """ "valid", "invalid" (a concurrent build died half-way) or "missing"."""
    row = conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (hnsw_index_name(kb),),
    ).fetchone()
    return "missing" if row is None else "valid" if row[0] else "invalid"


def build_hnsw_index(conn: psycopg.Connection[Any], kb: str, dimension: int) -> None:
    """Build the knowledge base's HNSW index over its own rows, without blocking writes.

    `conn` must be in autocommit mode. The planner uses the index for searches that name the
    knowledge base as a literal and order by embedding::vector(dimension).
    """
    if hnsw_state(conn, kb) == "invalid":
        conn.execute(
            sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {index}").format(index=hnsw_index(kb))
        )
    conn.execute(
        sql.SQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON kb_vectors USING hnsw "
            "((embedding::vector({dimension})) vector_ip_ops) WHERE kb = {kb}"
        ).format(index=hnsw_index(kb), dimension=sql.Literal(dimension), kb=sql.Literal(kb))
    )


def drop_hnsw_index(conn: psycopg.Connection[Any], kb: str, wait: str | None = None) -> bool:
    """Drop the knowledge base's index if it has one (checked first: DROP locks the table).

    DROP INDEX locks the table every knowledge base shares; inside a request it must not queue
    behind another knowledge base's CREATE INDEX CONCURRENTLY (everything would queue behind
    it). With `wait` (e.g. "2s") it gives up after that long, in a savepoint, and says False.
    """
    if hnsw_state(conn, kb) == "missing":
        return True
    statement = sql.SQL("DROP INDEX IF EXISTS {index}").format(index=hnsw_index(kb))
    if wait is None:
        conn.execute(statement)
        return True
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(wait)))
            conn.execute(statement)
    except pg_errors.LockNotAvailable:
        return False
    return True


def drop_index_or_warn(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop a deleted knowledge base's HNSW index, or say why it stays (DROP_WAIT passed)."""
    if not drop_hnsw_index(conn, name, wait=DROP_WAIT):
        log.warning(
            "knowledge base %r deleted; its HNSW index stays (the table was busy) until "
            "a knowledge base of that name is created again",
            name,
        )

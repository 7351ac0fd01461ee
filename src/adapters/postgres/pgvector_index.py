"""PgVectorIndex: one knowledge base's vectors in PostgreSQL, searched with pgvector.

Rows live in `kb_vectors` (label, kb, embedding). A knowledge base of at most `exact_limit`
vectors is searched exactly: every vector scored by inner product, which for the service's unit
vectors is the cosine similarity. A larger one is searched through its own partial HNSW index
with iterative index scans, so a search restricted to `allowed` labels keeps scanning until it
has `k` of them; if the scan still falls short, the search is redone exactly. `probes` is HNSW's
ef_search.

The HNSW index is built when the knowledge base first passes `exact_limit`, in a background
thread with CREATE INDEX CONCURRENTLY (writes go on; one process builds, under an advisory
lock), and searches stay exact until it is valid. Small knowledge bases never pay for HNSW
upkeep on insert (about 4 ms per vector here): building once from existing rows is far cheaper.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from adapters.postgres.database import PostgresDatabase
from adapters.postgres.schema import build_hnsw_index, drop_hnsw_index, hnsw_index_name, hnsw_state
from domain.ports import IndexInfo, Labels, Vectors

DEFAULT_EF_SEARCH = 100  # recall@10 >= 0.98 on MiniLM embeddings (tests/integration/test_postgres)
MAX_EF_SEARCH = 1000  # pgvector's own ceiling
MAX_SCAN_TUPLES = 100_000  # how far an iterative scan may go before the exact pass takes over
ROW_OVERHEAD_BYTES = 48  # tuple header, label, kb name and vector header, roughly
RECHECK_SECONDS = 1.0  # how often a search asks whether another process finished the index

log = logging.getLogger(__name__)


class PgVectorIndex:
    """`VectorIndex` of knowledge base `kb`, a view of its rows in the shared database."""

    def __init__(
        self,
        database: PostgresDatabase,
        kb: str,
        dimension: int,
        exact_limit: int = 20_000,
        ef_search: int = DEFAULT_EF_SEARCH,
        background: bool = True,
    ) -> None:
        """`background=False` leaves building the HNSW index to explicit `build_index()` calls."""
        self._db = database
        self._kb = kb
        self._dimension = dimension
        self._exact_limit = exact_limit
        self._ef_search = ef_search
        self._background = background
        self._ready = False  # the HNSW index is known to be valid
        self._checked = 0.0
        self._building = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT vector_count FROM kb_knowledge_bases WHERE name = %s", (self._kb,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def expect(self, count: int) -> None:
        """Nothing to prepare: the rows are the index, and HNSW builds in the background."""

    def resume(self) -> Labels:
        """The rows are the index, kept by the database itself: every label they hold."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT label FROM kb_vectors WHERE kb = %s ORDER BY label", (self._kb,)
            ).fetchall()
        return np.array([label for (label,) in rows], dtype=np.int64)

    def discard(self) -> None:
        """Nothing of its own to delete: the rows go with the knowledge base."""

    def add(self, labels: Labels, vectors: Vectors) -> None:
        if not len(labels):
            return
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        if rows.shape != (len(labels), self._dimension):
            raise ValueError(f"expected {len(labels)} vectors of {self._dimension} dimensions")
        with self._db.transaction(), self._db.connection() as conn:
            try:
                with (
                    conn.transaction(),
                    conn.cursor() as cursor,
                    cursor.copy(
                        "COPY kb_vectors (label, kb, embedding) FROM STDIN WITH (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.set_types(["int8", "text", "vector"])
                    for label, row in zip(labels.tolist(), rows):
                        copy.write_row((label, self._kb, row))
            except pg_errors.UniqueViolation as error:
                detail = error.diag.message_detail
                raise ValueError(f"a label is already in the index: {detail}") from None
            size = self._count(conn, len(labels))
        if not self._ready and self._background and size > self._exact_limit:
            self._build_in_background()

    def remove(self, labels: Collection[int]) -> int:
        wanted = [int(label) for label in labels]
        if not wanted:
            return 0
        with self._db.transaction(), self._db.connection() as conn:
            removed = conn.execute(
                "DELETE FROM kb_vectors WHERE kb = %s AND label = ANY(%s)", (self._kb, wanted)
            ).rowcount
            self._count(conn, -removed)
        return removed

    def get(self, labels: Sequence[int]) -> Vectors:
        wanted = [int(label) for label in labels]
        if not wanted:
            return np.zeros((0, self._dimension), np.float32)
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT label, embedding FROM kb_vectors WHERE kb = %s AND label = ANY(%s)",
                (self._kb, wanted),
            ).fetchall()
        found = {int(label): embedding.to_numpy() for label, embedding in rows}
        missing = [label for label in wanted if label not in found]
        if missing:
            raise KeyError(missing[0])
        return np.stack([found[label] for label in wanted]).astype(np.float32, copy=False)

    def search(
        self,
        vector: Vectors,
        k: int,
        allowed: Collection[int] | None = None,
        probes: int | None = None,
        exact: bool = False,
    ) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        restrict = None if allowed is None else sorted({int(label) for label in allowed})
        if restrict is not None and not restrict:
            return []
        size = len(self) if restrict is None else len(restrict)
        if exact or size <= self._exact_limit:
            return self._exact(query, k, restrict)
        if not self._hnsw_ready():
            if self._background:
                self._build_in_background()  # e.g. the process that started it died
            return self._exact(query, k, restrict)
        found = self._approximate(query, k, restrict, probes)
        if len(found) < min(k, size):
            return self._exact(query, k, restrict)  # the scan gave up before k matches
        return found

    def describe(self) -> IndexInfo:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT pg_relation_size(to_regclass(%s))", (hnsw_index_name(self._kb),)
            ).fetchone()
        index_bytes = int(row[0] or 0) if row else 0
        count = len(self)
        approximate = count > self._exact_limit and self._hnsw_ready()
        # The rows' share of the table (vector, label, tuple header), plus the HNSW index.
        row_bytes = 4 * self._dimension + ROW_OVERHEAD_BYTES
        return IndexInfo("hnsw" if approximate else "flat", count * row_bytes + index_bytes)

    def build_index(self) -> bool:
        """Build this knowledge base's HNSW index now, unless another process is at it
        (then False). Must not run inside a transaction that wrote to the vectors."""
        with self._db.autocommit_connection() as conn:
            key = ("kb-hnsw:" + self._kb,)
            locked = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", key).fetchone()
            if not (locked and locked[0]):
                return False
            try:
                if self._live(conn):
                    build_hnsw_index(conn, self._kb, self._dimension)
                if not self._live(conn):  # removed meanwhile: leave no orphan behind
                    drop_hnsw_index(conn, self._kb)
                self._ready = hnsw_state(conn, self._kb) == "valid"
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", key)
        return True

    # Helpers

    def _hnsw_ready(self) -> bool:
        now = time.monotonic()
        # Re-checked even when ready: another process may delete and re-create the knowledge
        # base, and with it the index.
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            with self._db.connection() as conn:
                self._ready = hnsw_state(conn, self._kb) == "valid"
        return self._ready

    def _build_in_background(self) -> None:
        if not self._building.acquire(blocking=False):
            return  # this process is building it already
        threading.Thread(target=self._build, name=f"hnsw-{self._kb}", daemon=True).start()

    def _build(self) -> None:
        try:
            started = time.monotonic()
            if self.build_index() and self._ready:
                log.info(
                    "knowledge base %r: HNSW index built in %.1f s; searches use it now",
                    self._kb,
                    time.monotonic() - started,
                )
        except psycopg.Error:
            log.exception("knowledge base %r: building the HNSW index failed", self._kb)
        finally:
            self._building.release()

    def _live(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT 1 FROM kb_knowledge_bases WHERE name = %s AND dimension = %s",
            (self._kb, self._dimension),
        ).fetchone()
        return row is not None

    def _exact(self, query: Vectors, k: int, restrict: list[int] | None) -> list[tuple[int, float]]:
        with self._db.connection() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT label, embedding <#> %s AS distance FROM kb_vectors "
                    "WHERE kb = %s {restrict} ORDER BY distance, label LIMIT %s"
                ).format(restrict=_restriction(restrict)),
                [query, self._kb, *_restricted(restrict), k],
            ).fetchall()
        return [(int(label), -float(distance)) for label, distance in rows]

    def _approximate(
        self, query: Vectors, k: int, restrict: list[int] | None, probes: int | None
    ) -> list[tuple[int, float]]:
        ef_search = min(MAX_EF_SEARCH, max(k, probes or self._ef_search))
        statement = sql.SQL(
            "SELECT label, (embedding::vector({d})) <#> %s::vector({d}) AS distance "
            "FROM kb_vectors WHERE kb = {kb} {restrict} ORDER BY distance LIMIT %s"
        ).format(
            d=sql.Literal(self._dimension),
            kb=sql.Literal(self._kb),  # a literal, so the planner can pick the partial index
            restrict=_restriction(restrict),
        )
        params: list[Any] = [query, *_restricted(restrict), k]
        with self._db.transaction(), self._db.connection() as conn, conn.transaction():
            _set_local(
                conn,
                {
                    "hnsw.ef_search": ef_search,
                    "hnsw.iterative_scan": "relaxed_order",
                    "hnsw.max_scan_tuples": MAX_SCAN_TUPLES,
                },
            )
            rows = conn.execute(statement, params).fetchall()
        # relaxed_order may return a few rows slightly out of order: sort them.
        return sorted(((int(label), -float(d)) for label, d in rows), key=lambda p: (-p[1], p[0]))

    def _count(self, conn: psycopg.Connection[Any], change: int) -> int:
        """Move the knowledge base's vector count by `change`; return the new count."""
        row = conn.execute(
            "UPDATE kb_knowledge_bases SET vector_count = vector_count + %s WHERE name = %s "
            "RETURNING vector_count",
            (change, self._kb),
        ).fetchone()
        return int(row[0]) if row else 0


def _restriction(restrict: list[int] | None) -> sql.Composable:
    return sql.SQL("") if restrict is None else sql.SQL("AND label = ANY(%s)")


def _restricted(restrict: list[int] | None) -> list[list[int]]:
    """The parameter `_restriction` adds, if any."""
    return [] if restrict is None else [restrict]


def _set_local(conn: psycopg.Connection[Any], settings: dict[str, object]) -> None:
    """SET LOCAL each setting, in one round trip."""
    calls = [
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(str(value)))
        for name, value in settings.items()
    ]
    conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(calls)))

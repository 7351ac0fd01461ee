"""The SQLite file of an Fts5KeywordIndex: its tables, how it is opened, checked and deleted,
and how a kept one is brought in line with the store's documents at start.

A kept file is written in WAL mode with synchronous=NORMAL. Every add or remove is one
transaction over both tables, so a process killed at any instant leaves a file that opens
with its last committed batch and tables that agree with each other: SQLite drops the
uncommitted frames of the write-ahead log when it next opens the file. NORMAL syncs only at
checkpoints (not at every commit, as FULL does), so writing costs about what the temporary
file did; what it gives up, the last commits before a power cut, the content hashes find
missing at the next start, and they are indexed again. A file that is not ours, is of
another layout, is truncated or fails to read is deleted and the index rebuilt.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from domain.digests import HASH_PREFIX

CACHE_KIB = 2048  # SQLite's own default page cache, made explicit: the RAM it may hold
PAGE_BYTES = 32768
APPLICATION_ID = 0x6B624654  # "kbFT" in the file's header: a keyword index of this service
LAYOUT = 1  # user_version: the tables below; a file of another layout is rebuilt
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the log is cut back to this after a checkpoint
SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_CORRUPT = 11  # "database disk image is malformed"
SQLITE_NOTADB = 26  # "file is not a database"
HEADER = b"SQLite format 3\x00"
PAGE = 10_000  # kept rows compared per step of a resume
MAX_LACKING = 1_000_000  # past this many to add, rebuilding from scratch is as quick


class UnusableFileError(Exception):
    """The file cannot be taken back: not ours, another layout, or cut short."""


@dataclass(frozen=True)
class Reconciled:
    """What a resume left: the documents to add (None: too many, rebuild), the number held
    and the next free row number."""

    lacking: list[str] | None
    held: int
    next_row: int


def create(path: Path | None) -> sqlite3.Connection:
    """New empty tables in `path`, or in a private temporary file (unlinked at once, never
    synced: rebuilt anyway) for None. The caller deleted any file there before."""
    db = _connect(path)
    # A temporary file's rollback journal in RAM: one file fewer to write (a batch is small).
    db.execute(f"PRAGMA journal_mode = {'MEMORY' if path is None else 'WAL'}")
    db.execute("BEGIN")  # all or nothing: a file without its ids and tables is not taken back
    db.execute(
        "CREATE VIRTUAL TABLE words USING fts5("
        "doc UNINDEXED, body, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    # FTS5 cannot index `doc`: without this map a delete scans every row (64 ms at 200k).
    # `hash`: the SHA-256 of the text indexed, which a resume compares with the store's.
    db.execute(
        "CREATE TABLE rows (doc TEXT PRIMARY KEY, row INTEGER NOT NULL, hash BLOB NOT NULL) "
        "WITHOUT ROWID"
    )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {LAYOUT}")
    db.execute("COMMIT")
    return db


def open_kept(path: Path) -> sqlite3.Connection:
    """The kept file at `path`; UnusableFileError or sqlite3.DatabaseError if it cannot be."""
    _check_length(path)
    db = _connect(path)
    try:
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise UnusableFileError("not in WAL mode")
        (application,) = db.execute("PRAGMA application_id").fetchone()
        (layout,) = db.execute("PRAGMA user_version").fetchone()
        if application != APPLICATION_ID:
            raise UnusableFileError("not a keyword index file")
        if layout != LAYOUT:
            raise UnusableFileError(f"layout {layout}, this version reads {LAYOUT}")
    except BaseException:
        db.close()
        raise
    return db


def unusable(error: Exception) -> bool:
    """Whether `error` says the file itself is bad (not ours, corrupt), so that rebuilding it
    is the remedy; not a full disk or an I/O error, which would fail the rebuild too."""
    if isinstance(error, UnusableFileError):
        return True
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    return isinstance(error, sqlite3.DatabaseError) and code in (SQLITE_CORRUPT, SQLITE_NOTADB)


def delete(path: Path) -> None:
    """Delete the file and the log and journal files beside it."""
    for suffix in ("", *SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def reconcile(db: sqlite3.Connection, kept: Iterable[tuple[str, str]]) -> Reconciled:
    """Merge the kept rows with `kept` (id, content hash), both in id order, a page at a
    time: rows not kept or kept with another text are deleted, ids without a row listed.
    Memory holds a page of each side and the ids lacking, whatever the number of documents.

    Document ids hold no lone surrogates (domain.model), so Python's order of str, by code
    point, is SQLite's BINARY order of their UTF-8 bytes: one order on both sides.
    """
    lacking: list[str] = []
    held = 0
    low = ""  # every id compared so far is at most this; below every id at first
    for chunk in _chunks(kept):
        held += _reconcile_range(db, chunk, low, lacking)
        low = chunk[-1][0]
        if len(lacking) > MAX_LACKING:
            return Reconciled(None, held, 0)
    while rows := _rows_after(db, low, None):  # past the last document kept
        forget(db, [(doc, row) for doc, _, row in rows])
    last = db.execute("SELECT rowid FROM words ORDER BY rowid DESC LIMIT 1").fetchone()
    return Reconciled(lacking, held, (last[0] if last else 0) + 1)


def _reconcile_range(
    db: sqlite3.Connection, chunk: list[tuple[str, str]], low: str, lacking: list[str]
) -> int:
    """Reconcile the rows of ids in (low, last id of `chunk`] with `chunk`; extend `lacking`
    and return how many rows are held."""
    high = chunk[-1][0]
    rows = _rows_after(db, low, high)
    if _same(rows, chunk):  # the usual case: nothing changed, nothing compared one by one
        return len(rows)
    hashes = dict(chunk)
    found: set[str] = set()
    while rows:
        doomed: list[tuple[str, int]] = []
        for doc, digest, row in rows:
            if hashes.get(doc) == HASH_PREFIX + digest.hex():
                found.add(doc)
            else:
                doomed.append((doc, row))
        forget(db, doomed)
        rows = _rows_after(db, rows[-1][0], high)
    lacking.extend(doc for doc, _ in chunk if doc not in found)
    return len(found)


def _same(rows: list[tuple[str, bytes, int]], chunk: list[tuple[str, str]]) -> bool:
    """Whether `rows` hold exactly the documents and hashes of `chunk`, compared in bulk."""
    return (
        len(rows) == len(chunk)
        and [doc for doc, _, _ in rows] == [doc for doc, _ in chunk]
        and b"".join(digest for _, digest, _ in rows).hex()
        == "".join(content for _, content in chunk).replace(HASH_PREFIX, "")
    )


def _rows_after(db: sqlite3.Connection, low: str, high: str | None) -> list[tuple[str, bytes, int]]:
    """Up to PAGE kept rows of ids in (low, high], by id."""
    if high is None:
        query = "SELECT doc, hash, row FROM rows WHERE doc > ? ORDER BY doc LIMIT ?"
        return db.execute(query, (low, PAGE)).fetchall()
    query = "SELECT doc, hash, row FROM rows WHERE doc > ? AND doc <= ? ORDER BY doc LIMIT ?"
    return db.execute(query, (low, high, PAGE)).fetchall()


def _chunks(kept: Iterable[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """`kept` in lists of up to PAGE; ValueError if an id does not follow the one before."""
    stream = iter(kept)
    previous = ""
    while chunk := list(islice(stream, PAGE)):
        ids = [doc for doc, _ in chunk]
        if not (previous < ids[0] and all(map(operator.lt, ids, ids[1:]))):
            raise ValueError(f"document ids not in ascending order after {previous!r}")
        previous = ids[-1]
        yield chunk


def forget(db: sqlite3.Connection, doomed: list[tuple[str, int]]) -> None:
    """Delete (document id, row) pairs from both tables, in one transaction."""
    if not doomed:
        return
    with transaction(db):
        db.executemany("DELETE FROM words WHERE rowid = ?", [(row,) for _, row in doomed])
        db.executemany("DELETE FROM rows WHERE doc = ?", [(doc,) for doc, _ in doomed])


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction: committed at the end, rolled back on any error, a failed COMMIT's
    too (a full disk). SQLite may have rolled it back itself already."""
    db.execute("BEGIN")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _connect(path: Path | None) -> sqlite3.Connection:
    db = sqlite3.connect(
        "" if path is None else path, check_same_thread=False, isolation_level=None
    )
    # 32 KiB pages: a query reads the long word lists of common words through the page
    # cache; 4 KiB pages made that 25% slower than ":memory:", 32 KiB ones about as fast.
    # Only a new file takes it; and before cache_size, or its pages stay in RAM (17 MB more
    # resident at 21 MB of text in test_fts_keyword_index).
    db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    if path is not None:
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
    return db


def _check_length(path: Path) -> None:
    """UnusableFileError if the file is shorter than its own header says (cut short: its
    missing pages would read as corrupt only when a query reaches them)."""
    with path.open("rb") as file:
        header = file.read(100)
        length = file.seek(0, 2)
    if not header:
        return  # empty: what the log holds, if anything, is the whole database
    if len(header) < 100 or not header.startswith(HEADER):
        raise UnusableFileError("not an SQLite file")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and length < pages * page_size:
        raise UnusableFileError(f"{length} bytes, its header counts {pages * page_size}")

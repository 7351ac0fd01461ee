"""SqliteWrites: one transaction per write; a full disk is StorageFullError until there is room."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from domain.errors import StorageFullError

SQLITE_IOERR, SQLITE_FULL = 10, 13  # primary result codes (the low byte of extended ones)
# SQLite reports ENOSPC on a write as SQLITE_FULL, but as an I/O error when it grows the -shm
# file or syncs: an I/O error with less than this left on the disk counts as a full disk too.
NEARLY_FULL_BYTES = 1 << 20
# While full, /readyz says ready again once this much is free (after a checkpoint has given
# back what the WAL held, if it could); a write that succeeds says so too, with less.
RESUME_FREE_BYTES = 1 << 20


def disk_full(error: sqlite3.Error, folder: Path) -> bool:
    """Whether `error` means the disk holding `folder` has no room left."""
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    return code == SQLITE_FULL or (code == SQLITE_IOERR and free_bytes(folder) < NEARLY_FULL_BYTES)


def free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


class SqliteWrites:
    """For `SqliteDocumentRepository` (no port): commits writes on one connection.

    It remembers a full disk for /readyz until space returns.

    Callers hold the repository's lock, and change RAM only after `commit` returned: a write
    that did not reach the file is neither acknowledged nor visible.
    """

    def __init__(self, db: sqlite3.Connection, folder: Path) -> None:
        self._db = db
        self._folder = folder
        self.full: str | None = None  # why writes are refused, while the disk is full

    def commit(self, write: Callable[[], object]) -> None:
        """Run `write` in one transaction: on disk whole when this returns, else not at all.

        On a full disk the WAL is checkpointed and truncated first (its file keeps the space of
        every page written since the last checkpoint, megabytes), then the write is tried once
        more; StorageFullError if it still does not fit.
        """
        for attempt in range(2):
            try:
                with self._db:
                    write()
            except sqlite3.Error as error:
                with suppress(sqlite3.Error):  # sqlite3 rolls back; a failed commit may not have
                    if self._db.in_transaction:
                        self._db.rollback()
                if not disk_full(error, self._folder):
                    raise
                self.checkpoint()
                if attempt:
                    self.full = (
                        f"the disk holding the data folder {self._folder} (KB_DATA_DIR) is full "
                        f"({error}): writes are refused until space is freed there; everything "
                        "already stored is kept"
                    )
                    raise StorageFullError(self.full) from error
            else:
                self.full = None
                return

    def check_space(self) -> None:
        """StorageFullError while the disk is still full; clears once there is room again."""
        if self.full is None:
            return
        self.checkpoint()
        if free_bytes(self._folder) >= RESUME_FREE_BYTES:
            self.full = None
            return
        raise StorageFullError(self.full)

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to 0 bytes; False if it could not."""
        try:
            row = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False
        return bool(row[0] == 0)

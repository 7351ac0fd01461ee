"""Reading float32 vectors back from the SQLite file by chunk label, beside the repository.

No port of its own: the `VectorStore` the memory backend hands compressed FAISS indexes
(adapters.faiss.compressed), so their candidates are re-scored against the vectors as embedded.

The repository commits every chunk's vector (a float32 blob keyed by its label, the rowid) before
the index sees it, and deletes it only after. Reads go through read-only connections of their
own (a pool: one per read running at once), so searches never wait for the repository's lock
or for each other (WAL lets readers run beside the writer). A lookup is one rowid probe a label.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from pathlib import Path

import numpy as np

from domain.errors import StorageError
from domain.ports import Labels, Vectors

READ = "SELECT id, vector FROM chunks WHERE id IN (SELECT value FROM json_each(?))"
CACHE_KIB = 8192  # SQLite page cache per reading thread; the OS page cache does the rest


class SqliteVectorStore:
    """A `VectorStore` over the `chunks` table of the repository's file (read-only)."""

    def __init__(self, path: Path | str) -> None:
        self._uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def read(self, labels: Labels) -> tuple[Labels, Vectors]:
        keys = np.asarray(labels, dtype=np.int64)
        connection = self._connection()
        try:
            rows = dict(connection.execute(READ, (json.dumps(keys.tolist()),)).fetchall())
        except sqlite3.Error as error:
            raise StorageError(f"reading vectors from the SQLite file: {error}") from error
        finally:
            self._idle.put(connection)
        present = np.fromiter((key for key in keys.tolist() if key in rows), np.int64)
        if not len(present):
            return present, np.zeros((0, 0), dtype=np.float32)
        blob = b"".join(rows[key] for key in present.tolist())
        return present, np.frombuffer(blob, dtype=np.float32).reshape(len(present), -1).copy()

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

    def _connection(self) -> sqlite3.Connection:
        """An idle connection, or a new one: as many as reads ever ran at once, no more."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
        connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        with self._lock:
            self._all.append(connection)
        return connection

"""A FAISS index's copy of itself kept between runs, so a restart need not rebuild it.

No port of its own: what `FaissVectorIndex.resume` takes back and what it saves after a build.

Rebuilding a large index at start reads every vector from the SQLite file and assigns each to
its list again: at ten million chunks that is minutes of CPU. So once an approximate index is
built (a bulk load, a rebuild) it is written whole with `faiss.write_index` (lists, codes or
vectors, ids, the hashtable direct map and the calibrated probes) to a file in
KB_DATA_DIR/indexes/, again when many changes were made since, and at shutdown. A start reads
it back and the catalog brings it up to date from the SQLite file, the journal: labels the
file no longer keeps are removed, labels it lacks are added. Chunk labels are never handed
out twice (the file keeps the counter), so a label in both always means the same vector.

A copy is written to a temporary name, synced, then renamed over the old one: a crash leaves
the old copy or the new one, never half of one (the start-time sweep deletes temporary files).
A copy that cannot be read or does not fit (another dimension, metric or layout) is deleted
and the index is rebuilt from the file, as without a copy.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import faiss

from adapters.faiss import ivf

log = logging.getLogger(__name__)

SAVE_FRACTION = 0.05  # write a new copy once this share of the index changed since the last
MIN_SAVE_CHANGES = 10_000  # ... and at least this many vectors (small indexes load fast anyway)


class KeptCopy:
    """The file one index keeps its copy in: read once at start, written after builds, after
    many changes (in the background) and at shutdown.

    `mutex` is the index's writer lock: a write holds it while FAISS serialises `current()`,
    so no writer changes the index half-way (searches go on; writers wait a few seconds at
    ten million vectors). `changed` is called with it held.
    """

    def __init__(
        self, path: Path, mutex: threading.Lock, current: Callable[[], faiss.IndexIVF]
    ) -> None:
        self.path = path
        self._mutex = mutex
        self._current = current
        self._lock = threading.Lock()  # one write of the file at a time; none after `discard`
        self._discarded = False
        self._unsaved = 0  # vectors added or removed since the copy was written (under mutex)
        self._writer: threading.Thread | None = None

    def read(self, dimension: int, compressed_ok: bool) -> faiss.IndexIVF | None:
        """The kept index, or None if there is none or it does not fit (then it is deleted)."""
        if not self.path.is_file():
            return None
        try:
            index = faiss.read_index(str(self.path))
        except (RuntimeError, MemoryError) as error:
            self._unusable(f"it cannot be read ({str(error)[:200]})")
            return None
        why = _misfit(index, dimension, compressed_ok)
        if why or not isinstance(index, faiss.IndexIVF):
            self._unusable(why)
            return None
        log.info("vector index of %d vectors taken back from %s", index.ntotal, self.path)
        return index

    def changed(self, count: int, size: int, worth_keeping: bool) -> None:
        """`count` vectors of an index of `size` changed: write a new copy in the background
        once enough did (only of an index `worth_keeping`: approximate, not mid-load)."""
        self._unsaved += count
        due = max(MIN_SAVE_CHANGES, SAVE_FRACTION * size)
        if worth_keeping and self._unsaved >= due:
            self._write_soon()

    def built(self, approximate: bool, wait: bool) -> None:
        """An index was built (a load, a rebuild): keep it if approximate (in the background
        unless `wait`); an exact one loads fast from the file without, so drop the copy."""
        if not approximate:
            with self._lock:
                self.path.unlink(missing_ok=True)
            return
        if wait:
            self._save()
        else:
            self._unsaved = max(self._unsaved, 1)
            self._write_soon()

    def close(self, worth_keeping: bool) -> None:
        """At shutdown: wait for a write under way, then write if anything changed since."""
        writer = self._writer
        if writer is not None:
            writer.join()
        if worth_keeping and self._unsaved:
            self._save()

    def discard(self) -> None:
        """Delete the copy for good: the knowledge base is gone; later writes do nothing."""
        with self._lock:
            self._discarded = True
            self.path.unlink(missing_ok=True)

    def _write_soon(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._save, name="faiss-keep", daemon=True)
            self._writer.start()

    def _save(self) -> None:
        """Write the index to a temporary file, sync it, rename it over the old copy."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            with self._lock:
                if self._discarded:
                    return
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self._mutex:
                        faiss.write_index(self._current(), str(temporary))
                        self._unsaved = 0
                    _sync(temporary)
                    os.replace(temporary, self.path)
                    _sync(self.path.parent)
                except (OSError, RuntimeError) as error:  # a full disk: the old copy stays
                    log.warning("could not keep the vector index in %s: %s", self.path, error)
                    temporary.unlink(missing_ok=True)
                    self._unsaved = max(self._unsaved, 1)  # due again (at shutdown at least)
        finally:
            if self._writer is threading.current_thread():
                self._writer = None

    def _unusable(self, why: str) -> None:
        log.warning("ignoring the kept vector index %s: %s; rebuilding it", self.path, why)
        self.path.unlink(missing_ok=True)


def _misfit(index: faiss.Index, dimension: int, compressed_ok: bool) -> str:
    """Why a read index cannot be taken back ("" if it can)."""
    if not isinstance(index, faiss.IndexIVF) or index.d != dimension:
        return f"it is not an IVF index of {dimension} dimensions"
    if index.metric_type != faiss.METRIC_INNER_PRODUCT or not index.is_trained:
        return "it is not a trained inner-product index"
    if index.direct_map.type != ivf.HASHTABLE:
        return "it has no hashtable direct map"
    if not compressed_ok and isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "it holds 8-bit codes and there is no file to re-score from"
    return ""


def _sync(path: Path) -> None:
    """fsync a file, or a folder (so a rename in it is on disk)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

"""One running job of this process: its latest state, and the handle its work reports through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from domain.jobs import MAX_REFUSALS, Job, JobCancelledError, JobStore, Refusal
from domain.ports import Clock

Cleanup = Callable[[], None]


class JobRun:
    """One job of this process: its latest state, written to the store under one lock.

    The lock orders the writes of the job's thread and of the heartbeat, so an older state
    (queued) can never overwrite a newer one (running).
    """

    def __init__(self, job: Job, store: JobStore, clock: Clock, interval: float) -> None:
        self.job = job
        self.future: Future[None] | None = None
        self.cleanup: Cleanup | None = None
        self.stop = threading.Event()  # cancelled by a client, or the service is stopping
        self.stopping = False  # the service is stopping (the job fails with RESTART_REASON)
        self.told = False  # the work was told to stop
        self._store, self._clock, self._interval = store, clock, interval
        self._lock = threading.Lock()
        self._written = time.monotonic()

    def save(self, **changes: Any) -> Job:
        """Record `changes` now; return the job as stored (perhaps ended by someone else)."""
        with self._lock:
            return self._save(**changes)

    def _save(self, **changes: Any) -> Job:
        wanted = replace(self.job, **changes, updated_at=self._clock())
        stored = self._store.update(wanted)
        self.job = stored
        if stored.finished or stored.cancel_requested:
            self.stop.set()
        self._written = time.monotonic()
        return stored

    # JobHandle, for the work

    @property
    def job_id(self) -> str:
        return self.job.id

    def report(self, done: int, total: int | None = None, durable: bool = False) -> None:
        with self._lock:
            total = self.job.total if total is None else total
            due = time.monotonic() - self._written >= self._interval
            if durable or due or done == total:
                self._save(done=done, total=total)
            else:  # written by the next report or heartbeat: progress is not worth a commit each
                self.job = replace(self.job, done=done, total=total)

    def cancelled(self) -> bool:
        if self.stop.is_set():
            self.told = True
        return self.told

    def raise_if_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelledError(self.job.id)

    def refuse(self, refusal: Refusal) -> None:
        with self._lock:
            kept = self.job.refused
            if len(kept) < MAX_REFUSALS:
                kept = (*kept, refusal)
            self.job = replace(self.job, refused=kept, refused_count=self.job.refused_count + 1)

    def tally(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            self.job = replace(self.job, counts=dict(counts))

"""Jobs: long work (a restore, an ingestion) that runs in the background and reports progress.

`Job` is what a client reads back; `JobStore` is the port that keeps jobs across requests,
workers and restarts; `domain.job_runner.Jobs` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.errors import InvalidInputError

RESTART_REASON = "the service stopped while this job was running"
MAX_ERROR_CHARS = 2000  # an error is a sentence for a person, not a dump


class JobStatus(StrEnum):
    """queued -> running -> succeeded | failed | cancelled (queued may go straight to an end)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in UNFINISHED


UNFINISHED = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


@dataclass(frozen=True)
class Job:
    """One long operation: what it is, how far it got and how it ended.

    `done` of `total` units (documents, bytes: the kind says which) are done; `total` is None
    while unknown. `error` says why a failed job failed. `cancel_requested` tells the process
    running the job, wherever it runs, that a client asked to stop it.
    """

    id: str
    kind: str
    knowledge_base: str | None
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    done: int = 0
    total: int | None = None
    error: str | None = None
    cancel_requested: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))
        if not self.id or not self.kind:
            raise InvalidInputError("a job needs an id and a kind")
        if self.created_at.tzinfo is None or self.updated_at.tzinfo is None:
            raise InvalidInputError("a job's times must be timezone-aware")
        if self.done < 0 or (self.total is not None and self.total < 0):
            raise InvalidInputError("a job's progress cannot be negative")
        if self.error is not None and len(self.error) > MAX_ERROR_CHARS:
            object.__setattr__(self, "error", self.error[: MAX_ERROR_CHARS - 3] + "...")

    @property
    def finished(self) -> bool:
        return self.status.finished


class JobStore(Protocol):
    """Where jobs live: shared by every worker of a deployment, kept across restarts.

    A finished job never changes again: every write below leaves one alone, so a late write
    from a process that lost track of its job cannot undo the end another one recorded.
    """

    def add(self, job: Job) -> None:
        """Store a new job (its id is new)."""

    def get(self, job_id: str) -> Job:
        """The job as stored now; JobNotFoundError if there is none with that id."""

    def list(self, limit: int) -> list[Job]:
        """The `limit` most recently created jobs, newest first."""

    def update(self, job: Job) -> Job:
        """Record `job`'s status, progress, error and updated_at, unless the stored job has
        finished; return the job as stored afterwards (its cancel_requested as stored)."""

    def request_cancel(self, job_id: str, at: datetime) -> Job:
        """Ask for a job to stop: a queued one is cancelled at once (nothing was made yet), a
        running one gets cancel_requested for its runner to see; a finished one is left as it
        is. Return the job as stored afterwards; JobNotFoundError for an unknown id."""

    def fail_unfinished(self, reason: str, updated_before: datetime, at: datetime) -> int:
        """Fail every queued or running job last updated before `updated_before`, with
        `reason` as its error (their process is gone); return how many."""

    def remove_finished(self, updated_before: datetime) -> int:
        """Forget finished jobs last updated before `updated_before`; return how many."""


class JobHandle(Protocol):
    """What a job's work is given: report progress and notice a cancellation."""

    @property
    def job_id(self) -> str:
        """The id of the job this work runs as."""

    def report(self, done: int, total: int | None = None) -> None:
        """`done` units of `total` (None: keep the total known so far) are done."""

    def cancelled(self) -> bool:
        """Whether the job should stop: a client cancelled it or the service is stopping.

        Work that sees True stops, undoes what it made (or leaves that to its cleanup), and
        either raises JobCancelledError or returns: either way the job ends cancelled.
        """

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError if the job should stop."""


class JobCancelledError(Exception):
    """Raised inside a job's work to stop it because it was cancelled (not a failure)."""

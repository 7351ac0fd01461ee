"""Jobs: long work (a restore, an ingestion) that runs in the background and reports progress.

`Job` is what a client reads back; `JobStore` is the port that keeps jobs across requests,
workers and restarts; `domain.job_runner.Jobs` runs them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from domain.errors import InvalidInputError

RESTART_REASON = "the service stopped while this job was running"
MAX_ERROR_CHARS = 2000  # an error is a sentence for a person, not a dump
# A job keeps the first this many refusals word for word, and counts every one: a stream of
# a million bad lines must not make its job a million rows long.
MAX_REFUSALS = 1000
MAX_REASON_CHARS = 300
MAX_REFUSED_ID_CHARS = 200


@dataclass(frozen=True)
class Refusal:
    """One input a job refused and went on without: its line (1-based), its id if it had a
    readable one, and why."""

    line: int
    id: str | None
    reason: str

    def __post_init__(self) -> None:
        if len(self.reason) > MAX_REASON_CHARS:
            object.__setattr__(self, "reason", self.reason[: MAX_REASON_CHARS - 3] + "...")
        if self.id is not None and len(self.id) > MAX_REFUSED_ID_CHARS:
            object.__setattr__(self, "id", self.id[: MAX_REFUSED_ID_CHARS - 3] + "...")


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
    running the job, wherever it runs, that a client asked to stop it. `refused` holds the
    first MAX_REFUSALS inputs the work refused and went on without, `refused_count` all of
    them; `counts` are the kind's own tallies (an import's added, replaced, unchanged).
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
    refused: tuple[Refusal, ...] = ()
    refused_count: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))
        if not self.id or not self.kind:
            raise InvalidInputError("a job needs an id and a kind")
        if self.created_at.tzinfo is None or self.updated_at.tzinfo is None:
            raise InvalidInputError("a job's times must be timezone-aware")
        if self.done < 0 or (self.total is not None and self.total < 0):
            raise InvalidInputError("a job's progress cannot be negative")
        if self.refused_count < len(self.refused):
            raise InvalidInputError("a job's refused_count counts every refusal it lists")
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

    def report(self, done: int, total: int | None = None, durable: bool = False) -> None:
        """`done` units of `total` (None: keep the total known so far) are done.

        Progress is written every so often; `durable` writes it now, for work whose `done`
        says what a stopped job left committed (an import's batches).
        """

    def cancelled(self) -> bool:
        """Whether the job should stop: a client cancelled it or the service is stopping.

        Work that sees True stops, undoes what it made (or leaves that to its cleanup), and
        either raises JobCancelledError or returns: either way the job ends cancelled.
        """

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError if the job should stop."""

    def refuse(self, refusal: Refusal) -> None:
        """Record an input the work refused and went on without (written with the next report)."""

    def tally(self, counts: Mapping[str, int]) -> None:
        """Set the job's counts (written with the next report)."""


class JobCancelledError(Exception):
    """Raised inside a job's work to stop it because it was cancelled (not a failure)."""


def report_json(job: Job) -> str:
    """A job's refusals and counts as one JSON text, for stores that keep them in one column."""
    return json.dumps(
        {
            "refused": [[each.line, each.id, each.reason] for each in job.refused],
            "refused_count": job.refused_count,
            "counts": dict(job.counts),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def report_fields(text: str | None) -> dict[str, Any]:
    """The Job fields `report_json` wrote (none for a job stored before reports existed)."""
    if not text:
        return {}
    report = json.loads(text)
    return {
        "refused": tuple(Refusal(*each) for each in report["refused"]),
        "refused_count": report["refused_count"],
        "counts": report["counts"],
    }

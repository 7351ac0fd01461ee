"""SqliteJobStore: jobs in the `jobs` table of the memory backend's SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.errors import JobNotFoundError, StorageError
from domain.jobs import Job, JobStatus, report_fields, report_json

UNFINISHED = "('queued', 'running')"
COLUMNS = (
    "id, kind, knowledge_base, status, done, total, error, cancel_requested, created_at, "
    "updated_at, report"
)
BUSY_TIMEOUT_SECONDS = 30  # a big batch of documents may hold the file's write lock a while


def stamp(moment: datetime) -> str:
    """One fixed width in UTC, so that text order is time order in the comparisons below."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqliteJobStore:
    """A durable `JobStore` on its own connection to the file `SqliteDocumentRepository` owns.

    Open it after the repository: the repository takes the file's ownership lock and creates
    or migrates the `jobs` table. A connection of its own, because job writes come from job
    threads and the heartbeat while the repository's connection is busy with a batch; SQLite
    orders the two writers (WAL mode), waiting up to BUSY_TIMEOUT_SECONDS.
    """

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()  # one statement at a time on the shared connection
        # mode=rw: never create the file (an empty one would then be refused at the next start).
        self._db = sqlite3.connect(
            Path(path).absolute().as_uri() + "?mode=rw",
            uri=True,
            check_same_thread=False,
            isolation_level=None,  # each statement commits on its own
            timeout=BUSY_TIMEOUT_SECONDS,
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _statements(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as error:
                raise StorageError(f"the jobs table cannot be used: {error}") from error

    def add(self, job: Job) -> None:
        with self._statements() as db:
            db.execute(
                f"INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(job)
            )

    def get(self, job_id: str) -> Job:
        with self._statements() as db:
            return _one(db, job_id)

    def list(self, limit: int) -> list[Job]:
        with self._statements() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT ?", (limit,)
            ).fetchall()
        return [_job(row) for row in rows]

    def update(self, job: Job) -> Job:
        with self._statements() as db:
            db.execute(
                "UPDATE jobs SET status = ?, done = ?, total = ?, error = ?, updated_at = ?, "
                f"report = ? WHERE id = ? AND status IN {UNFINISHED}",
                (
                    job.status.value,
                    job.done,
                    job.total,
                    job.error,
                    stamp(job.updated_at),
                    report_json(job),
                    job.id,
                ),
            )
            return _one(db, job.id)

    def request_cancel(self, job_id: str, at: datetime) -> Job:
        with self._statements() as db:
            db.execute(
                "UPDATE jobs SET cancel_requested = 1, "
                "updated_at = CASE status WHEN 'queued' THEN ? ELSE updated_at END, "
                "status = CASE status WHEN 'queued' THEN 'cancelled' ELSE status END "
                f"WHERE id = ? AND status IN {UNFINISHED}",
                (stamp(at), job_id),
            )
            return _one(db, job_id)

    def fail_unfinished(self, reason: str, updated_before: datetime, at: datetime) -> int:
        with self._statements() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, updated_at = ? "
                f"WHERE status IN {UNFINISHED} AND updated_at < ?",
                (reason, stamp(at), stamp(updated_before)),
            )
        return cursor.rowcount

    def remove_finished(self, updated_before: datetime) -> int:
        with self._statements() as db:
            cursor = db.execute(
                f"DELETE FROM jobs WHERE status NOT IN {UNFINISHED} AND updated_at < ?",
                (stamp(updated_before),),
            )
        return cursor.rowcount


def _row(job: Job) -> tuple[Any, ...]:
    return (
        job.id, job.kind, job.knowledge_base, job.status.value, job.done, job.total, job.error,
        int(job.cancel_requested), stamp(job.created_at), stamp(job.updated_at), report_json(job),
    )  # fmt: skip


def _one(db: sqlite3.Connection, job_id: str) -> Job:
    row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFoundError(job_id)
    return _job(row)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        knowledge_base=row["knowledge_base"],
        status=JobStatus(row["status"]),
        done=row["done"],
        total=row["total"],
        error=row["error"],
        cancel_requested=bool(row["cancel_requested"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        **report_fields(row["report"]),
    )

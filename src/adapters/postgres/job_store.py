"""PostgresJobStore: jobs in the `kb_jobs` table, shared by every worker and replica."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

from psycopg.rows import dict_row

from adapters.postgres.database import PostgresDatabase
from domain.errors import JobNotFoundError
from domain.jobs import Job, JobStatus, report_fields, report_json

COLUMNS = (
    "id, kind, knowledge_base, status, done, total, error, cancel_requested, created_at, "
    "updated_at, report"
)
UNFINISHED = "('queued', 'running')"


class PostgresJobStore:
    """A `JobStore` over the backend's pool; each call is one statement, committed at once.

    A cancellation asked of any worker is a column the running job's worker reads back with
    its next write; conditional updates leave a finished job as it ended.
    """

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def _rows(self, query: LiteralString, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def _count(self, query: LiteralString, params: tuple[Any, ...]) -> int:
        with self._database.connection() as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.rowcount

    def add(self, job: Job) -> None:
        self._rows(
            f"INSERT INTO kb_jobs ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                job.id, job.kind, job.knowledge_base, job.status.value, job.done, job.total,
                job.error, job.cancel_requested, job.created_at, job.updated_at, report_json(job),
            ),
        )  # fmt: skip

    def get(self, job_id: str) -> Job:
        return _one(self._rows(f"SELECT {COLUMNS} FROM kb_jobs WHERE id = %s", (job_id,)), job_id)

    def list(self, limit: int) -> list[Job]:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM kb_jobs ORDER BY created_at DESC, id LIMIT %s", (limit,)
        )
        return [_job(row) for row in rows]

    def update(self, job: Job) -> Job:
        # One statement: the row as it is after the update, or as it was if it had finished.
        rows = self._rows(
            "WITH changed AS (UPDATE kb_jobs SET status = %s, done = %s, total = %s, "
            f"error = %s, updated_at = %s, report = %s WHERE id = %s AND status IN {UNFINISHED} "
            f"RETURNING {COLUMNS}) "
            f"SELECT {COLUMNS} FROM changed UNION ALL "
            f"SELECT {COLUMNS} FROM kb_jobs WHERE id = %s AND NOT EXISTS (SELECT 1 FROM changed)",
            (
                job.status.value,
                job.done,
                job.total,
                job.error,
                job.updated_at,
                report_json(job),
                job.id,
                job.id,
            ),
        )
        return _one(rows, job.id)

    def request_cancel(self, job_id: str, at: datetime) -> Job:
        rows = self._rows(
            "WITH changed AS (UPDATE kb_jobs SET cancel_requested = true, "
            "updated_at = CASE status WHEN 'queued' THEN %s ELSE updated_at END, "
            "status = CASE status WHEN 'queued' THEN 'cancelled' ELSE status END "
            f"WHERE id = %s AND status IN {UNFINISHED} RETURNING {COLUMNS}) "
            f"SELECT {COLUMNS} FROM changed UNION ALL "
            f"SELECT {COLUMNS} FROM kb_jobs WHERE id = %s AND NOT EXISTS (SELECT 1 FROM changed)",
            (at, job_id, job_id),
        )
        return _one(rows, job_id)

    def fail_unfinished(self, reason: str, updated_before: datetime, at: datetime) -> int:
        return self._count(
            "UPDATE kb_jobs SET status = 'failed', error = %s, updated_at = %s "
            f"WHERE status IN {UNFINISHED} AND updated_at < %s",
            (reason, at, updated_before),
        )

    def remove_finished(self, updated_before: datetime) -> int:
        return self._count(
            f"DELETE FROM kb_jobs WHERE status NOT IN {UNFINISHED} AND updated_at < %s",
            (updated_before,),
        )


def _one(rows: list[dict[str, Any]], job_id: str) -> Job:
    if not rows:
        raise JobNotFoundError(job_id)
    return _job(rows[0])


def _job(row: dict[str, Any]) -> Job:
    report = report_fields(row.pop("report"))
    return Job(**{**row, "status": JobStatus(row["status"]), **report})

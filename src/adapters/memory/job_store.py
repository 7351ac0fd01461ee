"""InMemoryJobStore: jobs in a dict, for KB_DATA_DIR=:memory: (gone when the process ends)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from domain.errors import JobNotFoundError
from domain.jobs import UNFINISHED, Job, JobStatus


class InMemoryJobStore:
    """A `JobStore` for one process that keeps nothing on disk."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # request_cancel and update read, then write

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job:
        with self._lock:
            return self._get(job_id)

    def _get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFoundError(job_id) from None

    def list(self, limit: int) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)
        return jobs[:limit]

    def update(self, job: Job) -> Job:
        with self._lock:
            stored = self._get(job.id)
            if not stored.finished:
                self._jobs[job.id] = replace(job, cancel_requested=stored.cancel_requested)
            return self._jobs[job.id]

    def request_cancel(self, job_id: str, at: datetime) -> Job:
        with self._lock:
            stored = self._get(job_id)
            if stored.status is JobStatus.QUEUED:  # nothing made yet: it ends here
                stored = replace(
                    stored, status=JobStatus.CANCELLED, cancel_requested=True, updated_at=at
                )
            elif stored.status is JobStatus.RUNNING:  # its runner stops it and cleans up
                stored = replace(stored, cancel_requested=True)
            self._jobs[job_id] = stored
            return stored

    def fail_unfinished(self, reason: str, updated_before: datetime, at: datetime) -> int:
        with self._lock:
            lost = [
                job
                for job in self._jobs.values()
                if job.status in UNFINISHED and job.updated_at < updated_before
            ]
            for job in lost:
                self._jobs[job.id] = replace(
                    job, status=JobStatus.FAILED, error=reason, updated_at=at
                )
        return len(lost)

    def remove_finished(self, updated_before: datetime) -> int:
        with self._lock:
            old = [
                job.id
                for job in self._jobs.values()
                if job.finished and job.updated_at < updated_before
            ]
            for job_id in old:
                del self._jobs[job_id]
        return len(old)

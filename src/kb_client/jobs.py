"""KBClient's job calls: follow, wait for and cancel long work running on the service."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from kb_client.base import ClientBase
from kb_client.errors import JobTimeout
from kb_client.models import FINISHED, Job
from kb_client.paths import job_path


class JobCalls(ClientBase):
    def get_job(self, id: str) -> Job:
        """A job's status and progress (`NotFound` for an unknown id)."""
        return cast(Job, self._call("GET", job_path(id)))

    def cancel_job(self, id: str) -> Job:
        """Ask a job to stop; it ends `cancelled` once its work has undone what it made.

        Raises `Conflict` if it already succeeded or failed; cancelling twice is harmless.
        """
        return cast(Job, self._call("DELETE", job_path(id)))

    def wait_for_job(
        self,
        id: str,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll a job every `poll` seconds until it succeeds, fails or is cancelled; return it.

        `on_progress(job)` is called with every state read, the last one included. A failed
        or cancelled job is returned, not raised: look at its `status` and `error`.
        Raises `JobTimeout` after `timeout` seconds (the job goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(id)
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() + poll > deadline:
                raise JobTimeout(f"job {id} is still {job['status']} after {timeout} s", body=job)
            time.sleep(poll)

"""Jobs: runs long work on a bounded pool of threads and records each job in a JobStore."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import replace
from datetime import timedelta

from domain.errors import (
    DomainError,
    JobFinishedError,
    JobNotFoundError,
    StorageUnavailableError,
)
from domain.job_run import Cleanup, JobRun
from domain.jobs import RESTART_REASON, Job, JobCancelledError, JobHandle, JobStatus, JobStore
from domain.ports import Clock, utc_now

log = logging.getLogger(__name__)

Work = Callable[[JobHandle], None]
RETENTION = timedelta(days=7)  # finished jobs are forgotten this long after they ended
HEARTBEAT_SECONDS = 2.0  # how often a running job's process records a sign of life


class Jobs:
    """Starts, tracks and cancels jobs; one per process, over the deployment's JobStore.

    Work runs on at most `workers` threads; more jobs wait, queued. While a job is queued or
    running this process writes it every `heartbeat` seconds (progress, and a sign of life)
    and picks up a cancellation asked of any worker. A job whose writes stopped for
    `stale_after` seconds lost its process: readers see it failed with RESTART_REASON.
    With an `exclusive` store (one process owns it) every unfinished job found when the
    runner is made was left by a process that stopped, and is failed at once.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        workers: int = 2,
        exclusive: bool = True,
        clock: Clock = utc_now,
        heartbeat: float = HEARTBEAT_SECONDS,
        stale_after: float = 30.0,
        progress_interval: float = 0.5,
        stop_timeout: float = 10.0,
    ) -> None:
        self._store, self._clock = store, clock
        self._stale = timedelta(seconds=stale_after)
        self._heartbeat = heartbeat
        self._interval = progress_interval
        self._stop_timeout = stop_timeout
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="kb-job")
        self._active: dict[str, JobRun] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._beating: threading.Thread | None = None
        self.recovered = self._recover(exclusive)

    def _recover(self, exclusive: bool) -> int:
        now = self._clock()
        failed = self._store.fail_unfinished(
            RESTART_REASON, updated_before=now if exclusive else now - self._stale, at=now
        )
        if failed:
            log.warning("%d job(s) were unfinished when the service stopped: now failed", failed)
        self._store.remove_finished(updated_before=now - RETENTION)
        return failed

    def start(
        self, kind: str, knowledge_base: str | None, work: Work, cleanup: Cleanup | None = None
    ) -> Job:
        """Queue `work` as a new job and return it (queued) at once.

        `work(handle)` reports progress and checks `handle.cancelled()` often. If it fails or
        is cancelled, `cleanup()` runs next, on the same thread: it removes whatever the work
        made, so a job that does not succeed leaves nothing half made. It also runs for a job
        cancelled (or stopped) before its work began, to remove what its work was given (an
        uploaded file).
        """
        now = self._clock()
        job = Job(uuid.uuid4().hex, kind, knowledge_base, JobStatus.QUEUED, now, now)
        with self._lock:
            if self._closed.is_set():
                raise StorageUnavailableError(
                    "the service is stopping: start the job again once it is back", retry_after=5
                )
            self._store.add(job)
            run = JobRun(job, self._store, self._clock, self._interval)
            run.cleanup = cleanup
            self._active[job.id] = run
            run.future = self._pool.submit(self._execute, run, work, cleanup)
            self._start_heartbeat()
        return job

    def get(self, job_id: str) -> Job:
        """The job as stored, with the latest progress if this process runs it;
        JobNotFoundError if unknown."""
        job = self._store.get(job_id)
        if self._lost(job):
            self._fail_lost()
            job = self._store.get(job_id)
        with self._lock:
            run = self._active.get(job_id)
        if run is not None and not job.finished:  # ours: its progress not yet written is news
            job = replace(job, done=run.job.done, total=run.job.total)
        return job

    def unfinished(self, job_id: str) -> bool:
        """Whether job `job_id` is queued or running still (False for an unknown id)."""
        try:
            return not self.get(job_id).finished
        except JobNotFoundError:
            return False

    def list(self, limit: int = 100) -> list[Job]:
        """The `limit` most recent jobs, newest first."""
        jobs = self._store.list(limit)
        if any(self._lost(job) for job in jobs):
            self._fail_lost()
            jobs = self._store.list(limit)
        return jobs

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop; return it. A queued job ends cancelled at once, a running one
        once its work notices; JobFinishedError if it already succeeded or failed."""
        job = self._store.request_cancel(job_id, at=self._clock())
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            raise JobFinishedError(job_id, job.status.value)
        with self._lock:
            run = self._active.get(job_id)
        if run is not None:  # ours: no need to wait for the heartbeat to notice
            run.stop.set()
        return job

    def close(self) -> None:
        """Stop: running work is asked to stop and given `stop_timeout` seconds to clean up;
        those jobs and the queued ones end failed with RESTART_REASON. A job still running
        after that is left as it is in the store: the next start fails it."""
        with self._lock:
            self._closed.set()
            runs = list(self._active.values())
        for run in runs:
            run.stopping = True
            run.stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        running = []
        for run in runs:
            if run.future is None or not run.future.cancelled():
                running.append(run.future)
                continue
            # Never started, and never will (a cancelled future is not "done" to wait()).
            if run.cleanup is not None:
                self._clean(run.cleanup, run.job.id, None)
            self._end(run, JobStatus.FAILED, RESTART_REASON)
            with self._lock:
                self._active.pop(run.job.id, None)
        wait_for([future for future in running if future is not None], self._stop_timeout)
        if self._beating is not None:
            self._beating.join(timeout=self._heartbeat + 1)

    # The job's thread

    def _execute(self, run: JobRun, work: Work, cleanup: Cleanup | None) -> None:
        try:
            job = run.save(status=JobStatus.RUNNING)
            if job.finished:  # cancelled while it was queued: nothing was made but its inputs
                if cleanup is not None:
                    self._clean(cleanup, run.job.id, None)
                return
            status, error = self._outcome(run, work)
            if status is not JobStatus.SUCCEEDED and cleanup is not None:
                error = self._clean(cleanup, run.job.id, error)
                if error is not None and status is JobStatus.CANCELLED:
                    status = JobStatus.FAILED
            if run.stopping and status is JobStatus.CANCELLED:
                status, error = JobStatus.FAILED, RESTART_REASON
            self._end(run, status, error)
        except Exception:  # the store failed: the heartbeat's absence tells readers in time
            log.exception("job %s could not be recorded", run.job.id)
        finally:
            with self._lock:
                self._active.pop(run.job.id, None)

    def _outcome(self, run: JobRun, work: Work) -> tuple[JobStatus, str | None]:
        if run.cancelled():
            return JobStatus.CANCELLED, None
        try:
            work(run)
        except JobCancelledError:
            return JobStatus.CANCELLED, None
        except DomainError as error:
            return JobStatus.FAILED, error.message
        except Exception as error:
            log.exception("job %s (%s) failed", run.job.id, run.job.kind)
            return JobStatus.FAILED, f"unexpected error ({type(error).__name__}); see the log"
        return (JobStatus.CANCELLED if run.told else JobStatus.SUCCEEDED), None

    @staticmethod
    def _clean(cleanup: Cleanup, job_id: str, error: str | None) -> str | None:
        try:
            cleanup()
        except Exception as failure:
            log.exception("job %s could not clean up", job_id)
            reason = failure.message if isinstance(failure, DomainError) else type(failure).__name__
            return f"{error + '; ' if error else ''}cleaning up failed too ({reason})"
        return error

    @staticmethod
    def _end(run: JobRun, status: JobStatus, error: str | None) -> None:
        total = run.job.total
        if status is JobStatus.SUCCEEDED and total is None:  # all that was done was all there was
            total = run.job.done
        run.save(status=status, error=error, total=total)

    # Signs of life, and jobs that lost theirs

    def sweep(self, task: Callable[[], object]) -> None:
        """Run `task` every `stale_after` seconds until the runner closes, e.g. to remove what
        lost jobs left (a restore's unpublished knowledge base) once they are seen lost: on a
        store shared by processes, a job killed with its process is lost only after a while."""

        def loop() -> None:
            while not self._closed.wait(self._stale.total_seconds()):
                try:
                    task()
                except Exception:  # the store is down: try again next round
                    log.exception("cleaning up after lost jobs failed; trying again later")

        threading.Thread(target=loop, name="kb-job-sweep", daemon=True).start()

    def _start_heartbeat(self) -> None:
        if self._beating is None:
            self._beating = threading.Thread(
                target=self._beat, name="kb-job-heartbeat", daemon=True
            )
            self._beating.start()

    def _beat(self) -> None:
        while not self._closed.wait(self._heartbeat):
            with self._lock:
                runs = list(self._active.values())
            for run in runs:
                try:
                    run.save()
                except Exception as error:  # the store is down: try again next beat
                    log.warning("job %s: heartbeat not recorded (%s)", run.job.id, error)

    def _lost(self, job: Job) -> bool:
        if job.finished or job.updated_at >= self._clock() - self._stale:
            return False
        with self._lock:
            return job.id not in self._active

    def _fail_lost(self) -> None:
        now = self._clock()
        self._store.fail_unfinished(RESTART_REASON, updated_before=now - self._stale, at=now)

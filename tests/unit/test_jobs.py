"""The job runner over the fake store: progress, outcomes, cancellation, restarts, the bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.errors import (
    InvalidInputError,
    JobFinishedError,
    JobNotFoundError,
    StorageUnavailableError,
)
from domain.job_runner import Jobs
from domain.jobs import RESTART_REASON, Job, JobHandle, JobStatus
from fakes import FakeJobStore


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


@pytest.fixture
def store() -> FakeJobStore:
    return FakeJobStore()


@pytest.fixture
def make_jobs(store: FakeJobStore) -> Iterator[Callable[..., Jobs]]:
    made: list[Jobs] = []

    def make(**options: Any) -> Jobs:
        options.setdefault("heartbeat", 0.02)
        options.setdefault("progress_interval", 0.0)
        made.append(Jobs(store, **options))
        return made[-1]

    yield make
    for jobs in made:
        jobs.close()


@pytest.fixture
def jobs(make_jobs: Callable[..., Jobs]) -> Jobs:
    return make_jobs()


def ended(jobs: Jobs, job_id: str) -> Job:
    eventually(lambda: jobs.get(job_id).finished)
    return jobs.get(job_id)


def until_cancelled(handle: JobHandle) -> None:
    while not handle.cancelled():
        time.sleep(0.002)


def test_a_job_reports_its_progress_and_ends_succeeded(jobs):
    halfway, go_on = threading.Event(), threading.Event()

    def work(handle: JobHandle) -> None:
        handle.report(2, 4)
        halfway.set()
        go_on.wait(5)
        handle.report(4)

    job = jobs.start("restore", "kb", work)
    assert (job.status, job.kind, job.knowledge_base) == (JobStatus.QUEUED, "restore", "kb")
    halfway.wait(5)
    running = jobs.get(job.id)
    assert (running.status, running.done, running.total) == (JobStatus.RUNNING, 2, 4)
    go_on.set()
    done = ended(jobs, job.id)
    assert (done.status, done.done, done.total, done.error) == (JobStatus.SUCCEEDED, 4, 4, None)
    assert done.updated_at >= done.created_at


def test_a_job_of_unknown_size_ends_with_its_total_as_what_was_done(jobs):
    job = jobs.start("ingest", None, lambda handle: handle.report(7))
    assert (ended(jobs, job.id).done, ended(jobs, job.id).total) == (7, 7)


def test_a_failing_job_says_why_and_its_cleanup_runs(jobs):
    cleaned = []

    def work(handle: JobHandle) -> None:
        handle.report(1, 3)
        raise InvalidInputError("the archive is cut short after 1 document")

    job = jobs.start("restore", "kb", work, cleanup=lambda: cleaned.append(True))
    failed = ended(jobs, job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error == "the archive is cut short after 1 document"
    assert (failed.done, failed.total, cleaned) == (1, 3, [True])


def test_an_unexpected_error_fails_the_job_without_leaking_its_text(jobs):
    def work(handle: JobHandle) -> None:
        raise RuntimeError("password=hunter2")

    failed = ended(jobs, jobs.start("restore", "kb", work).id)
    assert failed.status is JobStatus.FAILED
    assert "RuntimeError" in failed.error and "hunter2" not in failed.error


def test_a_cleanup_that_fails_is_reported_with_the_first_error(jobs):
    def work(handle: JobHandle) -> None:
        raise InvalidInputError("bad archive")

    def cleanup() -> None:
        raise OSError("disk gone")

    failed = ended(jobs, jobs.start("restore", "kb", work, cleanup=cleanup).id)
    assert failed.error == "bad archive; cleaning up failed too (OSError)"


def test_a_succeeding_job_never_runs_its_cleanup(jobs):
    cleaned = []
    job = jobs.start("restore", "kb", lambda handle: None, cleanup=lambda: cleaned.append(1))
    assert ended(jobs, job.id).status is JobStatus.SUCCEEDED
    assert cleaned == []


def test_cancelling_a_running_job_stops_its_work_and_cleans_up(jobs):
    started, cleaned = threading.Event(), []

    def work(handle: JobHandle) -> None:
        started.set()
        until_cancelled(handle)
        handle.raise_if_cancelled()

    job = jobs.start("restore", "kb", work, cleanup=lambda: cleaned.append(True))
    started.wait(5)
    asked = jobs.cancel(job.id)
    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    assert ended(jobs, job.id).status is JobStatus.CANCELLED
    assert cleaned == [True]


def test_work_that_returns_once_told_to_stop_ends_cancelled_not_succeeded(jobs):
    started = threading.Event()

    def work(handle: JobHandle) -> None:
        started.set()
        until_cancelled(handle)

    job = jobs.start("restore", "kb", work)
    started.wait(5)
    jobs.cancel(job.id)
    assert ended(jobs, job.id).status is JobStatus.CANCELLED


def test_a_queued_job_is_cancelled_at_once_and_its_work_never_runs(make_jobs):
    jobs = make_jobs(workers=1)
    release, ran = threading.Event(), []
    first = jobs.start("restore", "a", lambda handle: release.wait(5))
    cleaned: list[bool] = []
    second = jobs.start(
        "restore", "b", lambda handle: ran.append(True), cleanup=lambda: cleaned.append(True)
    )
    assert jobs.cancel(second.id).status is JobStatus.CANCELLED
    release.set()
    assert ended(jobs, first.id).status is JobStatus.SUCCEEDED
    time.sleep(0.05)
    assert jobs.get(second.id).status is JobStatus.CANCELLED
    assert ran == []
    assert cleaned == [True]  # what the work was given (an upload) goes too


def test_cancel_says_which_jobs_cannot_be_cancelled(jobs):
    with pytest.raises(JobNotFoundError):
        jobs.cancel("no-such-job")
    with pytest.raises(JobNotFoundError):
        jobs.get("no-such-job")
    done = ended(jobs, jobs.start("restore", "kb", lambda handle: None).id)
    with pytest.raises(JobFinishedError, match="already succeeded"):
        jobs.cancel(done.id)


def test_cancelling_a_cancelled_job_again_is_harmless(make_jobs):
    jobs = make_jobs(workers=1)
    release = threading.Event()
    jobs.start("restore", "a", lambda handle: release.wait(5))
    queued = jobs.start("restore", "b", lambda handle: None)
    first = jobs.cancel(queued.id)
    assert jobs.cancel(queued.id) == first
    release.set()


def test_at_most_workers_jobs_run_at_once_and_the_rest_wait_queued(make_jobs):
    jobs = make_jobs(workers=2)
    release = threading.Event()
    lock, running, most = threading.Lock(), [0], [0]

    def work(handle: JobHandle) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1

    started = [jobs.start("ingest", "kb", work) for _ in range(5)]
    eventually(lambda: running[0] == 2)
    time.sleep(0.05)
    statuses = sorted(jobs.get(job.id).status.value for job in started)
    assert statuses == ["queued", "queued", "queued", "running", "running"]
    release.set()
    for job in started:
        assert ended(jobs, job.id).status is JobStatus.SUCCEEDED
    assert most[0] == 2


def test_a_new_runner_fails_the_jobs_a_stopped_process_left_unfinished(store, make_jobs):
    now = datetime.now(UTC)
    store.add(Job("left-running", "restore", "kb", JobStatus.RUNNING, now, now, done=5))
    store.add(Job("left-queued", "restore", "kb", JobStatus.QUEUED, now, now))
    store.add(Job("ended", "restore", "kb", JobStatus.SUCCEEDED, now, now, done=1, total=1))
    jobs = make_jobs()
    assert jobs.recovered == 2
    for job_id in ("left-running", "left-queued"):
        job = jobs.get(job_id)
        assert (job.status, job.error) == (JobStatus.FAILED, RESTART_REASON)
    assert jobs.get("left-running").done == 5
    assert jobs.get("ended").status is JobStatus.SUCCEEDED


def test_a_shared_store_fails_only_the_jobs_whose_process_stopped_writing(store, make_jobs):
    now = datetime.now(UTC)
    store.add(Job("alive", "restore", "kb", JobStatus.RUNNING, now, now))
    old = now - timedelta(minutes=5)
    store.add(Job("lost", "restore", "kb", JobStatus.RUNNING, old, old))
    jobs = make_jobs(exclusive=False, stale_after=30)
    assert jobs.recovered == 1
    assert jobs.get("alive").status is JobStatus.RUNNING
    assert jobs.get("lost").error == RESTART_REASON
    # A job that stops beating later is reported failed when it is next read.
    store.jobs["alive"] = replace(store.jobs["alive"], updated_at=old)
    assert jobs.get("alive").status is JobStatus.FAILED
    assert [job.status for job in jobs.list()] == [JobStatus.FAILED, JobStatus.FAILED]


def test_a_cancel_asked_of_another_worker_reaches_the_one_running_the_job(store, make_jobs):
    runner, other = make_jobs(exclusive=False), make_jobs(exclusive=False)
    started, cleaned = threading.Event(), []

    def work(handle: JobHandle) -> None:
        started.set()
        until_cancelled(handle)

    job = runner.start("restore", "kb", work, cleanup=lambda: cleaned.append(True))
    started.wait(5)
    other.cancel(job.id)
    assert ended(other, job.id).status is JobStatus.CANCELLED
    assert cleaned == [True]


def test_running_jobs_beat_so_other_workers_do_not_take_them_for_lost(store, make_jobs):
    jobs = make_jobs(exclusive=False, heartbeat=0.02, stale_after=0.5)
    release = threading.Event()
    job = jobs.start("restore", "kb", lambda handle: release.wait(5))
    time.sleep(1.0)  # twice stale_after: alive only if it kept beating
    reader = make_jobs(exclusive=False, stale_after=0.5)
    assert reader.get(job.id).status is JobStatus.RUNNING
    release.set()
    assert ended(reader, job.id).status is JobStatus.SUCCEEDED


def test_progress_is_written_at_most_once_an_interval(store, make_jobs):
    jobs = make_jobs(progress_interval=60, heartbeat=60)
    job = jobs.start("ingest", "kb", lambda handle: [handle.report(i, 1000) for i in range(1001)])
    finished = ended(jobs, job.id)
    assert (finished.done, finished.total) == (1000, 1000)
    assert store.writes < 10


def test_stopping_fails_running_and_queued_jobs_with_the_reason_after_cleanup(store):
    jobs = Jobs(store, workers=1, heartbeat=0.02, progress_interval=0)
    started, cleaned = threading.Event(), []

    def work(handle: JobHandle) -> None:
        started.set()
        until_cancelled(handle)
        handle.raise_if_cancelled()

    running = jobs.start("restore", "a", work, cleanup=lambda: cleaned.append(True))
    queued = jobs.start("restore", "b", lambda handle: None, cleanup=lambda: cleaned.append(False))
    started.wait(5)
    jobs.close()
    for job in (running, queued):
        stopped = store.get(job.id)
        assert (stopped.status, stopped.error) == (JobStatus.FAILED, RESTART_REASON)
    assert sorted(cleaned) == [False, True]  # the queued one's too: its upload goes
    with pytest.raises(StorageUnavailableError):
        jobs.start("restore", "c", lambda handle: None)


def test_work_that_ignores_the_stop_is_left_running_for_the_next_start(store):
    jobs = Jobs(store, heartbeat=0.02, stop_timeout=0.1)
    release = threading.Event()
    job = jobs.start("restore", "kb", lambda handle: release.wait(5))
    eventually(lambda: store.get(job.id).status is JobStatus.RUNNING)
    jobs.close()
    assert store.get(job.id).status is JobStatus.RUNNING
    assert Jobs(store).get(job.id).error == RESTART_REASON
    release.set()


def test_a_sweep_runs_every_stale_period_until_the_runner_closes(store, make_jobs):
    jobs = make_jobs(exclusive=False, stale_after=0.05)
    rounds: list[int] = []

    def task() -> None:
        rounds.append(1)
        if len(rounds) == 2:
            raise RuntimeError("the store is down")  # logged; the sweep goes on

    jobs.sweep(task)
    deadline = time.monotonic() + 5
    while len(rounds) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(rounds) >= 4
    jobs.close()
    time.sleep(0.2)
    settled = len(rounds)
    time.sleep(0.2)
    assert len(rounds) == settled

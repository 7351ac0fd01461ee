"""/v1/jobs on both backends: read, cancel, keys, restarts, and kb_client's job methods.

No endpoint starts a job yet (restores will), so the tests start theirs through the
container's `Jobs`, as such an endpoint would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api

from domain.errors import InvalidInputError
from domain.jobs import RESTART_REASON, Job, JobHandle, JobStatus
from entrypoints.app import close_app
from entrypoints.job_response import LOCATION, JobSchema, accepted
from entrypoints.json_body import Blueprint
from kb_client import Conflict, Forbidden, JobTimeout, KBClient, NotFound
from live_server import serving

pytestmark = pytest.mark.both_backends

ADMIN, READER = "admin-key-0123456789", "reader-key-0123456789"
KEYS = {"api_keys": ADMIN, "read_only_api_keys": READER}
JOB_KEYS = {"id", "kind", "knowledge_base", "status", "done", "total", "error"}


def start(app: Flask, work: Callable[[JobHandle], None], **options: Any) -> Job:
    jobs = app.extensions["kb_container"].jobs()
    return jobs.start("restore", "kb", work, **options)


def blocking(release: threading.Event, started: threading.Event | None = None):
    """Work that reports 1 of 3 and runs until released or cancelled."""

    def work(handle: JobHandle) -> None:
        handle.report(1, 3)
        if started is not None:
            started.set()
        while not release.is_set():
            handle.raise_if_cancelled()
            time.sleep(0.005)
        handle.report(3)

    return work


def finished(client, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        body = client.get(f"/v1/jobs/{job_id}", headers=headers).get_json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.01)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_job_reads_back_with_its_progress_then_its_end(app, client):
    release, started = threading.Event(), threading.Event()
    job = start(app, blocking(release, started))
    started.wait(5)
    response = client.get(f"/v1/jobs/{job.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= JOB_KEYS
    assert (body["id"], body["kind"], body["knowledge_base"]) == (job.id, "restore", "kb")
    assert (body["status"], body["done"], body["total"], body["error"]) == ("running", 1, 3, None)
    release.set()
    body = finished(client, job.id)
    assert (body["status"], body["done"], body["total"]) == ("succeeded", 3, 3)
    assert client.get("/v1/jobs").get_json()["items"][0]["id"] == job.id


def test_a_failed_job_says_why(app, client):
    def work(handle: JobHandle) -> None:
        raise InvalidInputError("the archive's manifest is missing")

    body = finished(client, start(app, work).id)
    assert (body["status"], body["error"]) == ("failed", "the archive's manifest is missing")


def test_deleting_a_running_job_cancels_it_and_its_cleanup_runs(app, client):
    release, started, cleaned = threading.Event(), threading.Event(), []
    job = start(app, blocking(release, started), cleanup=lambda: cleaned.append(True))
    started.wait(5)
    response = client.delete(f"/v1/jobs/{job.id}")
    assert response.status_code == 202
    assert response.get_json()["cancel_requested"] is True
    assert finished(client, job.id)["status"] == "cancelled"
    assert cleaned == [True]
    again = client.delete(f"/v1/jobs/{job.id}")
    assert (again.status_code, again.get_json()["status"]) == (202, "cancelled")


def test_a_finished_job_cannot_be_cancelled(app, client, expect_error):
    job = start(app, lambda handle: None)
    finished(client, job.id)
    body = expect_error(client.delete(f"/v1/jobs/{job.id}"), 409, "status")
    assert "already succeeded" in body["message"]


def test_an_unknown_job_is_a_404(client, expect_error):
    expect_error(client.get("/v1/jobs/no-such-job"), 404)
    expect_error(client.delete("/v1/jobs/no-such-job"), 404)


def test_a_read_only_key_reads_jobs_but_cannot_cancel_them(make_app, expect_error):
    app = make_app(**KEYS)
    client = app.test_client()
    release = threading.Event()
    job = start(app, blocking(release))
    path = f"/v1/jobs/{job.id}"
    expect_error(client.get(path), 401)
    assert client.get(path, headers=bearer(READER)).status_code == 200
    assert client.get("/v1/jobs", headers=bearer(READER)).status_code == 200
    expect_error(client.delete(path, headers=bearer(READER)), 403)
    assert client.get(path, headers=bearer(READER)).get_json()["cancel_requested"] is False
    assert client.delete(path, headers=bearer(ADMIN)).status_code == 202
    assert finished(client, job.id, bearer(ADMIN))["status"] == "cancelled"


def test_the_accepted_helper_answers_202_with_the_job_and_where_to_follow_it(app, client):
    job = start(app, lambda handle: None)
    other = Flask("starts-jobs")
    other.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(other)
    starter = Blueprint("starter", __name__)

    @starter.route("/start")
    class Start(MethodView):
        @starter.response(202, JobSchema, headers=LOCATION)
        def post(self) -> Any:
            return accepted(job)

    api.register_blueprint(starter)
    response = other.test_client().post("/start")
    assert (response.status_code, response.headers["Location"]) == (202, f"/v1/jobs/{job.id}")
    assert response.get_json()["id"] == job.id
    assert client.get(response.headers["Location"]).get_json()["id"] == job.id
    answer = api.spec.to_dict()["paths"]["/start"]["post"]["responses"]["202"]
    assert "Location" in answer["headers"]


def test_the_openapi_document_describes_reading_and_cancelling_jobs(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/v1/jobs/{job_id}"]["get"]["responses"]) >= {"200", "404"}
    assert set(paths["/v1/jobs/{job_id}"]["delete"]["responses"]) >= {"202", "404", "409"}


def restart_settings(backend: str, tmp_path) -> dict[str, Any]:
    return {"data_dir": str(tmp_path)} if backend == "memory" else {}


def test_a_job_running_when_the_service_stops_reads_failed_after_the_restart(
    make_app, backend, tmp_path
):
    settings = restart_settings(backend, tmp_path)
    first = make_app(**settings)
    started, cleaned = threading.Event(), []
    job = start(first, blocking(threading.Event(), started), cleanup=lambda: cleaned.append(1))
    started.wait(5)
    close_app(first)  # a graceful stop: the work is stopped and cleans up
    assert cleaned == [1]
    body = make_app(**settings).test_client().get(f"/v1/jobs/{job.id}").get_json()
    assert (body["status"], body["error"], body["done"]) == ("failed", RESTART_REASON, 1)


def test_a_job_left_running_by_a_killed_process_reads_failed_after_the_restart(
    make_app, backend, tmp_path
):
    settings = restart_settings(backend, tmp_path)
    first = make_app(**settings)
    # As a SIGKILL leaves it: running in the store, with nobody writing it any more.
    at = datetime.now(UTC) - timedelta(minutes=5)
    left = Job("killed-job", "restore", "kb", JobStatus.RUNNING, at, at, done=7, total=10)
    first.extensions["kb_container"].job_store().add(left)
    close_app(first)
    client = make_app(**settings).test_client()
    body = client.get("/v1/jobs/killed-job").get_json()
    assert (body["status"], body["error"], body["done"]) == ("failed", RESTART_REASON, 7)


def test_kb_client_follows_and_cancels_jobs(app):
    release, started = threading.Event(), threading.Event()
    job = start(app, blocking(release, started))
    started.wait(5)
    seen: list[str] = []
    with serving(app) as url, KBClient(url, retries=0) as kb:
        assert kb.get_job(job.id)["status"] == "running"
        with pytest.raises(JobTimeout):
            kb.wait_for_job(job.id, poll=0.01, timeout=0.05)
        assert kb.cancel_job(job.id)["cancel_requested"] is True
        ended = kb.wait_for_job(
            job.id, poll=0.01, timeout=10, on_progress=lambda j: seen.append(j["status"])
        )
        assert ended["status"] == "cancelled" and seen[-1] == "cancelled"
        with pytest.raises(NotFound):
            kb.get_job("no-such-job")
        done = start(app, lambda handle: handle.report(2, 2))
        assert kb.wait_for_job(done.id, poll=0.01, timeout=10)["status"] == "succeeded"
        with pytest.raises(Conflict):
            kb.cancel_job(done.id)


def test_kb_client_with_a_read_only_key_cannot_cancel(make_app):
    app = make_app(**KEYS)
    job = start(app, blocking(threading.Event()))
    with serving(app) as url, KBClient(url, api_key=READER, retries=0) as kb:
        assert kb.get_job(job.id)["id"] == job.id
        with pytest.raises(Forbidden):
            kb.cancel_job(job.id)

"""A streaming import SIGKILLed mid-way, on both backends: whole batches, an honest job, a resume.

The real gunicorn serves the fake model, slowed down so the import is still running when the
whole process group is killed; a new server on the same data then tells the job failed with
how far it got, holds only whole committed batches, and the same import run again completes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import postgres
from domain.imports import IMPORT_BATCH
from domain.jobs import RESTART_REASON
from kb_client import KBClient
from model_folder import l6_folder
from server import FAKE_APP, Server

pytestmark = [pytest.mark.server, pytest.mark.both_backends]

COUNT = 5000


def records() -> Iterator[dict[str, Any]]:
    for i in range(COUNT):
        yield {
            "id": f"doc-{i:05d}",
            "text": f"document {i} on topic {i % 13}",
            "metadata": {"n": i},
        }


def settings_for(backend: str, tmp_path: Path) -> dict[str, str]:
    settings = {"KB_EMBEDDING_MODEL": l6_folder(), "KB_DATA_DIR": str(tmp_path / "data")}
    if backend == "postgres":
        url = postgres.database_url()
        postgres.clean(url)
        settings.update(KB_BACKEND="postgres", KB_DATABASE_URL=url)
    return settings


def started(tmp_path: Path, label: str, **settings: str) -> Server:
    server = Server(tmp_path / f"{label}.log", app=FAKE_APP, **settings)
    server.wait_ready()
    return server


@pytest.mark.timeout(240)
def test_a_killed_import_keeps_whole_batches_says_how_far_it_got_and_resumes(backend, tmp_path):
    settings = settings_for(backend, tmp_path)
    first = started(tmp_path, "first", FAKE_EMBED_SECONDS="0.1", **settings)
    try:
        with KBClient(first.url, retries=0) as client:
            client.create_knowledge_base("kb")
            job = client.import_documents("kb", records(), wait=False)
            assert job["total"] == COUNT
            deadline = time.monotonic() + 60
            while client.get_job(job["id"])["done"] < 3 * IMPORT_BATCH:
                assert time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        first.crash()  # SIGKILL, mid-job
    second = started(tmp_path, "second", **settings)
    try:
        with KBClient(second.url, retries=0) as client:
            # PostgreSQL's workers share the jobs: one is failed once its heartbeat is 30 s old.
            ended = client.wait_for_job(job["id"], poll=0.5, timeout=90)
            assert (ended["status"], ended["error"]) == ("failed", RESTART_REASON)
            # The memory backend's data folder is its own: the killed upload's spool is gone.
            assert list((tmp_path / "data").glob("kb-import-*")) == []
            stored = list(client.iter_documents("kb", page_size=1000))
            # `done` is written with each commit: at most the batch committed as it was killed
            # is not counted yet.
            assert 3 * IMPORT_BATCH <= len(stored) < COUNT
            assert len(stored) - IMPORT_BATCH <= ended["done"] <= len(stored)
            assert len(stored) % IMPORT_BATCH == 0  # whole batches, nothing half-written
            expected = {r["id"]: r for r in records()}
            assert [d["id"] for d in stored] == sorted(expected)[: len(stored)]
            for document in stored:
                source = expected[document["id"]]
                assert (document["text"], document["metadata"]) == (
                    source["text"], source["metadata"],
                )  # fmt: skip
            again = client.import_documents("kb", records(), poll=0.1, timeout=120)
            assert again["status"] == "succeeded", again
            assert again["counts"] == {
                "added": COUNT - len(stored), "replaced": 0, "unchanged": len(stored),
            }  # fmt: skip
            assert client.get_knowledge_base("kb")["document_count"] == COUNT
    finally:
        second.stop()

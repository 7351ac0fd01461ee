"""How long a sync takes: the first run (everything added) and the second (nothing changed).

    python -m bench.sync [--documents 10000] [--source folder|jsonl] [--url URL]

Writes `--documents` short texts as a folder of .txt files (or one JSONL file), then syncs it
twice into knowledge base `bench-sync` with kb_client's `sync_knowledge_base` (what `kb sync`
runs) and prints each run's seconds and counts, and how many texts the second run embedded
(0 expected).

Without `--url` the service runs in this process (memory backend, a temporary data folder,
served over HTTP on a loopback port) with a counting stand-in embedder (hashed words, instant):
the second run's figure is then sync's own cost (reading and hashing the source, the hash
listing, comparing), not the model's. With `--url` a running service is used (its own model;
`bench-sync` is deleted and created again there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

KB = "bench-sync"
WORD = re.compile(r"\w+|[^\w\s]")


class CountingEmbedder:
    """An instant Embedder (hashed bag of words, unit vectors) that counts the texts it embeds."""

    model_name = "bench-counting"
    fingerprint = hashlib.sha256(b"bench-counting").hexdigest()
    dimension = 32
    max_seq_length = 130
    window = 128

    def __init__(self) -> None:
        self.texts = 0
        self._lock = threading.Lock()

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in WORD.finditer(text)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.texts += len(texts)
        rows = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower())[: self.window]:
                rows[row, hashlib.blake2b(word.encode(), digest_size=1).digest()[0] % 32] += 1
            rows[row, 0] += 1e-3  # never a zero vector
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def texts(count: int) -> list[str]:
    return [
        f"short document {n} about topic {n % 97} and item {n * 7919 % 10007}" for n in range(count)
    ]


def write_source(folder: Path, kind: str, count: int) -> Path:
    if kind == "jsonl":
        path = folder / "docs.jsonl"
        lines = (json.dumps({"id": f"doc-{n:05d}", "text": t}) for n, t in enumerate(texts(count)))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    root = folder / "docs"
    for n, text in enumerate(texts(count)):
        part = root / f"part-{n // 1000:02d}"
        part.mkdir(parents=True, exist_ok=True)
        (part / f"doc-{n:05d}.txt").write_text(text, encoding="utf-8")
    return root


@contextmanager
def local_service(data_dir: Path, embedder: CountingEmbedder) -> Iterator[str]:
    """This checkout's service over HTTP on a free loopback port (werkzeug, threaded)."""
    from werkzeug.serving import make_server

    from entrypoints.app import close_app, create_app
    from entrypoints.settings import Settings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = create_app(Settings(data_dir=str(data_dir), backend="memory"), embedder=embedder)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        close_app(app)


def run(url: str, source: Path, embedder: CountingEmbedder | None) -> None:
    from kb_client import KBClient, NotFound, read_source, sync_knowledge_base

    with KBClient(url, timeout=600) as client:
        with suppress(NotFound):
            client.delete_knowledge_base(KB)
        client.create_knowledge_base(KB)
        for label in ("first", "second"):
            before = embedder.texts if embedder else 0
            started = time.perf_counter()
            report = sync_knowledge_base(client, KB, read_source(source), batch_size=256)
            seconds = time.perf_counter() - started
            embedded = f", {embedder.texts - before} texts embedded" if embedder else ""
            print(f"{label} run: {seconds:.2f} s ({report.summary()}{embedded})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--source", choices=["folder", "jsonl"], default="folder")
    parser.add_argument("--url", help="a running kb-service (default: one in this process)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as scratch:
        source = write_source(Path(scratch), args.source, args.documents)
        print(f"{args.documents} documents as a {args.source} ({source})")
        if args.url:
            run(args.url, source, None)
        else:
            embedder = CountingEmbedder()
            with local_service(Path(scratch) / "data", embedder) as url:
                run(url, source, embedder)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"uptime: {uptime.strip()}  (python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

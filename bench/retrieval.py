"""Retrieval quality of a running kb-service on a BEIR dataset, by trec_eval's rules.

    python -m bench.retrieval DATA_DIR (--url URL | --model FOLDER_OR_NAME)
        [--mode truncate|window | --compare] [--batch 256] [--kb NAME] [--split test]
        [--approximate]

For each mode it creates a knowledge base through the HTTP API (`chunking` = the mode),
adds the corpus in batches, each document's text being `(title + " " + text).strip()` as
in BEIR and MTEB, sends every judged query of the split (those in `qrels/<split>.tsv`) to
the search endpoint with `top_k` = 100 and `exact` (every vector compared, whatever the
corpus's size; `--approximate` leaves that out), prints nDCG@10, Recall@10, Recall@100 and
MAP@10 (bench/metrics.py: trec_eval's rules, as MTEB computes them) with timings, and deletes the
knowledge base again, also on failure or Ctrl-C.

`--mode truncate` is MTEB's protocol: every input is cut at the model's max_seq_length,
exact search, cosine scores; its figures are comparable with the model's published MTEB
scores (MTEB rounds to 5 decimals and reports them x100). `--mode window` (the service's
default) embeds long documents as overlapping token windows and ranks a document by its best
window. `--compare` runs both and prints them side by side.

With `--model` the script starts the service itself (`kb serve`, gunicorn) on a free
loopback port with KB_EMBEDDING_MODEL set to the folder or hub name, waits for /v1/info,
and stops it at the end. With `--url` it uses a service that is already running.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import beir, metrics

MODES = ("truncate", "window")
REPORTED = ("NDCG@10", "Recall@10", "Recall@100", "MAP@10")
LABELS = {"NDCG@10": "nDCG@10"}
HTTP_TIMEOUT = 900.0
STARTUP_TIMEOUT = 300.0


class BenchError(RuntimeError):
    """The benchmark cannot go on: a failed request, a server that does not start, ..."""


# HTTP


class Client:
    """A minimal JSON client for the kb-service v1 API (standard library only)."""

    def __init__(self, base_url: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:2000]
            raise BenchError(f"{method} {path} -> HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise BenchError(f"{method} {path} failed: {error}") from None
        return json.loads(raw) if raw else None

    def kb_path(self, kb: str, suffix: str = "") -> str:
        return f"/v1/knowledge-bases/{urllib.parse.quote(kb, safe='')}{suffix}"


# Starting and stopping a server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command() -> list[str]:
    kb = Path(sys.executable).with_name("kb")
    if kb.is_file():
        return [str(kb), "serve"]
    found = shutil.which("kb")
    if found:
        return [found, "serve"]
    return [sys.executable, "-m", "entrypoints.cli", "serve"]


@contextmanager
def local_server(model: str, quiet: bool = False) -> Iterator[str]:
    """Run `kb serve` with `model` on a free loopback port; yield its base URL; stop it."""
    port = free_port()
    env = dict(os.environ)
    env.update({"KB_EMBEDDING_MODEL": model, "KB_HOST": "127.0.0.1", "KB_PORT": str(port)})
    # A benchmark server keeps nothing on disk, and a big batch may take minutes on a CPU.
    env.setdefault("KB_DATA_DIR", ":memory:")
    env.setdefault("KB_TIMEOUT", "900")
    env.setdefault("KB_LOG_LEVEL", "warning")
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in the finally below
        "w+b", prefix="kb-bench-server-", suffix=".log", delete=False
    )
    command = [*_serve_command(), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: gunicorn's workers stop with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        client = Client(url, timeout=5.0)
        while True:
            if process.poll() is not None:
                raise BenchError(
                    f"the server exited with code {process.returncode} before answering:\n"
                    + _tail(log.name)
                )
            try:
                client.call("GET", "/v1/info")
                break
            except BenchError:
                pass
            if time.monotonic() - started > STARTUP_TIMEOUT:
                raise BenchError(
                    f"the server did not answer /v1/info within {STARTUP_TIMEOUT:.0f} s:\n"
                    + _tail(log.name)
                )
            time.sleep(0.25)
        if not quiet:
            print(
                f"started kb serve on {url} in {time.monotonic() - started:.1f} s", file=sys.stderr
            )
        yield url
    finally:
        _stop(process)
        log.close()
        Path(log.name).unlink(missing_ok=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the group we started: gunicorn and workers
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _tail(path: str, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


# One benchmark run


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    documents: int
    skipped_documents: int
    chunks: int
    truncated: int
    queries: int
    index_seconds: float
    query_seconds: float
    latencies_ms: list[float] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        return {
            "mode": self.mode,
            **{name: self.metrics[name] for name in REPORTED},
            "documents": self.documents,
            "skipped_documents": self.skipped_documents,
            "chunks": self.chunks,
            "truncated_documents": self.truncated,
            "queries": self.queries,
            "index_seconds": self.index_seconds,
            "index_docs_per_s": self.documents / self.index_seconds if self.index_seconds else 0.0,
            "query_seconds": self.query_seconds,
            "queries_per_s": self.queries / self.query_seconds if self.query_seconds else 0.0,
            "query_p50_ms": percentile(latencies, 50),
            "query_p99_ms": percentile(latencies, 99),
        }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def kb_slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug or "bench"


def default_kb_name(dataset: str, mode: str) -> str:
    suffix = f"-{mode}-{uuid.uuid4().hex[:8]}"
    return "bench-" + kb_slug(dataset)[: 64 - len("bench-") - len(suffix)].rstrip("-._") + suffix


def run_mode(
    client: Client,
    dataset: beir.Dataset,
    mode: str,
    kb: str,
    batch: int = 256,
    top_k: int = 100,
    concurrency: int = 1,
    ignore_identical_ids: bool = False,
    progress: bool = True,
    searches: Sequence[str] = ("dense",),
    exact: bool = True,
) -> list[ModeResult]:
    """Index the corpus into a new knowledge base `kb`, run the queries per search, delete it.

    `exact` asks every search to compare with every vector, as MTEB does, whatever the
    corpus's size (past KB_ANN_THRESHOLD the service would otherwise search approximately).
    """
    client.call("POST", "/v1/knowledge-bases", {"name": kb, "chunking": mode})
    try:
        return _index_and_search(
            client,
            dataset,
            mode,
            kb,
            batch,
            top_k,
            concurrency,
            ignore_identical_ids,
            progress,
            searches,
            exact,
        )
    finally:
        try:
            client.call("DELETE", client.kb_path(kb))
        except BenchError as error:
            print(f"warning: could not delete knowledge base {kb!r}: {error}", file=sys.stderr)


def _index_and_search(
    client: Client,
    dataset: beir.Dataset,
    mode: str,
    kb: str,
    batch: int,
    top_k: int,
    concurrency: int,
    ignore_identical_ids: bool,
    progress: bool,
    searches: Sequence[str] = ("dense",),
    exact: bool = True,
) -> list[ModeResult]:
    documents = [(d.id, d.full_text) for d in dataset.corpus if d.full_text.strip()]
    skipped = len(dataset.corpus) - len(documents)
    if skipped:
        print(f"warning: {skipped} documents have no text and were left out", file=sys.stderr)

    chunks = truncated = 0
    started = last_report = time.perf_counter()
    for first in range(0, len(documents), batch):
        body = {"documents": [{"id": i, "text": t} for i, t in documents[first : first + batch]]}
        answer = client.call("POST", client.kb_path(kb, "/documents"), body)
        for item in answer["items"]:
            chunks += int(item.get("chunks", 1))
            truncated += bool(item.get("truncated", False))
        now = time.perf_counter()
        done = min(first + batch, len(documents))
        if progress and (now - last_report > 10 or done == len(documents)):
            last_report = now
            print(
                f"  {mode}: indexed {done}/{len(documents)} documents "
                f"({done / (now - started):.1f} docs/s)",
                file=sys.stderr,
            )
    index_seconds = time.perf_counter() - started

    asked = top_k + 1 if ignore_identical_ids else top_k
    search_path = client.kb_path(kb, "/search")
    return [
        _search_all(
            client, dataset, search_path, asked, top_k, concurrency, ignore_identical_ids,
            search_mode, mode if search_mode == "dense" else f"{mode}+{search_mode}",
            (len(documents), skipped, chunks, truncated, index_seconds), exact,
        )
        for search_mode in searches
    ]  # fmt: skip


def _search_all(
    client: Client,
    dataset: beir.Dataset,
    search_path: str,
    asked: int,
    top_k: int,
    concurrency: int,
    ignore_identical_ids: bool,
    search_mode: str,
    label: str,
    indexed: tuple[int, int, int, int, float],
    exact: bool = True,
) -> ModeResult:
    def search(item: tuple[str, str]) -> tuple[str, dict[str, float], float]:
        query_id, text = item
        if not text.strip():
            return query_id, {}, 0.0  # the API refuses blank queries: no results, scores 0
        began = time.perf_counter()
        body: dict[str, Any] = {"query": text, "top_k": asked, "mode": search_mode}
        if exact:
            body["exact"] = True
        answer = client.call("POST", search_path, body)
        elapsed_ms = (time.perf_counter() - began) * 1000
        hits = [h for h in answer["hits"] if not (ignore_identical_ids and h["id"] == query_id)]
        # Hybrid hits are ordered by their fusion score, and trec_eval ranks by score.
        ranked = {h["id"]: float(h.get("fusion_score", h["score"])) for h in hits[:top_k]}
        return query_id, ranked, elapsed_ms

    started = time.perf_counter()
    items = list(dataset.queries.items())
    if concurrency > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(search, items))
    else:
        answers = [search(item) for item in items]
    query_seconds = time.perf_counter() - started

    run = {query_id: scores for query_id, scores, _ in answers}
    scores = metrics.evaluate(dataset.qrels, run, k_values=(10, 100))
    documents, skipped, chunks, truncated, index_seconds = indexed
    return ModeResult(
        mode=label,
        metrics=scores,
        documents=documents,
        skipped_documents=skipped,
        chunks=chunks,
        truncated=truncated,
        queries=len(items),
        index_seconds=index_seconds,
        query_seconds=query_seconds,
        latencies_ms=[ms for _, _, ms in answers if ms > 0],
    )


# Output


def format_table(results: Sequence[ModeResult]) -> str:
    summaries = [r.summary() for r in results]
    rows: list[tuple[str, list[str]]] = [("", [s["mode"] for s in summaries])]
    for name in REPORTED:
        rows.append((LABELS.get(name, name), [f"{s[name]:.5f}" for s in summaries]))
    rows += [
        ("documents", [str(s["documents"]) for s in summaries]),
        ("chunks", [str(s["chunks"]) for s in summaries]),
        ("truncated documents", [str(s["truncated_documents"]) for s in summaries]),
        ("queries", [str(s["queries"]) for s in summaries]),
        ("index time (s)", [f"{s['index_seconds']:.1f}" for s in summaries]),
        ("index docs/s", [f"{s['index_docs_per_s']:.1f}" for s in summaries]),
        ("query time (s)", [f"{s['query_seconds']:.1f}" for s in summaries]),
        ("queries/s", [f"{s['queries_per_s']:.1f}" for s in summaries]),
        ("query p50 (ms)", [f"{s['query_p50_ms']:.1f}" for s in summaries]),
        ("query p99 (ms)", [f"{s['query_p99_ms']:.1f}" for s in summaries]),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(
        f"{label:<{width}}" + "".join(f"  {value:>10}" for value in values)
        for label, values in rows
    )


# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.retrieval",
        description="nDCG@10, Recall@10, Recall@100 and MAP@10 of kb-service on a BEIR folder.",
    )
    parser.add_argument(
        "data_dir", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/"
    )
    server = parser.add_mutually_exclusive_group(required=True)
    server.add_argument("--url", help="base URL of a running service, e.g. http://127.0.0.1:8000")
    server.add_argument(
        "--model", help="start the service here with this KB_EMBEDDING_MODEL (folder or hub name)"
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--mode",
        choices=MODES,
        default="window",
        help="chunking of the knowledge base: truncate = MTEB's protocol (default: window)",
    )
    modes.add_argument(
        "--compare", action="store_true", help="run truncate and window, side by side"
    )
    parser.add_argument(
        "--batch", type=int, default=256, help="documents per add request (default 256)"
    )
    parser.add_argument(
        "--kb",
        help="knowledge base name (with --compare, -truncate/-window is appended); "
        "default: bench-<dataset>-<mode>-<random>",
    )
    parser.add_argument(
        "--split", default="test", help="qrels split: qrels/SPLIT.tsv (default test)"
    )
    parser.add_argument("--top-k", type=int, default=100, help="hits per query (default 100)")
    parser.add_argument(
        "--search",
        choices=("dense", "hybrid", "both"),
        default="dense",
        help="search mode: dense (default), hybrid (fused with BM25, docs/search.md), or both",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="queries in flight at once (default 1)"
    )
    parser.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop a hit whose id equals the query id, as MTEB does for some tasks (e.g. ArguAna)",
    )
    parser.add_argument(
        "--approximate",
        action="store_true",
        help="let a large knowledge base be searched approximately, as the service does by "
        "default (the figures are then the index's, not the model's)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000 (the API's batch limit)")
    if not 100 <= args.top_k <= 999:
        parser.error("--top-k must be between 100 (for Recall@100) and 999")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def run(args: argparse.Namespace) -> list[ModeResult]:
    dataset = beir.load(args.data_dir, args.split)
    if not dataset.queries:
        raise BenchError(f"{args.data_dir}: qrels/{args.split}.tsv judges no queries")
    modes = list(MODES) if args.compare else [args.mode]

    def benchmark(url: str) -> list[ModeResult]:
        client = Client(url)
        info = client.call("GET", "/v1/info")
        print(
            f"dataset {dataset.name} ({args.split}): {len(dataset.corpus)} documents, "
            f"{len(dataset.queries)} queries; model {info.get('model')} "
            f"(max_seq_length {info.get('max_seq_length')}, window {info.get('window')})"
        )
        results = []
        for mode in modes:
            if args.kb:
                kb = f"{args.kb}-{mode}" if args.compare else args.kb
            else:
                kb = default_kb_name(dataset.name, mode)
            results.extend(
                run_mode(
                    client,
                    dataset,
                    mode,
                    kb,
                    args.batch,
                    args.top_k,
                    args.concurrency,
                    args.ignore_identical_ids,
                    progress=not args.quiet,
                    searches=("dense", "hybrid") if args.search == "both" else (args.search,),
                    exact=not args.approximate,
                )
            )
        return results

    if args.url:
        results = benchmark(args.url)
    else:
        with local_server(args.model, quiet=args.quiet) as url:
            results = benchmark(url)
    print(format_table(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "dataset": dataset.name,
                    "split": args.split,
                    "results": [r.summary() for r in results],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (BenchError, beir.DatasetError) as error:
        print(f"bench.retrieval: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

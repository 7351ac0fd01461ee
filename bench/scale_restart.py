"""The restart part of bench.scale: a data dir of N chunks, served twice through `kb serve`.

1. One streamed pass over the corpus (`bench.scale_data`): the exact top 10 of each query
   (ids), and, unless --data-dir already holds a database, the data dir written block by block.
2. An empty data dir's start: the model's share of time and memory.
3. The "first" start on the data dir: without kept indexes (KB_DATA_DIR/indexes absent, or
   removed by --fresh-indexes) the service builds them from the SQLite file; with them (a
   reused --data-dir) it resumes, and the report says so. Measured: seconds to /readyz 200 and
   its `load_seconds`, seconds until GET /v1/knowledge-bases/{kb} reports the IVF index, HTTP
   search by vector p50/p99 (while it builds, and after) and recall@10 of the hit ids against
   exact search, the worker's RSS at ready, after the searches and at its peak (VmHWM), its
   CPU seconds, the index's type and memory, the load average.
4. Then the bench waits until the files under KB_DATA_DIR/indexes stop changing (the service
   writes its copy at the end of a build), stops the server gracefully (SIGTERM to the gunicorn
   master, waiting for it to exit: the service writes its copy at shutdown too) and measures
   the disk (the SQLite file and its -wal/-shm, and KB_DATA_DIR/indexes).
5. The "restart" on the same data dir, measured the same way: the kept indexes' resume.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.faiss.index import DEFAULT_ANN_THRESHOLD
from bench.restart import DATABASE_FILE, BenchError, Server, call, start_server
from bench.scale_data import (
    KB_NAME,
    WRITERS,
    check_counts,
    ids_of_rows,
    percentiles,
    rss_bytes,
    stream_corpus,
)

INDEXES = "indexes"  # KB_DATA_DIR/indexes: the service's kept copies of its indexes
QUIET_SECONDS = 15.0  # the kept copies count as written once unchanged this long


def prepare(
    args: argparse.Namespace, data_dir: Path, pool: np.ndarray, texts: Sequence[str], q: np.ndarray
) -> tuple[list[set[str]], float | None]:
    """The exact top-10 ids of each query, and the seconds writing the data dir took (None:
    it held a database already, reused)."""
    count = args.restart_size
    started = time.monotonic()
    writer = None
    if not (data_dir / DATABASE_FILE).is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        writer = WRITERS[args.write_with](data_dir, args.model, pool.shape[1], datetime.now(UTC))
    try:
        rows = stream_corpus(pool, texts, q, count, args.noise, writer)
    finally:
        if writer is not None:
            writer.close()
    written = None
    if writer is not None:
        check_counts(data_dir, count)
        written = round(time.monotonic() - started, 1)
        print(f"  data dir written in {written:.0f} s (with {args.write_with})", flush=True)
    else:
        print(f"  reused {data_dir}: exact truth in {time.monotonic() - started:.0f} s", flush=True)
    ids = ids_of_rows(rows.ravel().tolist())
    gc.collect()
    return [{ids[row] for row in found} for found in rows.tolist()], written


def kept_files(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file under KB_DATA_DIR/indexes: its size and modification time."""
    folder = data_dir / INDEXES
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        try:
            info = path.stat()
        except OSError:  # replaced under our feet: the next look sees the new file
            continue
        if path.is_file():
            found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def settle(data_dir: Path, timeout: float) -> float:
    """Wait until the kept copies have not changed for QUIET_SECONDS; the seconds waited."""
    started = time.monotonic()
    last, quiet_since = kept_files(data_dir), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        if time.monotonic() - started > timeout:
            print(f"  warning: {data_dir / INDEXES} still changing after {timeout:.0f} s")
            break
        time.sleep(1.0)
        now = kept_files(data_dir)
        if now != last:
            last, quiet_since = now, time.monotonic()
    return round(time.monotonic() - started, 1)


def stop_gracefully(server: Server, timeout: float) -> dict[str, Any]:
    """SIGTERM to the gunicorn master and wait for it to exit (its workers first)."""
    started = time.monotonic()
    graceful = True
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            graceful = False
            print(f"  warning: the server did not exit {timeout:.0f} s after SIGTERM: killed")
    if not graceful or server.process.returncode:
        print(server.tail())
    server.stop()  # the process group (SIGKILL if it is still there) and the log
    return {
        "stop_seconds": round(time.monotonic() - started, 1),
        "stop_graceful": graceful,
        "exit_code": server.process.returncode,
    }


def disk(data_dir: Path) -> dict[str, int]:
    database = sum(
        path.stat().st_size for path in data_dir.glob(DATABASE_FILE + "*") if path.is_file()
    )
    kept = sum(size for size, _ in kept_files(data_dir).values())
    return {"sqlite_bytes": database, "indexes_bytes": kept, "disk_bytes": database + kept}


def http_searches(
    server: Server,
    queries: np.ndarray,
    until: Callable[[], bool] | None = None,
    found: list[set[str]] | None = None,
) -> list[float]:
    """Seconds per search by vector; the hit ids of each go to `found` when given."""
    url = f"{server.url}/v1/knowledge-bases/{KB_NAME}/search"
    seconds = []
    for query in queries:
        if until is not None and until():
            break
        started = time.perf_counter()
        status, body = call(url, "POST", {"vector": query.tolist(), "top_k": 10})
        seconds.append(time.perf_counter() - started)
        if status != 200 or len(body["hits"]) != 10:
            raise BenchError(f"search -> {status} {str(body)[:300]}")
        if found is not None:
            found.append({hit["id"] for hit in body["hits"]})
    return seconds


def knowledge_base(server: Server) -> dict[str, Any]:
    status, kb = call(f"{server.url}/v1/knowledge-bases/{KB_NAME}")
    if status != 200:
        raise BenchError(f"GET the knowledge base -> {status} {kb}")
    return dict(kb)


def wait_for_ivf(
    server: Server, queries: np.ndarray, timeout: float, count: int
) -> tuple[float | None, list[float]]:
    """Seconds until the IVF index is active, and the searches timed meanwhile (None and none
    below the service's ANN threshold: the index stays exact)."""
    if count < int(os.environ.get("KB_ANN_THRESHOLD", DEFAULT_ANN_THRESHOLD)):
        return None, []
    started = time.monotonic()
    active = threading.Event()

    def watch() -> None:
        while time.monotonic() - started < timeout:
            if knowledge_base(server)["index"]["type"].startswith("ivf"):  # or "ivf-sq8"
                active.set()
                return
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    building = http_searches(server, queries[:50], until=active.is_set)
    if not active.wait(timeout=max(0.0, timeout - (time.monotonic() - started))):
        raise BenchError(f"no IVF index {timeout:.0f} s after ready:\n{server.tail()}")
    return round(time.monotonic() - started, 1), building


def one_start(
    args: argparse.Namespace, data_dir: Path, queries: np.ndarray, truth: Sequence[set[str]]
) -> dict[str, Any]:
    """Start on `data_dir`, measure, wait for the kept copies, stop gracefully."""
    kept_before = sum(size for size, _ in kept_files(data_dir).values())
    server, start = start_server(data_dir, args.model, timeout=args.start_timeout)
    try:
        kb = knowledge_base(server)
        if kb["document_count"] != args.restart_size or kb["chunk_count"] != args.restart_size:
            raise BenchError(f"the server counts {kb['document_count']} documents: {kb}")
        ivf_after, building = wait_for_ivf(server, queries, args.ann_timeout, args.restart_size)
        http_searches(server, queries[:20])  # warm-up
        found: list[set[str]] = []
        p50, p99 = percentiles(http_searches(server, queries, found=found))
        hits = sum(len(got & wanted) for got, wanted in zip(found, truth, strict=True))
        index = knowledge_base(server)["index"]
        figures = {
            "kept_index_bytes_before": kept_before,
            "ready_seconds": round(start.seconds, 2),
            "load_seconds": start.ready.get("load_seconds"),
            "load_average_at_start": round(start.load_average, 2),
            "worker_cpu_seconds_at_ready": round(start.cpu_seconds, 1),
            "ivf_active_after_ready_seconds": ivf_after,
            "http_p50_ms_while_building": percentiles(building)[0] if building else None,
            "http_searches_while_building": len(building),
            "http_p50_ms": p50,
            "http_p99_ms": p99,
            "http_recall_at_10": hits / sum(len(wanted) for wanted in truth),
            "index_type": index["type"],
            "index_memory_bytes": index["memory_bytes"],
            "rss_at_ready": start.rss,
            "rss_after_searches": server.worker_rss(),
            "worker_cpu_seconds_after_searches": round(server.worker_cpu_seconds(), 1),
            "settle_seconds": settle(data_dir, args.settle_timeout),
            "worker_peak_rss": rss_bytes("VmHWM", server.worker_pid()),
            "load_average_after": round(os.getloadavg()[0], 2),
        }
    finally:
        stopped = stop_gracefully(server, args.stop_timeout)
    return {**figures, **stopped, **disk(data_dir)}


def measure_restart(
    args: argparse.Namespace, pool: np.ndarray, texts: Sequence[str], queries: np.ndarray
) -> dict[str, Any]:
    """Both starts on a data dir written now (or reused: --data-dir); see the docstring."""
    root = Path(tempfile.mkdtemp(prefix="kb-scale-bench-"))
    data_dir = args.data_dir or root / "full"
    try:
        truth, written = prepare(args, data_dir, pool, texts, queries)
        if args.fresh_indexes:
            shutil.rmtree(data_dir / INDEXES, ignore_errors=True)
        (root / "empty").mkdir()
        server, empty = start_server(root / "empty", args.model)
        server.stop()
        resumed = bool(kept_files(data_dir))
        print(f"  first start ({'resuming kept indexes' if resumed else 'no kept index'}) ...")
        first = one_start(args, data_dir, queries, truth)
        print(f"  first start ready in {first['ready_seconds']} s; restart ...", flush=True)
        second = one_start(args, data_dir, queries, truth)
        return {
            "write_seconds": written,
            "write_with": args.write_with if written is not None else None,
            "bench_peak_rss": rss_bytes("VmHWM"),
            "empty_ready_seconds": round(empty.seconds, 2),
            "empty_rss": empty.rss,
            "first_start_resumed": resumed,
            "first": first,
            "restart": second,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def report_start(label: str, figures: dict[str, Any], count: int) -> None:
    f = figures
    print(
        f"{label}: ready {f['ready_seconds']} s (load_seconds {f['load_seconds']}; worker CPU "
        f"{f['worker_cpu_seconds_at_ready']} s; load average {f['load_average_at_start']:.1f} "
        f"at the start, {f['load_average_after']:.1f} at the end); kept copy before "
        f"{mb(f['kept_index_bytes_before'])}"
    )
    print(
        f"  IVF active {f['ivf_active_after_ready_seconds']} s after ready; HTTP search p50 "
        f"meanwhile {ms(f['http_p50_ms_while_building'])} ({f['http_searches_while_building']})"
    )
    print(
        f"  HTTP search by vector p50 {ms(f['http_p50_ms'])}  p99 {ms(f['http_p99_ms'])}  "
        f"recall@10 vs exact {f['http_recall_at_10']:.3f}; index {f['index_type']}, "
        f"{mb(f['index_memory_bytes'])}"
    )
    print(
        f"  worker RSS at ready {mb(f['rss_at_ready'])}, after searches "
        f"{mb(f['rss_after_searches'])}, peak {mb(f['worker_peak_rss'])}; CPU "
        f"{f['worker_cpu_seconds_after_searches']} s"
    )
    print(
        f"  kept copies settled after {f['settle_seconds']} s; stop {f['stop_seconds']} s "
        f"(graceful {f['stop_graceful']}, exit {f['exit_code']}); disk: SQLite "
        f"{mb(f['sqlite_bytes'])} + indexes {mb(f['indexes_bytes'])} = "
        f"{f['disk_bytes'] / count:,.0f} B/chunk"
    )


def report_restart(result: dict[str, Any], count: int) -> None:
    print(f"\n== two starts with {count:,} chunks (kb serve, gunicorn) ==")
    written = result["write_seconds"]
    print(
        (f"data dir written in {written} s with {result['write_with']}" if written else "reused")
        + f"; bench process peak {mb(result['bench_peak_rss'])}; empty data dir: ready "
        f"{result['empty_ready_seconds']} s, worker {mb(result['empty_rss'])}"
    )
    first = (
        "first start (resumed kept indexes)"
        if result["first_start_resumed"]
        else ("first start (no kept index)")
    )
    report_start(first, result["first"], count)
    report_start("restart (kept index)", result["restart"], count)

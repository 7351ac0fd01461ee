"""Where opening the SQLite repository spends its time and RAM, phase by phase.

    python -m bench.open_profile DIR [--digests]

DIR is a data dir written by `bench.scale.write_data_dir` (its kb.sqlite3 is opened, migrated
if older). Prints, each in seconds with the process's RSS after it: the chunk-span scan alone,
the documents scan alone, then the whole `SqliteDocumentRepository` open (migration, scans,
packing, the cache's load) and its RSS per document; with --digests, one pass of
`list_digests` pages of 1000 over the knowledge base (what a start's keyword resume reads).
Run it on a warm file (twice): the figures are then CPU, not disk.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adapters.sqlite.repository import SqliteDocumentRepository

PAGE = 1000
cpu_mark = 0.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(label: str, started: float) -> None:
    """Wall seconds since `started`, CPU seconds since the last call, RSS now and at peak."""
    global cpu_mark
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu, cpu_mark = time.process_time() - cpu_mark, time.process_time()
    print(
        f"{label:<28} {time.perf_counter() - started:7.2f} s (cpu {cpu:6.2f} s)  "
        f"rss {rss_mb():7.0f} MB  peak {peak:7.0f} MB",
        flush=True,
    )


def scans(path: Path) -> None:
    db = sqlite3.connect(path)
    for label, sql in (
        ("chunks scan", "SELECT kb, document_id, id, start, stop FROM chunks"),
        (
            "documents scan",
            "SELECT kb, id, metadata, created_at, updated_at, truncated, "
            "chunk_count, content_hash, layout FROM documents",
        ),
    ):
        started = time.perf_counter()
        plan = db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()[-1][-1]
        count = sum(1 for _ in db.execute(sql))
        timed(f"{label} ({count})", started)
        print(f"    plan: {plan}")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--digests", action="store_true")
    parser.add_argument("--no-scans", action="store_true")
    args = parser.parse_args()
    path = args.dir / "kb.sqlite3"
    timed("start", time.perf_counter())
    if not args.no_scans:
        scans(path)
    before = rss_mb()
    started = time.perf_counter()
    repository = SqliteDocumentRepository(path)
    timed("repository open", started)
    names = [kb.name for kb in repository.list_knowledge_bases(100)]
    documents = sum(repository.stats(name).document_count for name in names)
    print(
        f"    {documents} documents, {(rss_mb() - before) * 2**20 / max(documents, 1):.0f} "
        "bytes of RSS each"
    )
    if args.digests:
        started = time.perf_counter()
        for name in names:
            after = None
            while page := repository.list_digests(name, PAGE, after):
                after = page[-1].id
        timed("list_digests, all pages", started)
    repository.close()


if __name__ == "__main__":
    main()

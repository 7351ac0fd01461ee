"""Keyword (BM25) search over the FTS5 keyword index, code against code, in one process.

    python -m bench.keywords [--model FOLDER] [--documents 5000] [--queries 300] [--rounds 3]
        [--against REF]...

Loads this checkout's `src/adapters/sqlite/fts_keyword_index.py` ("current") and the same file
of each `--against` git revision (e.g. `--against main`) side by side, fills each index with the
same long texts (bench/corpus.py, 64 per batch as an add request brings them), one after the
other, noting how much the process's resident size grew (after `malloc_trim`). Then it asks
every index the same query texts (WordNet glosses that are no document, k = 11 as a hybrid
search of the top 10 asks) in `--rounds` interleaved rounds (A B, B A, ...), so each sees the
same load of a shared machine, and prints the latency p50/p99 of each. This is the part of a
hybrid search (`"mode": "hybrid"`) that the keyword index answers; `bench.query` times dense
search, which does not touch it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.heap import release_free_memory
from bench import corpus
from bench.memory import resident_mb
from bench.service import BenchError, default_model, format_table, load_note

CHECKOUT = Path(__file__).resolve().parents[1]
MODULE = "src/adapters/sqlite/fts_keyword_index.py"
BATCH = 64
TOP_K = 11


def index_class(ref: str | None) -> Any:
    """`Fts5KeywordIndex` of this checkout, or of git revision `ref` (its module stands alone)."""
    if ref is None:
        source = (CHECKOUT / MODULE).read_text()
    else:
        shown = subprocess.run(
            ["git", "-C", str(CHECKOUT), "show", f"{ref}:{MODULE}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            raise BenchError(f"git show {ref}:{MODULE}: {shown.stderr.strip()}")
        source = shown.stdout
    module = types.ModuleType(f"fts_keyword_index_{ref or 'current'}")
    exec(compile(source, f"{ref or 'current'}:{MODULE}", "exec"), module.__dict__)
    return module.Fts5KeywordIndex


def fill(index: Any, texts: Sequence[str]) -> tuple[float, float]:
    """Add every text in batches; (seconds taken, MB the process's resident size grew)."""
    release_free_memory()
    before = resident_mb(os.getpid())
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        index.add([(f"d{i}", texts[i]) for i in range(start, min(start + BATCH, len(texts)))])
    seconds = time.perf_counter() - started
    release_free_memory()
    return seconds, resident_mb(os.getpid()) - before


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    model = args.model or default_model()
    texts = corpus.long_texts(args.documents, model)
    queries = corpus.query_texts(args.queries)
    labels = ["current", *args.against]
    indexes = [index_class(None if label == "current" else label)() for label in labels]
    filled = [fill(index, texts) for index in indexes]
    loads = [load_note()]
    timings: list[list[float]] = [[] for _ in indexes]
    for round_number in range(args.rounds):
        order = list(range(len(indexes)))
        for position in order if round_number % 2 == 0 else reversed(order):
            for query in queries:
                started = time.perf_counter()
                indexes[position].search(query, TOP_K)
                timings[position].append(time.perf_counter() - started)
    loads.append(load_note())
    rows = [
        [
            label,
            f"{seconds:.2f}",
            f"{grown:.1f}",
            f"{percentile(times, 0.5) * 1e3:.2f}",
            f"{percentile(times, 0.99) * 1e3:.2f}",
            f"{statistics.fmean(times) * 1e3:.2f}",
        ]
        for label, (seconds, grown), times in zip(labels, filled, timings, strict=True)
    ]
    headers = ["code", "fill s", "MB resident added", "p50 ms", "p99 ms", "mean ms"]
    title = (
        f"FTS5 keyword index: {args.documents} long texts, {args.queries} queries x "
        f"{args.rounds} rounds, k = {TOP_K}"
    )
    print(format_table(headers, rows, title))
    print(f"  load at the start: {loads[0]}; at the end: {loads[1]}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.keywords", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", help="model folder, for the texts' word-piece lengths")
    parser.add_argument("--documents", type=int, default=5000, help="long texts (5000)")
    parser.add_argument("--queries", type=int, default=300, help="query texts (300)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument(
        "--against", action="append", default=[], metavar="REF", help="also this git revision"
    )
    args = parser.parse_args(argv)
    if min(args.documents, args.queries, args.rounds) < 1:
        parser.error("--documents, --queries and --rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except (BenchError, corpus.CorpusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

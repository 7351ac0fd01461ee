"""Ingest throughput of kb-service over HTTP, as a ratio to the raw model on the same texts.

    python -m bench.ingest [--url URL | --model FOLDER] [--short 2000] [--long 200]
        [--clients 16] [--batch 256] [--long-batch 50] [--threads 32] [--backend memory]
        [--workers N]

`--backend postgres` runs the service on PostgreSQL with pgvector: KB_DATABASE_URL from the
environment, else a private PostgreSQL (pgserver) started for the run (bench/service.py).

In ONE run, on the same machine and the same texts (bench/corpus.py: WordNet glosses):

1. raw model, in this process (on a thread of its own, as the service runs it; see
   bench/service.py RawModel): `SentenceTransformer(folder).encode(texts, batch_size=32)`
   - on the short texts                                         -> texts/s
   - on the long texts' chunk windows (the same windows of `window` word pieces overlapping by
     the knowledge base's `chunk_overlap` that the service embeds) -> chunks/s, and documents/s
     = long texts / time to encode all their windows
   - on the long texts cut at max_seq_length (MTEB-style truncation; one window per text), for
     reference only
2. batch adds over HTTP, one client, `--batch` documents per request (`--long-batch` for long
   texts), into a fresh knowledge base each                      -> texts/s (and chunks/s);
   each request is paired with the raw model encoding the same batch (its texts, or its long
   texts' chunk windows) just before or after it, alternately, so both see the same load
3. single-document adds (`{"id", "text"}` per request) from `--clients` concurrent clients,
   each on its own keep-alive connection, short texts             -> texts/s; compared with
   raw runs on all the short texts just before and just after

Every service figure is printed as a ratio to the raw model's rate on the same work: short
texts/s against raw short texts/s; long documents/s against raw documents/s where the raw model
encodes exactly the chunk windows the service reported (equivalently chunks/s against chunks/s).
Targets (issue 3): batch adds >= 0.9x raw, for short and long texts; single adds from 16 clients
>= 0.7x raw batched texts/s.

Before timing, both the raw model and the service get a warm-up pass. The benchmark client runs
on the same machine as the service and takes some CPU itself (JSON, HTTP), as a co-located
client would. On a shared 2-core machine the figures are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import corpus
from bench.service import (
    BenchError,
    Client,
    ModelCounters,
    RawModel,
    Service,
    add_service_arguments,
    format_table,
    load_note,
    model_counters,
    percentile,
    raw_model_folder,
    service_from_args,
    verdict,
)

RAW_BATCH_SIZE = 32
BATCH_TARGET = 0.9
SINGLE_TARGET = 0.7


@dataclass
class Rate:
    """`count` items of work done in `seconds` (texts, and the chunks they made)."""

    texts: int
    seconds: float
    chunks: int = 0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds


# Chunk windows, as the service cuts them (domain/chunking.py), from the model's own tokenizer


def chunk_windows(model: Any, texts: Sequence[str], window: int, overlap: int) -> list[list[str]]:
    """Each text's windows of `window` word pieces overlapping by `overlap`, as substrings."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    result: list[list[str]] = []
    for text in texts:
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        count = len(offsets)
        windows: list[str] = []
        result.append(windows)
        if count <= window:
            windows.append(text)
            continue
        stride = window - min(max(overlap, 0), window - 1)
        start = 0
        while True:
            end = min(start + window, count)
            first = 0 if start == 0 else offsets[start][0]
            last = len(text) if end == count else offsets[end - 1][1]
            windows.append(text[first:last])
            if end == count:
                break
            start += stride
    return result


def word_pieces(model: Any, texts: Sequence[str]) -> float:
    """Mean word pieces per text (without special tokens, without truncation)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return statistics.fmean(
        len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)
    )


# The raw model


def time_raw(raw: RawModel, texts: Sequence[str]) -> Rate:
    seconds, _ = raw.timed_encode(list(texts), RAW_BATCH_SIZE)
    return Rate(len(texts), seconds)


def difference(after: ModelCounters | None, before: ModelCounters | None) -> ModelCounters | None:
    return None if after is None or before is None else after - before


def pooled(first: Rate, second: Rate) -> Rate:
    """Both runs' work over both runs' time."""
    return Rate(first.texts + second.texts, first.seconds + second.seconds)


# The service


def new_kb(client: Client, label: str) -> str:
    name = f"bench-ingest-{label}-{uuid.uuid4().hex[:8]}"
    client.create_kb(name, description="bench.ingest; safe to delete")
    return name


def batch_adds(
    client: Client,
    kb: str,
    texts: Sequence[str],
    batch: int,
    raw: RawModel,
    raw_inputs: Sequence[Sequence[str]],
) -> tuple[Rate, Rate]:
    """Add `texts` in requests of `batch` documents, one after another, each request paired
    with the raw model encoding the same batch's inputs (`raw_inputs[i]`: what the model sees
    of text i), alternately before and after it; return (service Rate, raw Rate).

    Pairing batch by batch makes both figures see the same load of a shared machine.
    """
    chunks = 0
    service_seconds = 0.0
    raw_seconds = 0.0
    raw_count = 0
    for number, first in enumerate(range(0, len(texts), batch)):
        documents = [
            {"id": f"d{first + i}", "text": text}
            for i, text in enumerate(texts[first : first + batch])
        ]
        inputs = [piece for pieces in raw_inputs[first : first + batch] for piece in pieces]
        if number % 2:
            raw_seconds += raw.timed_encode(inputs, RAW_BATCH_SIZE)[0]
        started = time.perf_counter()
        items = client.add_documents(kb, documents)
        service_seconds += time.perf_counter() - started
        if not number % 2:
            raw_seconds += raw.timed_encode(inputs, RAW_BATCH_SIZE)[0]
        raw_count += len(inputs)
        chunks += sum(int(item.get("chunks", 1)) for item in items)
    return Rate(len(texts), service_seconds, chunks), Rate(raw_count, raw_seconds)


def single_adds(
    client: Client, kb: str, texts: Sequence[str], clients: int
) -> tuple[Rate, list[float]]:
    """Add each text in its own request from `clients` threads; time from the first to the last."""
    next_index = iter(range(len(texts)))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []
    chunks = [0]
    ready = threading.Barrier(clients + 1)

    def worker() -> None:
        own: list[float] = []
        own_chunks = 0
        try:
            client.call("GET", "/healthz")  # open this thread's connection before the clock
            ready.wait()
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    break
                sent = time.perf_counter()
                item = client.add_document(kb, {"id": f"s{index}", "text": texts[index]})
                own.append(time.perf_counter() - sent)
                own_chunks += int(item.get("chunks", 1))
        except BaseException as error:
            errors.append(error)
            with lock:  # stop the others early
                for _ in next_index:
                    pass
        finally:
            with lock:
                latencies.extend(own)
                chunks[0] += own_chunks
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise BenchError(f"single adds failed: {errors[0]}") from errors[0]
    return Rate(len(texts), elapsed, chunks[0]), latencies


def check_counts(client: Client, kb: str, documents: int, chunks: int) -> None:
    stats = client.get_kb(kb) or {}
    if stats.get("document_count") != documents or stats.get("chunk_count", chunks) != chunks:
        raise BenchError(
            f"knowledge base {kb} holds {stats.get('document_count')} documents and "
            f"{stats.get('chunk_count')} chunks; expected {documents} and {chunks}"
        )


# Reporting


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x"


def run(args: argparse.Namespace, service: Service) -> int:
    folder = raw_model_folder(service)
    short = corpus.short_texts(args.short)
    long = corpus.long_texts(args.long, folder)
    client = service.client()
    info = client.info()
    print(f"# {service.describe()}")
    print(f"# service model: {info.get('model')}  (backend {info.get('backend')})")
    print(f"# at start: {load_note()}")

    print(f"# loading the raw model in-process from {folder}", file=sys.stderr)
    import torch

    raw = RawModel(folder)
    model = raw.model
    max_seq_length = int(model.max_seq_length)
    window = int(info.get("window") or max_seq_length - 2)
    kbs: list[str] = []
    inside: dict[str, ModelCounters | None] = {}
    try:
        # Warm-up: first calls allocate, JIT-select kernels, fill caches.
        time_raw(raw, short[:64])
        time_raw(raw, long[:8])
        warm = new_kb(client, "warmup")
        kbs.append(warm)
        overlap = int((client.get_kb(warm) or {}).get("chunk_overlap", 32))
        client.add_documents(warm, [{"id": f"w{i}", "text": t} for i, t in enumerate(short[:64])])
        client.add_documents(warm, [{"id": f"l{i}", "text": t} for i, t in enumerate(long[:4])])
        windows_per_text = chunk_windows(model, long, window, overlap)
        windows = [piece for pieces in windows_per_text for piece in pieces]

        # The machine is shared: each batch request is paired with the raw model encoding the
        # same batch, so that both see the same load.
        print("# timing batch adds (short), each paired with the raw model", file=sys.stderr)
        kb = new_kb(client, "short")
        kbs.append(kb)
        before = model_counters(client)
        http_short, ref_batch = batch_adds(
            client, kb, short, args.batch, raw, [[text] for text in short]
        )
        inside["short"] = difference(model_counters(client), before)
        check_counts(client, kb, len(short), http_short.chunks)

        print("# timing batch adds (long), each paired with the raw model", file=sys.stderr)
        kb = new_kb(client, "long")
        kbs.append(kb)
        before = model_counters(client)
        http_long, ref_windows = batch_adds(
            client, kb, long, args.long_batch, raw, windows_per_text
        )
        inside["long"] = difference(model_counters(client), before)
        check_counts(client, kb, len(long), http_long.chunks)
        raw_truncated = time_raw(raw, long)

        raw_short_2 = time_raw(raw, short)
        print(f"# timing single adds from {args.clients} clients", file=sys.stderr)
        kb = new_kb(client, "single")
        kbs.append(kb)
        before = model_counters(client)
        http_single, latencies = single_adds(client, kb, short, args.clients)
        inside["single"] = difference(model_counters(client), before)
        check_counts(client, kb, len(short), http_single.chunks)
        raw_short_3 = time_raw(raw, short)
    finally:
        raw.close()
        if not args.keep_kbs:
            for name in kbs:
                try:
                    client.delete_kb(name)
                except BenchError as error:
                    print(f"# could not delete {name}: {error}", file=sys.stderr)

    ref_single = pooled(raw_short_2, raw_short_3)
    pieces_short = word_pieces(model, short)
    pieces_long = word_pieces(model, long)
    pieces_windows = word_pieces(model, windows)
    per_text = len(windows) / len(long)

    def raw_row(label: str, rate: Rate, pieces: float, per_doc: float = 1.0) -> list[Any]:
        return [
            label,
            rate.texts,
            f"{pieces:.1f}",
            f"{rate.seconds:.2f}",
            f"{rate.texts_per_second:.1f}",
            f"{rate.texts_per_second / per_doc:.1f}",
        ]

    print()
    print(
        format_table(
            ["raw model run", "inputs", "word pieces", "seconds", "inputs/s", "texts/s"],
            [
                raw_row("short glosses, paired with batch adds", ref_batch, pieces_short),
                raw_row("long: chunk windows, paired", ref_windows, pieces_windows, per_text),
                raw_row("short glosses, before single adds", raw_short_2, pieces_short),
                raw_row("short glosses, after single adds", raw_short_3, pieces_short),
                raw_row(
                    f"long: cut at {max_seq_length} (reference only)",
                    raw_truncated,
                    min(pieces_long, window),
                ),
            ],
            title=(
                f"RAW MODEL, in this process: SentenceTransformer.encode(batch_size="
                f"{RAW_BATCH_SIZE}), torch threads={torch.get_num_threads()}, "
                f"max_seq_length={max_seq_length}, window={window}, overlap={overlap}"
            ),
        )
    )
    print(
        f"  short: {len(short)} glosses, {pieces_short:.1f} word pieces each on average; long: "
        f"{len(long)} texts of {pieces_long:.1f} word pieces on average, = {len(windows)} chunk "
        f"windows ({per_text:.2f} per text). inputs = texts or windows encoded."
    )
    print()
    rows = [
        [
            f"batch adds, short, {args.batch}/request, 1 client",
            len(short),
            http_short.chunks,
            f"{http_short.seconds:.2f}",
            f"{http_short.texts_per_second:.1f}",
            f"{http_short.chunks_per_second:.1f}",
            f"{ref_batch.texts_per_second:.1f} texts/s",
            ratio(http_short.texts_per_second, ref_batch.texts_per_second),
            f">= {BATCH_TARGET}x",
        ],
        [
            f"batch adds, long, {args.long_batch}/request, 1 client",
            len(long),
            http_long.chunks,
            f"{http_long.seconds:.2f}",
            f"{http_long.texts_per_second:.1f}",
            f"{http_long.chunks_per_second:.1f}",
            f"{ref_windows.texts_per_second:.1f} chunks/s",
            ratio(http_long.chunks_per_second, ref_windows.texts_per_second),
            f">= {BATCH_TARGET}x",
        ],
        [
            f"single adds, short, {args.clients} clients",
            len(short),
            http_single.chunks,
            f"{http_single.seconds:.2f}",
            f"{http_single.texts_per_second:.1f}",
            f"{http_single.chunks_per_second:.1f}",
            f"{ref_single.texts_per_second:.1f} texts/s",
            ratio(http_single.texts_per_second, ref_single.texts_per_second),
            f">= {SINGLE_TARGET}x",
        ],
    ]
    print(
        format_table(
            [
                "service over HTTP",
                "texts",
                "chunks",
                "seconds",
                "texts/s",
                "chunks/s",
                "raw model",
                "ratio",
                "target",
            ],
            rows,
            title=(
                "SERVICE (raw model: batch adds = the paired raw runs on the same batches; "
                "single adds = the raw runs just before and after, pooled)"
            ),
        )
    )
    print(
        f"  single adds: request latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
    )
    if len(windows) != http_long.chunks:
        print(
            f"  note: the service made {http_long.chunks} chunks of the long texts, this script "
            f"{len(windows)} windows; the long ratio compares chunks/s"
        )
    print(
        f"  long texts: the raw model encodes the same {len(windows)} chunk windows the service "
        f"embeds, so the ratio is service chunks/s over raw chunks/s (= service texts/s over "
        f"raw texts/s, raw texts/s = {ref_windows.texts_per_second / per_text:.2f})."
    )
    diagnostics = []
    for key, label, service_rate, reference in (
        ("short", "batch adds, short", http_short, ref_batch),
        ("long", "batch adds, long", http_long, ref_windows),
        ("single", f"single adds, {args.clients} clients", http_single, ref_single),
    ):
        counters = inside.get(key)
        if counters is None or counters.calls <= 0 or counters.seconds <= 0:
            continue
        diagnostics.append(
            [
                label,
                f"{counters.calls:.0f}",
                f"{counters.texts / counters.calls:.1f}",
                f"{counters.seconds:.2f}",
                f"{100 * counters.seconds / service_rate.seconds:.0f}%",
                f"{service_rate.seconds - counters.seconds:.2f}",
                f"{counters.texts / counters.seconds:.1f}",
                f"{reference.texts_per_second:.1f}",
            ]
        )
    if diagnostics:
        print()
        print(
            format_table(
                [
                    "phase",
                    "model calls",
                    "inputs/call",
                    "in model s",
                    "of service time",
                    "model idle s",
                    "model inputs/s",
                    "raw inputs/s",
                ],
                diagnostics,
                title=(
                    "WHERE THE SERVICE'S TIME GOES (its own /metrics: kb_model_batch_size, "
                    "kb_model_encode_seconds)"
                ),
            )
        )
        print(
            "  model inputs/s below raw inputs/s: the service's model calls are less efficient "
            "than encode(batch_size=32) (batch shape, padding); model idle = service time minus "
            "time in the model: HTTP, JSON, validation, chunk spans, storage, waiting."
        )
    print()
    short_ratio = http_short.texts_per_second / ref_batch.texts_per_second
    long_ratio = http_long.chunks_per_second / ref_windows.texts_per_second
    single_ratio = http_single.texts_per_second / ref_single.texts_per_second
    print(
        verdict(
            short_ratio >= BATCH_TARGET,
            f"batch adds, short texts: {short_ratio:.2f}x raw (target >= {BATCH_TARGET}x)",
        )
    )
    print(
        verdict(
            long_ratio >= BATCH_TARGET,
            f"batch adds, long texts: {long_ratio:.2f}x raw chunks/s (target >= {BATCH_TARGET}x)",
        )
    )
    print(
        verdict(
            single_ratio >= SINGLE_TARGET,
            f"single adds, {args.clients} clients: {single_ratio:.2f}x raw batched "
            f"(target >= {SINGLE_TARGET}x)",
        )
    )
    print(f"  at the end: {load_note()}")
    print("  (a shared machine: figures are noisy when the load is above 0; rerun to confirm)")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_service_arguments(parser, threads=32)
    parser.add_argument("--short", type=int, default=2000, help="short texts (default 2000)")
    parser.add_argument("--long", type=int, default=200, help="long texts (default 200)")
    parser.add_argument("--clients", type=int, default=16, help="single-add clients (16)")
    parser.add_argument("--batch", type=int, default=256, help="short documents per request")
    parser.add_argument("--long-batch", type=int, default=50, help="long documents per request")
    parser.add_argument(
        "--keep-kbs", action="store_true", help="keep the knowledge bases it creates"
    )
    args = parser.parse_args(argv)
    if min(args.short, args.long, args.clients, args.batch, args.long_batch) < 1:
        parser.error("counts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with service_from_args(args) as service:
            return run(args, service)
    except (BenchError, corpus.CorpusError) as error:
        print(f"bench.ingest: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The embedding cache (issue 18) over HTTP with the real model: what it saves and what it costs.

    python -m bench.cache [--model FOLDER] [--documents 10000] [--batch 500] [--long 20]
        [--paragraphs 36] [--fresh 2000] [--backend memory]

In one run, against `kb serve` processes started here (KB_EMBEDDING_CACHE_MB default, 256):

1. re-import: `--documents` short documents (WordNet glosses, bench/corpus.py) into a knowledge
   base in batches of `--batch`, then the same documents into a second one. Prints both times
   and their ratio (target: the second <= 0.10x the first), the texts the model embedded each
   time (/metrics), and checks that 50 searches answer the same ids and scores in both.
2. upsert: `--long` documents of `--paragraphs` paragraphs (4 glosses each, blank lines between)
   are added, then each is PUT back with its middle paragraph edited, twice: two of its words
   swapped (same length, same word pieces), then the paragraph replaced by other glosses (its
   length changes, so the fixed-stride windows after it shift). Prints the windows re-embedded
   (cache misses) out of the windows of the document.
3. hit cost: the second import's service time per document, and in this process the cost per
   text of a hit in a `CachingEmbedder` (key digest, lookup, copy) on the chunk texts above.
4. miss overhead (target ~1.0x): in this process, the service's model (`make_embedder`) with a
   cold cache in front and without, A B B A on every batch of `--fresh` new texts; then over
   HTTP, `--fresh` new documents into the service and into a second one started with
   KB_EMBEDDING_CACHE_MB=0, both running, alternating which goes first over 4 rounds. On a busy
   machine the HTTP figure is the noisier one (the two runs are seconds apart).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import numpy as np

from bench import corpus
from bench.service import (
    BenchError,
    Client,
    Service,
    add_service_arguments,
    load_note,
    service_from_args,
    start_service,
)

GLOSSES_PER_PARAGRAPH = 4


def cache_counters(client: Client) -> dict[str, float]:
    """kb_embedding_cache_* samples of /metrics, by name."""
    status, text = client.call("GET", "/metrics")
    if status != 200 or not isinstance(text, str):
        raise BenchError(f"GET /metrics -> {status}")
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("kb_embedding_cache_") and not name.endswith("_created"):
            values[name] = float(value)
    return values


def misses(client: Client) -> float:
    return cache_counters(client).get("kb_embedding_cache_misses_total", 0.0)


def timed_import(client: Client, kb: str, texts: list[str], batch: int) -> float:
    client.create_kb(kb)
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        documents = [
            {"id": f"d{start + n}", "text": t} for n, t in enumerate(texts[start : start + batch])
        ]
        client.add_documents(kb, documents)
    return time.perf_counter() - started


def reimport(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    texts = corpus.short_texts(args.documents)
    timed_import(client, "warm-up", corpus.query_texts(args.batch + 200)[200:], args.batch)
    before = misses(client)
    first = timed_import(client, "first", texts, args.batch)
    between = misses(client)
    second = timed_import(client, "second", texts, args.batch)
    after = misses(client)
    for query in corpus.query_texts(50):
        one, two = (client.search(kb, query=query, top_k=10) for kb in ("first", "second"))
        if [(h["id"], h["score"]) for h in one] != [(h["id"], h["score"]) for h in two]:
            raise BenchError(f"the two knowledge bases rank {query!r} differently")
    ratio = second / first
    print(f"re-import of {len(texts)} short documents, batches of {args.batch}:")
    for label, seconds, embedded in (
        ("first", first, between - before),
        ("second", second, after - between),
    ):
        rate = len(texts) / seconds
        print(f"  {label:6s} {seconds:7.2f} s {rate:8.0f} docs/s  model texts {embedded:.0f}")
    verdict = "met" if ratio <= 0.10 else "NOT met"
    print(f"  second / first = {ratio:.3f} (target <= 0.10: {verdict})")
    print(f"  second import: {second / len(texts) * 1e6:.0f} us per document end to end over HTTP")
    print("  50 searches: the same ids and scores in both knowledge bases")
    return {"first": first, "second": second}


def paragraphs_of(document: int, count: int, offset: int) -> list[str]:
    pool = corpus.glosses()
    start = offset + document * count * GLOSSES_PER_PARAGRAPH
    return [
        " ".join(
            pool[(start + p * GLOSSES_PER_PARAGRAPH + g) % len(pool)] + "."
            for g in range(GLOSSES_PER_PARAGRAPH)
        )
        for p in range(count)
    ]


def swapped(paragraph: str) -> str:
    """The paragraph with its two longest different words swapped: same characters, same pieces."""
    words = paragraph.split(" ")
    order = sorted(range(len(words)), key=lambda i: -len(words[i]))
    first = order[0]
    second = next(i for i in order[1:] if words[i] != words[first])
    words[first], words[second] = words[second], words[first]
    return " ".join(words)


def upserts(client: Client, args: argparse.Namespace) -> None:
    client.create_kb("long")
    middle = args.paragraphs // 2
    documents = [
        paragraphs_of(d, args.paragraphs, len(corpus.glosses()) // 3) for d in range(args.long)
    ]
    windows = 0
    for d, paragraphs in enumerate(documents):
        (item,) = client.add_documents("long", [{"id": f"l{d}", "text": "\n\n".join(paragraphs)}])
        windows += item["chunks"]
    print(
        f"upsert of {args.long} documents of {args.paragraphs} paragraphs ({windows} windows), "
        "middle paragraph edited:"
    )
    others = paragraphs_of(args.long + 1, args.long, len(corpus.glosses()) // 3)
    edits: list[tuple[str, Callable[[list[str], int], str]]] = [
        ("same length (two words swapped)", lambda ps, d: swapped(ps[middle])),
        ("other length (paragraph replaced)", lambda ps, d: others[d]),
    ]
    for label, edit in edits:
        embedded = chunks = 0
        started = time.perf_counter()
        for d, paragraphs in enumerate(documents):
            text = "\n\n".join(
                [*paragraphs[:middle], edit(paragraphs, d), *paragraphs[middle + 1 :]]
            )
            before = misses(client)
            body = client.request("PUT", f"/v1/knowledge-bases/long/documents/l{d}", {"text": text})
            embedded += int(misses(client) - before)
            chunks += body["chunks"]
        seconds = time.perf_counter() - started
        print(
            f"  {label:33s} re-embedded {embedded:4d} of {chunks:4d} windows "
            f"({embedded / args.long:.1f} per document of {chunks / args.long:.1f}) {seconds:.2f} s"
        )


def hit_cost(service: Service, args: argparse.Namespace) -> None:
    """Per text, in this process: a `CachingEmbedder`'s hit on the service's own chunk texts."""
    from adapters.embedding.caching import CachingEmbedder
    from adapters.embedding.vector_cache import VectorCache

    class Stored:
        """Stands in for the model: the cost measured is the cache's alone."""

        model_name, fingerprint, dimension, max_seq_length, window = "m", "f" * 64, 384, 256, 254

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 384), np.float32) / np.sqrt(384)

        def token_offsets(self, text: str) -> list[tuple[int, int]]:
            return []

    for label, texts in (
        ("short texts", corpus.short_texts(args.documents)),
        ("window-sized texts", ["\n\n".join(paragraphs_of(d, 4, 0)) for d in range(2000)]),
    ):
        embedder = CachingEmbedder(Stored(), VectorCache(256 * 2**20))  # type: ignore[arg-type]
        batches = [texts[s : s + args.batch] for s in range(0, len(texts), args.batch)]
        miss = timed_embed(embedder, batches)
        hit = min(timed_embed(embedder, batches) for _ in range(3))
        chars = sum(map(len, texts)) / len(texts)
        label = f"{label} ({chars:.0f} chars)"
        print(
            f"  cache hit, {label:30s} {hit / len(texts) * 1e6:6.2f} us per text "
            f"(a miss's bookkeeping {miss / len(texts) * 1e6:.2f} us)"
        )


def timed_embed(embedder: Any, batches: list[list[str]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        embedder.embed(batch)
    return time.perf_counter() - started


def model_overhead(service: Service, args: argparse.Namespace) -> None:
    """In this process, the real model with and without a cold cache in front, interleaved."""
    from adapters.embedding.caching import CachingEmbedder
    from adapters.embedding.vector_cache import VectorCache
    from entrypoints.container import make_embedder

    model = make_embedder("auto", service.model or "", "cpu", 32, None)
    texts = corpus.query_texts(200 + args.fresh)[200:]
    batches = [texts[s : s + 100] for s in range(0, len(texts), 100)]
    model.embed(batches[0])  # warm-up
    ratios, times = [], {"cache": 0.0, "no cache": 0.0}
    for batch in batches:  # A B B A on every batch: both arms see the same load
        pair = {"cache": 0.0, "no cache": 0.0}
        for label in ("cache", "no cache", "no cache", "cache"):
            cold = CachingEmbedder(model, VectorCache(256 * 2**20))  # every text misses
            pair[label] += timed_embed(cold if label == "cache" else model, [batch])
        ratios.append(pair["cache"] / pair["no cache"])
        times = {label: times[label] + pair[label] for label in times}
    count = 2 * len(texts)
    print(
        f"miss-only embedding in process, {len(texts)} new texts x 2 per arm, A B B A on each "
        f"batch of 100: {count / times['cache']:.0f} vs {count / times['no cache']:.0f} texts/s; "
        f"with cache / without = {times['cache'] / times['no cache']:.3f} in all, "
        f"{statistics.median(ratios):.3f} median of the batches"
    )


def miss_overhead(cached: Service, args: argparse.Namespace, plain: Service) -> None:
    """Over HTTP: fresh documents into the service with a cache and the one without."""
    rounds = 4
    pool = corpus.query_texts(200 + 2 * rounds * args.fresh)[200 + args.fresh :]
    times: dict[str, list[float]] = {"cache": [], "no cache": []}
    for r in range(rounds):
        texts = pool[r * args.fresh : (r + 1) * args.fresh]  # the same new texts for both
        order = [("cache", cached), ("no cache", plain)]
        for label, service in order if r % 2 == 0 else order[::-1]:
            name = f"fresh-{r}"
            times[label].append(timed_import(service.client(), name, texts, args.batch))
    ratio = sum(times["cache"]) / sum(times["no cache"])
    ratios = [a / b for a, b in zip(times["cache"], times["no cache"])]
    print(f"miss-only ingest over HTTP, {args.fresh} new documents per run, A B B A ...:")
    for label, values in times.items():
        print(f"  {label:8s} " + "  ".join(f"{v:.2f} s" for v in values))
    print(
        f"  with cache / without = {ratio:.3f} in all, {statistics.median(ratios):.3f} median of "
        "the rounds (" + " ".join(f"{r:.3f}" for r in ratios) + ")"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_arguments(parser)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--long", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=36)
    parser.add_argument("--fresh", type=int, default=2000)
    parser.add_argument(
        "--embedding-cache-mb", type=int, default=256, help="KB_EMBEDDING_CACHE_MB (256)"
    )
    args = parser.parse_args(argv)
    print(f"# {load_note()}")
    with ExitStack() as stack:
        service = stack.enter_context(service_from_args(args))
        client = service.client()
        bound = client.info().get("embedding_cache_mb")
        print(f"# {service.describe()}; KB_EMBEDDING_CACHE_MB={bound}")
        reimport(client, args)
        upserts(client, args)
        hit_cost(service, args)
        if args.fresh and service.model is not None:
            model_overhead(service, args)
            plain = stack.enter_context(_plain_service(service, args))
            miss_overhead(service, args, plain)
    print(f"# {load_note()}")
    return 0


def _plain_service(like: Service, args: argparse.Namespace) -> AbstractContextManager[Service]:
    return start_service(
        like.model or "",
        threads=args.threads,
        backend=args.backend,
        extra_env={"KB_EMBEDDING_CACHE_MB": "0"},
    )


if __name__ == "__main__":
    sys.exit(main())

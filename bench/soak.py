"""Soak: concurrent clients add, delete and search for a fixed time; then nothing may be amiss.

    python -m bench.soak [--seconds 60] [--clients 32] [--url URL | --model FOLDER] [--json]

Each client owns its document ids (`c<client>-<n>`), so the documents that must exist at the
end are exactly the union of what each client was told was added (201) minus what it was
told was deleted (204/200). Mix per request: 50% add a batch of 1-4 documents, 15% delete one
of its documents, 5% bulk-delete two, 30% search. Afterwards:

1. zero errors: every request got its 2xx (a refused, failed or timed-out request counts);
2. listing the knowledge base yields every acknowledged document exactly once, and nothing else;
3. `document_count` equals the listed count, and `chunk_count` the sum of their chunks;
4. for a sample of the remaining documents, a search with the document's own text finds it
   first with a score of about 1: the index agrees with the documents.

Prints p50/p99 latency per operation and overall, then one JSON line (`--json`: only that).
Exit status 0 only when every check holds. Loopback only, bounded by --seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.service import (
    BenchError,
    Client,
    add_service_arguments,
    format_table,
    percentile,
    service_from_args,
)

WORDS = (  # noqa: SIM905 - a sentence of words reads better than a list of 72 strings
    "river mountain city garden winter summer music letter window market teacher doctor "
    "engine bridge forest ocean kitchen library station village harbor island valley desert "
    "storm cloud candle mirror ladder blanket pencil camera guitar violin bicycle rocket "
    "planet comet castle tower museum theater bakery factory farmer pilot sailor painter "
    "quietly bright ancient narrow heavy gentle rapid silent golden frozen hidden broken "
    "builds carries finds paints watches follows opens closes writes reads sings dreams"
).split()
SCORE_OF_ITSELF = 0.999


@dataclass
class Tally:
    """One client's acknowledged documents, latencies per operation, and errors."""

    alive: set[str] = field(default_factory=set)
    texts: dict[str, str] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    made: int = 0


def sentence(rng: random.Random, doc_id: str) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
    return f"{doc_id}: {words}."  # the id makes every text unique


Request = tuple[str, str, str, Any]  # operation, method, path, body


def next_request(rng: random.Random, tally: Tally, base: str, number: int) -> Request:
    """Half adds, a fifth deletes of this client's own documents, the rest searches."""
    roll, owned = rng.random(), sorted(tally.alive)
    if roll < 0.5 or not owned:
        docs = []
        for _ in range(rng.randint(1, 4)):
            tally.made += 1
            doc_id = f"c{number}-{tally.made}"
            docs.append({"id": doc_id, "text": sentence(rng, doc_id)})
        return "add", "POST", f"{base}/documents", {"documents": docs}
    if roll < 0.65:
        return "delete", "DELETE", f"{base}/documents/{rng.choice(owned)}", None
    if roll < 0.7:
        victims = rng.sample(owned, min(2, len(owned)))
        return "bulk-delete", "POST", f"{base}/documents/delete", {"ids": victims}
    query = " ".join(rng.choice(WORDS) for _ in range(6))
    return "search", "POST", f"{base}/search", {"query": query}


def record(tally: Tally, request: Request, status: int, answer: Any) -> None:
    """Remember what the service acknowledged; anything but a 2xx is an error."""
    op, _, path, body = request
    if status not in (200, 201, 204):
        tally.errors.append(f"{op} {path} -> {status}: {str(answer)[:200]}")
    elif op == "add":
        for doc in body["documents"]:
            tally.alive.add(doc["id"])
            tally.texts[doc["id"]] = doc["text"]
    elif op == "delete":
        tally.alive.discard(path.rsplit("/", 1)[1])
    elif op == "bulk-delete":
        tally.alive.difference_update(answer["deleted"])


def run_client(client: Client, kb: str, number: int, deadline: float, seed: int) -> Tally:
    rng, tally = random.Random(seed * 1000 + number), Tally()
    while time.monotonic() < deadline:
        request = next_request(rng, tally, f"/v1/knowledge-bases/{kb}", number)
        op, method, path, body = request
        started = time.perf_counter()
        try:
            status, answer = client.call(method, path, body)
        except BenchError as error:
            tally.errors.append(f"{op}: {error}")
            continue
        tally.latencies[op].append(time.perf_counter() - started)
        record(tally, request, status, answer)
    client.close()
    return tally


def listed_documents(client: Client, kb: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = client.request("GET", f"/v1/knowledge-bases/{kb}/documents{query}")
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def verify(client: Client, kb: str, tallies: list[Tally], sample: int, seed: int) -> list[str]:
    """What is wrong with the knowledge base after the soak; empty when everything agrees."""
    problems: list[str] = []
    expected = set().union(*(t.alive for t in tallies))
    texts = {k: v for t in tallies for k, v in t.texts.items()}
    listed = listed_documents(client, kb)
    ids = [doc["id"] for doc in listed]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} document(s) listed more than once")
    if missing := expected - set(ids):
        problems.append(
            f"{len(missing)} acknowledged document(s) missing, e.g. {sorted(missing)[:5]}"
        )
    if extra := set(ids) - expected:
        problems.append(f"{len(extra)} deleted or unknown document(s) listed: {sorted(extra)[:5]}")
    stats = client.request("GET", f"/v1/knowledge-bases/{kb}")
    if stats["document_count"] != len(ids):
        problems.append(f"document_count {stats['document_count']} != {len(ids)} listed")
    if stats["chunk_count"] != sum(doc["chunks"] for doc in listed):
        problems.append(f"chunk_count {stats['chunk_count']} != the listed documents' chunks")
    chosen = random.Random(seed).sample(sorted(expected & set(ids)), min(sample, len(expected)))
    for doc_id in chosen:
        hits = client.search(kb, query=texts[doc_id], top_k=3)
        if not hits or hits[0]["id"] != doc_id or hits[0]["score"] < SCORE_OF_ITSELF:
            first = hits[0] if hits else None
            problems.append(f"searching {doc_id}'s own text found {first and first['id']} first")
    return problems


def soak(client: Client, seconds: float, clients: int, sample: int, seed: int) -> dict[str, Any]:
    kb = f"soak-{uuid.uuid4().hex[:8]}"
    client.create_kb(kb)
    deadline = time.monotonic() + seconds
    tallies: list[Tally] = [Tally() for _ in range(clients)]

    def work(number: int) -> None:
        tallies[number] = run_client(Client(client.base_url), kb, number, deadline, seed)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    problems = verify(client, kb, tallies, sample, seed)
    client.delete_kb(kb)
    latencies: dict[str, list[float]] = defaultdict(list)
    for tally in tallies:
        for op, values in tally.latencies.items():
            latencies[op].extend(values)
    every = [value for values in latencies.values() for value in values]
    errors = [error for tally in tallies for error in tally.errors]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        "errors": len(errors),
        "first_errors": errors[:5],
        "documents_left": len(set().union(*(t.alive for t in tallies))),
        "problems": problems,
        "ok": not errors and not problems,
        "latency_ms": {
            op: {"count": len(v), "p50": ms(percentile(v, 50)), "p99": ms(percentile(v, 99))}
            for op, v in sorted({**latencies, "all": every}.items())
        },
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    add_service_arguments(parser, threads=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to soak (60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--sample", type=int, default=200, help="documents searched by own text")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the request mix")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    try:
        with service_from_args(args) as service:
            result = soak(service.client(), args.seconds, args.clients, args.sample, args.seed)
    except BenchError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    if not args.json:
        rows = [[op, v["count"], v["p50"], v["p99"]] for op, v in result["latency_ms"].items()]
        print(format_table(["operation", "requests", "p50 ms", "p99 ms"], rows, "latency"))
        print(
            f"{result['requests']} requests in {result['seconds']} s from {args.clients} clients, "
            f"{result['errors']} errors, {result['documents_left']} documents left"
        )
        for line in result["first_errors"] + result["problems"]:
            print(f"  ! {line}")
        print("OK" if result["ok"] else "FAILED")
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

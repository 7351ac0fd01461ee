"""What the largest allowed filters cost each backend: one pass over every document's metadata.

    python -m bench.filters [--documents 20000] [--backend memory|postgres|both] [--repeat 3]

Stores N documents (one chunk each, metadata {"n": i, "tag": [...], "lang": ...}) in the
repository adapters directly (no model, no HTTP: the filter is the only work), then times
`chunk_ids_matching` (what a filtered search does first) for filters at each of the domain's
limits (MAX_FILTER_DEPTH, MAX_FILTER_CLAUSES, MAX_FILTER_VALUES) and a one-key filter for
scale, best of --repeat. PostgreSQL is KB_DATABASE_URL, else a private pgserver for the run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.service import format_table, private_database
from domain.filters import (
    MAX_FILTER_CLAUSES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_VALUES,
    Filter,
    parse_filter,
)
from domain.model import Chunk, Document, KnowledgeBase, Span
from domain.ports import DocumentRepository


def filters() -> dict[str, dict[str, Any]]:
    deepest: dict[str, Any] = {"n": {"$in": [1, 2]}}
    for level in range(MAX_FILTER_DEPTH - 2):
        deepest = {("$and", "$or")[level % 2]: [deepest]}
    return {
        "one key": {"lang": "en"},
        f"{MAX_FILTER_DEPTH} objects deep": deepest,
        f"$or of {MAX_FILTER_CLAUSES - 1} equalities": {
            "$or": [{"n": -i} for i in range(1, MAX_FILTER_CLAUSES)]
        },
        f"$or of {MAX_FILTER_CLAUSES - 1} ranges": {
            "$or": [{"n": {"$lt": -i}} for i in range(1, MAX_FILTER_CLAUSES)]
        },
        f"$in of {MAX_FILTER_VALUES} values": {
            "n": {"$in": [-i for i in range(1, MAX_FILTER_VALUES + 1)]}
        },
        f"$nin of {MAX_FILTER_VALUES} on a list": {
            "tag": {"$nin": [f"t{-i}" for i in range(1, MAX_FILTER_VALUES + 1)]}
        },
    }


def documents(count: int) -> list[Document]:
    now = datetime.now(UTC)
    return [
        Document(
            f"d{i:07d}",
            "text",
            {"n": i, "tag": [f"t{i % 100}", "all"], "lang": "en" if i % 2 else "fr"},
            now,
            now,
            (Chunk(i + 1, Span(0, 4)),),
        )
        for i in range(count)
    ]


@contextmanager
def repository(backend: str, count: int) -> Iterator[DocumentRepository]:
    kb = KnowledgeBase(name="bench", model="none", dimension=8, created_at=datetime.now(UTC))
    docs = documents(count)
    if backend == "memory":
        from adapters.memory.repository import InMemoryDocumentRepository

        memory = InMemoryDocumentRepository()
        memory.add_knowledge_base(kb)
        memory.add_documents("bench", docs, np.zeros((count, 8), np.float32))
        yield memory
        return
    from adapters.postgres.database import PostgresDatabase
    from adapters.postgres.repository import PostgresDocumentRepository

    with tempfile.TemporaryDirectory() as folder, _database_url(Path(folder)) as url:
        database = PostgresDatabase(url, pool_size=2)
        try:
            postgres = PostgresDocumentRepository(database)
            postgres.add_knowledge_base(kb)
            for start in range(0, count, 5000):
                batch = docs[start : start + 5000]
                postgres.add_documents("bench", batch, np.zeros((len(batch), 8), np.float32))
            yield postgres
        finally:
            database.close()


@contextmanager
def _database_url(folder: Path) -> Iterator[str]:
    if os.environ.get("KB_DATABASE_URL"):
        yield os.environ["KB_DATABASE_URL"]
    else:
        with private_database(folder, quiet=True) as url:
            yield url


def best_of(repeat: int, store: DocumentRepository, where: Filter) -> tuple[float, int]:
    """The fastest of `repeat` passes (seconds) and how many chunks matched."""
    times, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = len(store.chunk_ids_matching("bench", where))
        times.append(time.perf_counter() - start)
    return min(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--backend", choices=["memory", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = ["memory", "postgres"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        with repository(backend, args.documents) as store:
            for name, spec in filters().items():
                where = parse_filter(spec)
                seconds, found = best_of(args.repeat, store, where)
                rows.append([backend, name, found, f"{seconds * 1000:.0f}"])
    title = f"filters over {args.documents} documents (best of {args.repeat})"
    print(format_table(["backend", "filter", "matches", "ms"], rows, title))


if __name__ == "__main__":
    main()

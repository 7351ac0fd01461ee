"""Start-up of the FTS5 keyword index kept in a file: taking it back against rebuilding it.

    python -m bench.keyword_resume [--documents 1000000] [--changed 0.01] [--folder DIR]

Builds a kept file of `--documents` short texts (12 words of a 50,000-word vocabulary, in
batches of 1,000) as a running service would, and closes it. Then, each time from a copy of
that file, it times what a start does with it: `resume` over every (id, content hash) in id
order, then adding the texts it asks for; with nothing changed, and with `--changed` of the
documents touched while the service was down (half of them changed, a quarter removed, a quarter
new). The full rebuild a start did before (indexing every text) is the build's own time. The
file is kept in `--folder` (a temporary folder by default) for the length of the run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
from bench.service import format_table, load_note
from domain.digests import content_hash

BATCH = 1000
WORDS = [f"w{n}" for n in range(50_000)]


def text(number: int, version: str = "") -> str:
    return " ".join(random.Random(f"{number}{version}").choices(WORDS, k=12))


class Store:
    """The documents as the store holds them, texts and content hashes ready in RAM (as the
    SQLite repository's records hold hashes), so that only the index is timed."""

    def __init__(self, documents: int, changed: float) -> None:
        self.ids = [f"doc-{n:08d}" for n in range(documents)]
        self.texts = [text(n) for n in range(documents)]
        self.hashes = [content_hash(t) for t in self.texts]
        touched = int(documents * changed)
        step = max(1, documents // max(1, touched))
        picked = list(range(0, documents, step))[:touched]
        self.changed = {n: text(n, "changed") for n in picked[: touched // 2]}
        self.removed = set(picked[touched // 2 : touched * 3 // 4])
        count = touched - len(self.changed) - len(self.removed)
        self.new = {f"new-{n:08d}": text(-n - 1) for n in range(count)}
        self.after = [
            (doc_id, content_hash(self.changed[n]) if n in self.changed else self.hashes[n])
            for n, doc_id in enumerate(self.ids)
            if n not in self.removed
        ] + [(doc_id, content_hash(body)) for doc_id, body in self.new.items()]

    def digests(self, after_changes: bool) -> Iterator[tuple[str, str]]:
        """(id, content hash) in id order: "doc-..." sorts before "new-..."."""
        return iter(self.after) if after_changes else zip(self.ids, self.hashes, strict=True)

    def text_of(self, doc_id: str) -> str:
        if doc_id in self.new:
            return self.new[doc_id]
        return self.changed[int(doc_id[4:])]


def build(path: Path, store: Store) -> float:
    started = time.perf_counter()
    index = Fts5KeywordIndex(path)
    index.resume(iter([]))
    for first in range(0, len(store.ids), BATCH):
        batch = store.ids[first : first + BATCH]
        index.add(list(zip(batch, store.texts[first : first + BATCH], strict=True)))
    index.close()
    return time.perf_counter() - started


def start(path: Path, pristine: Path, store: Store, after_changes: bool) -> list[str]:
    """One start from a copy of the built file: a row of the table."""
    shutil.copy(pristine, path)
    started = time.perf_counter()
    index = Fts5KeywordIndex(path)
    lacking = index.resume(store.digests(after_changes))
    resumed = time.perf_counter() - started
    if lacking is None:
        raise SystemExit("the kept file was not taken back")
    for first in range(0, len(lacking), BATCH):
        index.add([(doc_id, store.text_of(doc_id)) for doc_id in lacking[first : first + BATCH]])
    total = time.perf_counter() - started
    held = len(index)
    index.close()
    label = "changed while down" if after_changes else "nothing changed"
    return [label, f"{resumed:.2f}", str(len(lacking)), f"{total:.2f}", str(held)]


def run(args: argparse.Namespace) -> int:
    store = Store(args.documents, args.changed)
    loads = [load_note()]
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        pristine, path = Path(folder) / "built.fts", Path(folder) / "kb.1.fts"
        built = build(pristine, store)
        size = pristine.stat().st_size / 1e6
        rows = [start(path, pristine, store, changes) for changes in (False, True)]
    loads.append(load_note())
    rows.append(["full rebuild (the build)", "-", str(args.documents), f"{built:.2f}", "-"])
    headers = ["start", "resume s", "texts added", "total s", "documents"]
    title = f"FTS5 keyword index kept in a file: {args.documents} documents, {size:.0f} MB file"
    print(format_table(headers, rows, title))
    print(f"  load at the start: {loads[0]}; at the end: {loads[1]}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.keyword_resume", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--documents", type=int, default=1_000_000, help="documents (1000000)")
    parser.add_argument(
        "--changed", type=float, default=0.01, help="share touched while down (0.01)"
    )
    parser.add_argument("--folder", help="where the file is built (a temporary folder)")
    args = parser.parse_args(argv)
    if args.documents < 1 or not 0 <= args.changed <= 1:
        parser.error("--documents must be at least 1 and --changed within 0..1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

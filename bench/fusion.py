"""Which fusion makes hybrid search help keyword queries without hurting questions.

    python -m bench.fusion DATA_DIR [DATA_DIR...] [--model FOLDER] [--against main]

For each BEIR folder (bench/beir.py) it embeds the corpus and the judged queries once with the
model, as MTEB's truncate protocol does (each text cut at the model's max_seq_length, cosine
of unit vectors, every document compared), fills this checkout's FTS5 keyword index
(src/adapters/sqlite/fts_keyword_index.py, stop words left out of the query) and the same file
of git revision `--against` (default `main`: "today's" index, stop words looked up), and ranks
every query's top 100 in several ways, printing nDCG@10 (bench/metrics.py, trec_eval's rules):

- `dense`: cosine only, what `"mode": "dense"` returns;
- `today rrf`: `--against`'s index fused by reciprocal rank fusion, w = 0.5, k = 60;
- `rrf, no stop words`: the same fusion over this checkout's index;
- `minmax w` and `z w`: convex combinations (1 - w) * dense + w * BM25, both min-max or
  z-normalised over the candidates (a document without a keyword match has BM25 0);
- `rrf gap w`: reciprocal rank fusion whose keyword weight shrinks with a flat keyword list,
  w * (s1 - s2) / s1 (s1, s2: the two best BM25 scores);
- `score w` (`"fusion": "score"`, domain/fusion.py, what hybrid search does now):
  (1 - w) * cosine + w * coverage ** 4, coverage the IDF-weighted share of the query's words
  a document holds; `score 0.3` is the default.

The candidates of a query are its dense top 200 and keyword top 201, as a hybrid search of
top_k 100 gathers them (domain/ranking.py). docs/search.md holds the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import beir, metrics
from bench.keywords import index_class
from bench.service import default_model
from domain.fusion import coverage, fuse

POOL = 200
TOP_K = 100


@dataclass(frozen=True)
class Query:
    """One query's candidates: dense (id, cosine) best first, keyword (id, BM25) of both
    indexes, every candidate's cosine, and this checkout's coverage of its keyword hits."""

    dense: list[tuple[str, float]]
    today: list[tuple[str, float]]
    keyword: list[tuple[str, float]]
    cosines: dict[str, float]
    covered: dict[str, float]


Ranking = Callable[[Query], Mapping[str, float]]


def prepare(dataset: beir.Dataset, encode: Callable[[list[str]], Any], against: str) -> list[Query]:
    ids = [doc.id for doc in dataset.corpus]
    texts = [doc.full_text for doc in dataset.corpus]
    documents = np.asarray(encode(texts))
    queries = list(dataset.queries.values())
    similarities = np.asarray(encode(queries)) @ documents.T
    today, current = index_class(against)(), index_class(None)()
    for index in (today, current):
        index.add(list(zip(ids, texts)))
    prepared = []
    for text, row in zip(queries, similarities):
        order = np.argsort(-row, kind="stable")
        keyword = current.search(text, POOL + 1)
        matches = current.term_matches(text, [doc_id for doc_id, _ in keyword])
        prepared.append(
            Query(
                dense=[(ids[i], float(row[i])) for i in order[:POOL]],
                today=today.search(text, POOL + 1),
                keyword=keyword,
                cosines={ids[i]: float(row[i]) for i in range(len(ids))},
                covered=coverage(matches),
            )
        )
    return prepared


def rrf(keyword_of: Callable[[Query], list[tuple[str, float]]], weight: float) -> Ranking:
    def rank(query: Query) -> Mapping[str, float]:
        fused = fuse(query.dense, keyword_of(query), query.cosines, {}, "rrf", weight, 60)
        return {doc_id: why.fused or 0.0 for doc_id, why in fused}

    return rank


def score_fusion(weight: float) -> Ranking:
    def rank(query: Query) -> Mapping[str, float]:
        fused = fuse(query.dense, query.keyword, query.cosines, query.covered, "score", weight, 60)
        return {doc_id: why.fused or 0.0 for doc_id, why in fused}

    return rank


def convex(weight: float, normalise: Callable[[np.ndarray], np.ndarray]) -> Ranking:
    def rank(query: Query) -> Mapping[str, float]:
        candidates = list(
            dict.fromkeys([d for d, _ in query.dense] + [d for d, _ in query.keyword])
        )
        bm25 = dict(query.keyword)
        dense = normalise(np.array([query.cosines[d] for d in candidates]))
        words = normalise(np.array([bm25.get(d, 0.0) for d in candidates]))
        return dict(zip(candidates, ((1 - weight) * dense + weight * words).tolist()))

    return rank


def gap_rrf(weight: float) -> Ranking:
    def rank(query: Query) -> Mapping[str, float]:
        scores = [s for _, s in query.keyword[:2]] + [0.0, 0.0]
        flatness = (scores[0] - scores[1]) / scores[0] if scores[0] > 0 else 0.0
        return rrf(lambda q: q.keyword, weight * flatness)(query)

    return rank


def min_max(values: np.ndarray) -> np.ndarray:
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def z_score(values: np.ndarray) -> np.ndarray:
    deviation = float(values.std()) if len(values) else 0.0
    return (values - values.mean()) / deviation if deviation > 0 else np.zeros_like(values)


RANKINGS: dict[str, Ranking] = {
    "dense": lambda query: dict(query.dense),
    "today rrf": rrf(lambda query: query.today, 0.5),
    "rrf, no stop words": rrf(lambda query: query.keyword, 0.5),
    **{f"minmax {w}": convex(w, min_max) for w in (0.2, 0.3, 0.5)},
    **{f"z {w}": convex(w, z_score) for w in (0.2, 0.3, 0.5)},
    **{f"rrf gap {w}": gap_rrf(w) for w in (0.5, 1.0)},
    **{f"score {w}": score_fusion(w) for w in (0.2, 0.3, 0.4, 0.5)},
}


def ndcg(dataset: beir.Dataset, queries: Sequence[Query], ranking: Ranking) -> float:
    run = {}
    for query_id, query in zip(dataset.queries, queries):
        ordered = sorted(ranking(query).items(), key=lambda item: (-item[1], item[0]))[:TOP_K]
        # Scores by rank: trec_eval sorts by score, and ties must not reorder the list.
        run[query_id] = {doc_id: float(TOP_K - rank) for rank, (doc_id, _) in enumerate(ordered)}
    return float(metrics.evaluate(dataset.qrels, run, k_values=(10,))["NDCG@10"])


def encoder(model: str) -> Callable[[list[str]], Any]:
    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(model, device="cpu")

    def encode(texts: list[str]) -> Any:
        return loaded.encode(texts, batch_size=32, normalize_embeddings=True)

    return encode


def run(args: argparse.Namespace, encode: Callable[[list[str]], Any] | None = None) -> str:
    encode = encode or encoder(args.model or default_model())
    datasets = [beir.load(folder) for folder in args.data]
    columns = [(d, prepare(d, encode, args.against)) for d in datasets]
    lines = [f"{'nDCG@10':<20}" + "".join(f"  {d.name:>12}" for d in datasets)]
    for name, ranking in RANKINGS.items():
        values = "".join(f"  {ndcg(d, queries, ranking):>12.5f}" for d, queries in columns)
        lines.append(f"{name:<20}{values}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fusion", description=__doc__)
    parser.add_argument("data", nargs="+", type=Path, help="BEIR folders")
    parser.add_argument("--model", help="model folder or hub name (default: the test model)")
    parser.add_argument("--against", default="main", help="git revision of today's index")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    print(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

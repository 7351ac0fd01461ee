"""Retrieval metrics computed by trec_eval's rules, as pytrec_eval and MTEB compute them.

Only the standard library: the benchmark must not need a compiled trec_eval to run.
`tests/unit/test_metrics.py` checks these numbers against pytrec_eval when it is installed,
and against a hand-worked example always.

The rules (trec_eval 9.x, `ndcg_cut`, `recall`, `map_cut`):

- A query's run is ranked by score, highest first; equal scores are ordered by document
  id *descending* (trec_eval sorts by `strcmp(docno2, docno1)`).
- A document is relevant when its qrels grade is > 0 (trec_eval's relevance_level 1 on
  integer grades). Documents absent from the qrels have grade 0.
- nDCG@k: DCG = sum over ranks r = 1..k of grade / log2(r + 1) (linear gain: the grade
  itself, as trec_eval's `ndcg_cut` does by default); the ideal DCG sorts the query's
  qrels grades (> 0) descending and takes the first k. 0 when the ideal DCG is 0.
- Recall@k: relevant documents in the top k / relevant documents in the qrels.
- MAP@k (`map_cut`): the sum, over relevant documents at ranks r <= k, of precision at r,
  divided by the number of relevant documents in the qrels (not by min(k, ...)).
- Averages run over the queries that appear in the qrels (as MTEB does: pytrec_eval only
  reports queries that are in the qrels). A query with no results scores 0; MTEB never
  meets that case because it ranks the whole corpus for every query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]
"""query id -> document id -> relevance grade (int; > 0 is relevant)."""

Run = Mapping[str, Mapping[str, float]]
"""query id -> document id -> score (higher is more similar)."""

DEFAULT_K_VALUES = (10, 100)


def rank(scores: Mapping[str, float]) -> list[str]:
    """Document ids best first, by score descending then id descending (trec_eval's order)."""
    return [
        doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    ]


def ndcg_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    ideal_dcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    if ideal_dcg <= 0:
        return 0.0
    dcg = 0.0
    for r, doc in enumerate(ranking[:k]):
        grade = grades.get(doc, 0)
        if grade > 0:
            dcg += grade / math.log2(r + 2)
    return dcg / ideal_dcg


def recall_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in grades.values() if g > 0)
    if relevant == 0:
        return 0.0
    found = sum(1 for doc in ranking[:k] if grades.get(doc, 0) > 0)
    return found / relevant


def map_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in grades.values() if g > 0)
    if relevant == 0:
        return 0.0
    found = 0
    precision_sum = 0.0
    for r, doc in enumerate(ranking[:k], start=1):
        if grades.get(doc, 0) > 0:
            found += 1
            precision_sum += found / r
    return precision_sum / relevant


def per_query(
    qrels: Qrels, run: Run, k_values: Iterable[int] = DEFAULT_K_VALUES
) -> dict[str, dict[str, float]]:
    """Every qrels query's scores, keyed like MTEB: "NDCG@10", "Recall@10", "MAP@10", ..."""
    ks = sorted(set(k_values))
    if not ks or ks[0] < 1:
        raise ValueError("k values must be positive")
    results: dict[str, dict[str, float]] = {}
    for query_id, raw_grades in qrels.items():
        grades = {doc: int(g) for doc, g in raw_grades.items()}
        ranking = rank(run.get(query_id, {}))
        scores: dict[str, float] = {}
        for k in ks:
            scores[f"NDCG@{k}"] = ndcg_at(ranking, grades, k)
            scores[f"Recall@{k}"] = recall_at(ranking, grades, k)
            scores[f"MAP@{k}"] = map_at(ranking, grades, k)
        results[query_id] = scores
    return results


def evaluate(
    qrels: Qrels, run: Run, k_values: Iterable[int] = DEFAULT_K_VALUES
) -> dict[str, float]:
    """Mean of each metric over the qrels' queries (unrounded; MTEB rounds to 5 decimals)."""
    scores = per_query(qrels, run, k_values)
    if not scores:
        raise ValueError("no queries to evaluate: the qrels are empty")
    names = next(iter(scores.values())).keys()
    return {name: sum(s[name] for s in scores.values()) / len(scores) for name in names}

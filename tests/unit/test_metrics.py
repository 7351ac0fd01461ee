"""bench/metrics.py gives trec_eval's numbers: a hand-worked example, and pytrec_eval if present."""

from __future__ import annotations

import math
import random

import pytest
from bench.metrics import evaluate, per_query, rank

# The hand-worked example.
#
# q1 is judged: d1 grade 2, d2 grade 1, d5 grade 1, d3 grade 0 (judged, not relevant).
# Its run scores d1 0.9, d3 0.7, d2 0.5, d4 0.5, d5 0.1. trec_eval breaks the d2/d4 tie
# by document id *descending*, so the ranking is d1, d3, d4, d2, d5:
#
#   rank  doc  grade
#   1     d1   2
#   2     d3   0
#   3     d4   0   (not in the qrels)
#   4     d2   1
#   5     d5   1
#
# Relevant documents (grade > 0): d1, d2, d5, so 3.
# Ideal DCG (grades 2, 1, 1):  2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.6309298 + 0.5
#                             = 3.1309298 (the same for k = 3 and k = 10).
# nDCG@3  = DCG@3 / IDCG = (2/log2(2)) / 3.1309298 = 2 / 3.1309298 = 0.6387879
# nDCG@10 = (2 + 1/log2(5) + 1/log2(6)) / 3.1309298
#         = (2 + 0.4306766 + 0.3868528) / 3.1309298 = 2.8175294 / 3.1309298 = 0.8999018
# Recall@3 = 1/3 (only d1 in the top 3); Recall@10 = 3/3 = 1.
# MAP@3  = (precision at rank 1 = 1/1) / 3 = 0.3333333
# MAP@10 = (1/1 + 2/4 + 3/5) / 3 = (1 + 0.5 + 0.6) / 3 = 0.7
#
# q2 is judged (d9 grade 1) but has no results: every metric is 0.
# q3 has results but no judgements: it is not evaluated at all.
QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0, "d5": 1},
    "q2": {"d9": 1},
}
RUN = {
    "q1": {"d1": 0.9, "d2": 0.5, "d3": 0.7, "d4": 0.5, "d5": 0.1},
    "q3": {"d1": 1.0},
}
IDCG = 2 + 1 / math.log2(3) + 1 / math.log2(4)
Q1 = {
    "NDCG@3": 2 / IDCG,
    "NDCG@10": (2 + 1 / math.log2(5) + 1 / math.log2(6)) / IDCG,
    "Recall@3": 1 / 3,
    "Recall@10": 1.0,
    "MAP@3": 1 / 3,
    "MAP@10": 0.7,
}


def test_ranking_breaks_ties_by_document_id_descending() -> None:
    assert rank(RUN["q1"]) == ["d1", "d3", "d4", "d2", "d5"]


def test_hand_worked_example_per_query() -> None:
    scores = per_query(QRELS, RUN, k_values=(3, 10))
    assert set(scores) == {"q1", "q2"}
    assert scores["q1"] == pytest.approx(Q1, abs=1e-12)
    # The closed forms above, as decimals, so a wrong formula cannot hide in both places.
    assert scores["q1"]["NDCG@3"] == pytest.approx(0.6387879, abs=1e-7)
    assert scores["q1"]["NDCG@10"] == pytest.approx(0.8999018, abs=1e-7)
    assert scores["q1"]["MAP@10"] == pytest.approx(0.7, abs=1e-12)
    assert scores["q2"] == {name: 0.0 for name in Q1}


def test_hand_worked_example_means_over_judged_queries() -> None:
    means = evaluate(QRELS, RUN, k_values=(3, 10))
    assert means == pytest.approx({name: value / 2 for name, value in Q1.items()}, abs=1e-12)
    assert means["NDCG@10"] == pytest.approx(0.4499509, abs=1e-7)


def test_hand_worked_example_agrees_with_pytrec_eval() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    measures = {"ndcg_cut.3,10", "recall.3,10", "map_cut.3,10"}
    reference = pytrec_eval.RelevanceEvaluator(QRELS, measures).evaluate(RUN)["q1"]
    for k in (3, 10):
        assert reference[f"ndcg_cut_{k}"] == pytest.approx(Q1[f"NDCG@{k}"], abs=1e-12)
        assert reference[f"recall_{k}"] == pytest.approx(Q1[f"Recall@{k}"], abs=1e-12)
        assert reference[f"map_cut_{k}"] == pytest.approx(Q1[f"MAP@{k}"], abs=1e-12)


def test_only_graded_relevance_above_zero_counts() -> None:
    qrels = {"q": {"a": 0, "b": -1, "c": 3}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}
    scores = per_query(qrels, run, k_values=(10,))["q"]
    # c at rank 3 is the only relevant document: DCG = 3/log2(4) = 1.5, IDCG = 3.
    assert scores["NDCG@10"] == pytest.approx(0.5)
    assert scores["Recall@10"] == 1.0
    assert scores["MAP@10"] == pytest.approx(1 / 3)


def test_a_query_judged_without_relevant_documents_scores_zero() -> None:
    scores = per_query({"q": {"a": 0}}, {"q": {"a": 1.0}}, k_values=(10,))
    assert scores["q"] == {"NDCG@10": 0.0, "Recall@10": 0.0, "MAP@10": 0.0}


def test_map_divides_by_all_relevant_documents_not_by_k() -> None:
    qrels = {"q": {f"r{i}": 1 for i in range(5)}}
    run = {"q": {"r0": 1.0, "x": 0.5, "r1": 0.4}}
    # Hits at ranks 1 and 3: (1/1 + 2/3) / 5 relevant = 0.3333333 for MAP@10,
    # and only the first counts within k = 2: (1/1) / 5 = 0.2.
    scores = per_query(qrels, run, k_values=(2, 10))["q"]
    assert scores["MAP@10"] == pytest.approx((1 + 2 / 3) / 5)
    assert scores["MAP@2"] == pytest.approx(0.2)
    assert scores["Recall@2"] == pytest.approx(0.2)


def test_bad_k_and_empty_qrels_are_refused() -> None:
    with pytest.raises(ValueError):
        per_query(QRELS, RUN, k_values=(0, 10))
    with pytest.raises(ValueError):
        evaluate({}, RUN)


def _random_case(
    rng: random.Random,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    docs = [f"d{i:03d}" for i in range(rng.randint(1, 150))]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(rng.randint(1, 6)):
        judged = rng.sample(docs, rng.randint(1, min(len(docs), 12)))
        qrels[f"q{q}"] = {d: rng.choice((0, 0, 1, 1, 1, 2, 3)) for d in judged}
        retrieved = rng.sample(docs, rng.randint(1, len(docs)))
        # Scores rounded to one decimal place: plenty of ties, as with real cosine scores
        # that coincide, so the tie-breaking rule is exercised.
        run[f"q{q}"] = {d: round(rng.uniform(-1, 1), 1) for d in retrieved}
    return qrels, run


def test_agrees_with_pytrec_eval_on_random_rankings() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    ks = (1, 3, 10, 100)
    measures = {f"{m}.{','.join(map(str, ks))}" for m in ("ndcg_cut", "recall", "map_cut")}
    rng = random.Random(20240613)
    compared = 0
    for _ in range(200):
        qrels, run = _random_case(rng)
        reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        mine = per_query(qrels, run, k_values=ks)
        for query_id, expected in reference.items():
            for k in ks:
                for theirs, ours in (
                    ("ndcg_cut", "NDCG"),
                    ("recall", "Recall"),
                    ("map_cut", "MAP"),
                ):
                    assert mine[query_id][f"{ours}@{k}"] == pytest.approx(
                        expected[f"{theirs}_{k}"], abs=1e-12
                    ), (query_id, k, theirs, qrels[query_id], run[query_id])
                    compared += 1
    assert compared > 1000

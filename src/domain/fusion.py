"""Hybrid search's fusion of the dense and keyword rankings into one order.

`score` fusion (the default) orders by (1 - w) * cosine + w * coverage ** COVERAGE_POWER:
the keyword half counts by how much of the query a document holds (each term weighted by
BM25's inverse document frequency), so a document sharing one everyday word with a question
moves little and one holding every rare word of a keyword query moves a lot. `rrf` is the
reciprocal rank fusion hybrid search used before: (1 - w) / (k + dense rank) + w / (k + keyword
rank), which gives a weak keyword match the same pull as a strong one (docs/search.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from domain.explanation import Explanation, Signal
from domain.keywords import TermMatches

FUSIONS = ("score", "rrf")
DEFAULT_WEIGHTS = {"score": 0.3, "rrf": 0.5}  # measured: docs/search.md
# A partial match counts as coverage ** 4: half the query's weight gives 1/16 of the pull.
COVERAGE_POWER = 4


def coverage(matches: TermMatches) -> dict[str, float]:
    """The share of the query's term weight each document holds, 0 to 1.

    A term weighs its BM25 (Robertson) inverse document frequency, floored at 0, so a term in
    half the documents or more weighs nothing: such a word says nothing about which document
    is meant (and a query word that stems to a stop word, "AED" to "a", is one of them).
    """
    total = matches.documents
    weights = {
        term: max(0.0, math.log((total - count + 0.5) / (count + 0.5)))
        for term, count in matches.terms.items()
    }
    whole = sum(weights.values())
    if whole <= 0:
        return {}
    return {
        doc_id: min(1.0, sum(weights.get(term, 0.0) for term in terms) / whole)
        for doc_id, terms in matches.matched.items()
    }


def fuse(
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    cosines: Mapping[str, float],
    covered: Mapping[str, float],
    fusion: str,
    weight: float,
    rrf_k: int,
) -> list[tuple[str, Explanation]]:
    """Every candidate, best first (ties by id), with what ordered it.

    `dense` and `keyword` are (document id, score) pairs best first; `cosines` holds the cosine
    score of every candidate, also those only the keyword ranking found, which take dense
    ranks after the dense ones in cosine order; `covered` is `coverage` of the keyword hits.
    """
    dense_signals = _dense_signals(dense, keyword, cosines)
    keyword_signals = {
        doc_id: Signal(score, rank, covered.get(doc_id, 0.0))
        for rank, (doc_id, score) in enumerate(keyword, start=1)
    }
    explained = []
    for doc_id, signal in dense_signals.items():
        found = keyword_signals.get(doc_id)
        if fusion == "rrf":
            value = (1 - weight) / (rrf_k + signal.rank)
            value += weight / (rrf_k + found.rank) if found else 0.0
        else:
            strength = (found.coverage or 0.0) ** COVERAGE_POWER if found else 0.0
            value = (1 - weight) * signal.score + weight * strength
        explained.append((doc_id, Explanation(signal, found, value)))
    explained.sort(key=lambda item: (-(item[1].fused or 0.0), item[0]))
    return explained


def _dense_signals(
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    cosines: Mapping[str, float],
) -> dict[str, Signal]:
    signals = {doc_id: Signal(score, rank) for rank, (doc_id, score) in enumerate(dense, 1)}
    extra = sorted(
        (doc_id for doc_id, _ in keyword if doc_id not in signals),
        key=lambda doc_id: (-cosines[doc_id], doc_id),
    )
    for doc_id in extra:
        signals[doc_id] = Signal(cosines[doc_id], len(signals) + 1)
    return signals

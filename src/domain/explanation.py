"""Explanation: what put a search hit where it is (`"explain": true` on a search)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One ranking's view of a document: its score there and its 1-based rank.

    For the keyword ranking `coverage` is the share of the query's term weight (inverse
    document frequency) the document holds, 0 to 1; the dense signal has none.
    """

    score: float
    rank: int
    coverage: float | None = None


@dataclass(frozen=True)
class Explanation:
    """The dense signal of a hit; in hybrid search also the keyword one (None: the document
    matched no query word) and `fused`, the value the hits are ordered by (`fusion_score`)."""

    dense: Signal
    keyword: Signal | None = None
    fused: float | None = None

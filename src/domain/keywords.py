"""Reciprocal rank fusion of dense and keyword rankings; the stand-in keyword index."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from domain.errors import InvalidInputError


class NoKeywordIndex:
    """Used when the service was built without a keyword index: hybrid search is refused."""

    def __len__(self) -> int:
        return 0

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        return None

    def remove(self, document_ids: Collection[str]) -> None:
        return None

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        raise InvalidInputError(
            "hybrid search needs a keyword index, and this service was built without one",
            errors={"mode": ["hybrid is not available"]},
        )


def reciprocal_rank_fusion(
    dense: Sequence[str], keyword: Sequence[str], keyword_weight: float, k: int
) -> list[tuple[str, float]]:
    """Fuse two best-first id lists: score = (1-w)/(k+rank_dense) + w/(k+rank_keyword)."""
    fused: dict[str, float] = {}
    for rank, doc_id in enumerate(dense, start=1):
        fused[doc_id] = fused.get(doc_id, 0.0) + (1 - keyword_weight) / (k + rank)
    for rank, doc_id in enumerate(keyword, start=1):
        fused[doc_id] = fused.get(doc_id, 0.0) + keyword_weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

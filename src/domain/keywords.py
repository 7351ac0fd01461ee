"""The keyword half of hybrid search: stop words, query terms, what a keyword index reports."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from domain.errors import InvalidInputError

WORD = re.compile(r"\w+", re.UNICODE)
# PostgreSQL's `english` stop-word list (Snowball's), so both backends drop the same words:
# "where can I leave my bike?" looks up "leave" and "bike", not "can", "i" or "my".
STOP_WORDS = frozenset(
    [
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
    ]
)


# Hybrid search's coverage looks at most this many terms of a query (a "more like this" text
# may have thousands): each is one lookup in the keyword index.
MAX_MATCHED_TERMS = 64


def query_terms(text: str) -> list[str]:
    """The distinct lower-cased words of `text` that are no stop words, in order of first use."""
    words = (word.lower() for word in WORD.findall(text))
    return list(dict.fromkeys(word for word in words if word not in STOP_WORDS))


@dataclass(frozen=True)
class TermMatches:
    """Which query terms some documents hold, and in how many documents each term occurs.

    `terms` maps each of the query's terms (as the index spells them, e.g. stemmed) to its
    document frequency among `documents` indexed documents; `matched` maps a document id to
    the terms it holds. hybrid's score fusion weighs a match by how much of the query it covers.
    """

    documents: int
    terms: Mapping[str, int]
    matched: Mapping[str, frozenset[str]]


class NoKeywordIndex:
    """Used when the service was built without a keyword index: hybrid search is refused."""

    def __len__(self) -> int:
        return 0

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        return None

    def remove(self, document_ids: Collection[str]) -> None:
        return None

    def resume(self, kept: Iterable[tuple[str, str]]) -> list[str] | None:
        return []  # nothing to hold, so nothing lacks

    def discard(self) -> None:
        return None

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        raise _unavailable()

    def term_matches(self, text: str, document_ids: Collection[str]) -> TermMatches:
        raise _unavailable()


def _unavailable() -> InvalidInputError:
    return InvalidInputError(
        "hybrid search needs a keyword index, and this service was built without one",
        errors={"mode": ["hybrid is not available"]},
    )

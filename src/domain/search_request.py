"""SearchRequest: one validated query (text, document id or vector) with its options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidInputError
from domain.filters import Filter, parse_filter
from domain.fusion import DEFAULT_WEIGHTS, FUSIONS
from domain.model import DOCUMENT_ID_RULE, is_addressable

DEFAULT_TOP_K = 10
MAX_TOP_K = 1000
MAX_PROBES = 4096
DEFAULT_RRF_K = 60
MAX_RRF_K = 1000
MAX_VECTOR_LENGTH = 8192  # numbers in a query vector; no model this service runs has more
MAX_BATCH_QUERIES = 64
MODES = ("dense", "hybrid")  # by meaning only, or fused with keyword (BM25) ranking
# What a hit may carry beside its id and score; a search may ask for fewer (large documents).
HIT_FIELDS = ("text", "metadata", "passage")
# The model work one search request may cause. A query longer than a few model windows rarely
# finds better matches (its chunk vectors are averaged into one); each chunk is a model row.
MAX_QUERY_CHARS = 100_000  # the most KB_MAX_QUERY_CHARS may allow
# Chunks of all query texts of one request (a search or a batch): a 10,000-character query
# makes at most ~110 at the default overlap (one token per character), English text ~20.
MAX_QUERY_CHUNKS = 128
# Keyword (hybrid) search looks up at most this start of a query or "more like this" text:
# the cost of a keyword lookup grows with its distinct words.
MAX_KEYWORD_QUERY_CHARS = 10_000


@dataclass(frozen=True)
class SearchRequest:
    """Exactly one of `query` (text), `document_id` (more like this) or `vector`.

    `filter` is a Mongo-style metadata filter applied before ranking; `diversity` in [0, 1]
    re-ranks the best candidates by maximal marginal relevance (0: by similarity only).
    `mode="hybrid"` fuses the dense ranking with BM25 keyword ranking (domain/fusion.py):
    `fusion="score"` by cosine and keyword coverage, `"rrf"` by reciprocal rank, `rrf_k` its k;
    `keyword_weight` None takes the fusion's measured default. `explain=True` gives every hit
    an Explanation of its rank.
    `probes` trades recall for speed once a knowledge base is big enough for approximate search;
    `exact=True` scans every vector instead: the true top k at any size, slower on large ones.
    `fields` names which of HIT_FIELDS the hits carry (all by default); the others are None.
    """

    query: str | None = None
    document_id: str | None = None
    vector: Sequence[float] | None = None
    top_k: int = DEFAULT_TOP_K
    min_score: float | None = None
    filter: Mapping[str, Any] | None = None
    diversity: float = 0.0
    mode: str = MODES[0]
    keyword_weight: float | None = None
    rrf_k: int = DEFAULT_RRF_K
    fusion: str = FUSIONS[0]
    explain: bool = False
    probes: int | None = None
    exact: bool = False
    fields: Sequence[str] = HIT_FIELDS
    where: Filter | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        self._check_query()
        self._check_options()
        if self.filter is not None:
            object.__setattr__(self, "where", parse_filter(self.filter))

    def _check_query(self) -> None:
        given = [n for n in ("query", "document_id", "vector") if getattr(self, n) is not None]
        if len(given) != 1:
            _fail("_schema", "give exactly one of 'query', 'document_id' or 'vector'")
        if self.query is not None and not self.query.strip():
            _fail("query", "query must not be empty")
        if self.query is not None and "\x00" in self.query:
            _fail("query", "query must not contain NUL (\\u0000) characters")
        if self.document_id is not None and not is_addressable(self.document_id):
            _fail("document_id", DOCUMENT_ID_RULE)
        if self.vector is not None and not 1 <= len(self.vector) <= MAX_VECTOR_LENGTH:
            _fail("vector", f"vector must hold 1 to {MAX_VECTOR_LENGTH} numbers")
        if self.query is not None and len(self.query) > MAX_QUERY_CHARS:
            _fail(
                "query",
                f"query is {len(self.query)} characters: MAX_QUERY_CHARS is {MAX_QUERY_CHARS}",
            )

    def _check_options(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            _fail("top_k", f"top_k must be between 1 and {MAX_TOP_K}")
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            _fail("min_score", "min_score must be between -1 and 1")
        if not 0.0 <= self.diversity <= 1.0:
            _fail("diversity", "diversity must be between 0 and 1")
        if self.mode not in MODES:
            _fail("mode", "mode must be 'dense' or 'hybrid'")
        if self.mode == "hybrid" and self.vector is not None:
            _fail("mode", "hybrid search needs words: use 'query' or 'document_id', not 'vector'")
        if self.fusion not in FUSIONS:
            _fail("fusion", f"fusion must be one of {list(FUSIONS)}")
        if self.keyword_weight is not None and not 0.0 <= self.keyword_weight <= 1.0:
            _fail("keyword_weight", "keyword_weight must be between 0 and 1")
        if not 1 <= self.rrf_k <= MAX_RRF_K:
            _fail("rrf_k", f"rrf_k must be between 1 and {MAX_RRF_K}")
        if self.probes is not None and not 1 <= self.probes <= MAX_PROBES:
            _fail("probes", f"probes must be between 1 and {MAX_PROBES}")
        if self.exact and self.probes is not None:
            _fail("probes", "give 'probes' (approximate search) or 'exact', not both")
        unknown = [name for name in self.fields if name not in HIT_FIELDS]
        if unknown:
            _fail("fields", f"unknown hit field(s) {unknown}: choose from {list(HIT_FIELDS)}")
        object.__setattr__(self, "fields", tuple(dict.fromkeys(self.fields)))

    @property
    def weight(self) -> float:
        """The keyword weight of the fusion: as asked, or the fusion's default."""
        if self.keyword_weight is None:
            return DEFAULT_WEIGHTS[self.fusion]
        return self.keyword_weight


def _fail(name: str, message: str) -> None:
    raise InvalidInputError(message, errors={name: [message]})

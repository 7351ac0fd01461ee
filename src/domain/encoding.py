"""Chunking texts with the embedder's tokenizer and embedding the chunks in one model call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.chunking import chunk_spans
from domain.errors import InvalidInputError
from domain.layout import NO_LAYOUT
from domain.model import Chunking, Layout, Span
from domain.ports import Embedder, Vectors


@dataclass(frozen=True)
class EncodedText:
    """A text's chunk spans, one unit vector per span, and whether text was left out."""

    spans: list[Span]
    vectors: Vectors
    truncated: bool


def encode_texts(
    embedder: Embedder,
    texts: Sequence[str],
    chunking: Chunking,
    overlap: int,
    most_chunks: int | None = None,
    layouts: Sequence[Layout] | None = None,
) -> list[EncodedText]:
    """Chunk every text and embed all chunks of all texts in a single `embed` call.

    With `most_chunks` (the query texts of one search request: MAX_QUERY_CHUNKS), texts
    making more chunks in all are refused before anything is embedded. `layouts` (one per
    text) lets windows end where sections and pages begin (`chunk_spans`).
    """
    structure = [NO_LAYOUT] * len(texts) if layouts is None else layouts
    plans = [
        chunk_spans(
            embedder.token_offsets(text),
            len(text),
            embedder.window,
            overlap,
            chunking,
            layout.boundaries(),
        )
        for text, layout in zip(texts, structure, strict=True)
    ]
    chunks = sum(len(spans) for spans, _ in plans)
    if most_chunks is not None and chunks > most_chunks:
        message = f"MAX_QUERY_CHUNKS is {most_chunks}"
        raise InvalidInputError(
            f"the query text makes {chunks} chunks of {embedder.window} tokens: {message}; "
            "shorten it (or split the batch)",
            errors={"query": [message]},
        )
    # A truncated text goes to the model whole: the model cuts it at its own limit, token for
    # token as MTEB's protocol does, instead of re-tokenising a cut string.
    pieces = [
        text if truncated else text[span.start : span.end]
        for text, (spans, truncated) in zip(texts, plans)
        for span in spans
    ]
    matrix = embedder.embed(pieces) if pieces else np.zeros((0, embedder.dimension), np.float32)
    encoded: list[EncodedText] = []
    row = 0
    for spans, truncated in plans:
        encoded.append(EncodedText(spans, matrix[row : row + len(spans)], truncated))
        row += len(spans)
    return encoded


def mean_direction(vectors: NDArray[np.floating[Any]]) -> Vectors:
    """The re-normalised mean of unit vectors: one query vector for several chunks."""
    mean: NDArray[np.float64] = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    # Scale by the largest entry first: the sum of squares of huge finite values overflows.
    largest = float(np.max(np.abs(mean))) if mean.size else 0.0
    if not np.isfinite(largest) or largest == 0.0:
        raise InvalidInputError(
            "the query has no direction (zero vector)", errors={"vector": ["zero norm"]}
        )
    mean = mean / largest
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        raise InvalidInputError(
            "the query has no direction (zero vector)", errors={"vector": ["zero norm"]}
        )
    direction: Vectors = (mean / norm).astype(np.float32)
    return direction


def vector_query(values: Sequence[float], dimension: int) -> Vectors:
    """Validate a raw query vector and return it normalised to unit length."""
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (dimension,):
        raise InvalidInputError(
            f"vector must have {dimension} numbers, got {vector.size}",
            errors={"vector": [f"expected length {dimension}"]},
        )
    if not np.all(np.isfinite(vector)):
        raise InvalidInputError(
            "vector must hold finite numbers", errors={"vector": ["not finite"]}
        )
    return mean_direction(vector[np.newaxis, :])

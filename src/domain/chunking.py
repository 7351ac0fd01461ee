"""Splitting a text into the token windows the model can see, as character spans."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import InvalidInputError
from domain.model import Chunking, Span


def chunk_spans(
    offsets: Sequence[tuple[int, int]],
    text_length: int,
    window: int,
    overlap: int,
    chunking: Chunking = Chunking.WINDOW,
) -> tuple[list[Span], bool]:
    """Return the chunk spans of a text and whether anything was left out.

    `offsets` are the character ranges of the text's word pieces. A text that fits the
    window is one span covering all of it. Otherwise `WINDOW` yields windows of `window`
    pieces overlapping by `overlap` pieces, the first starting at character 0 and the last
    ending at the end of the text, so that together they cover every character;
    `TRUNCATE` yields only the first window and reports the text as truncated.
    """
    if window < 1:
        raise ValueError("window must be at least one token")
    count = len(offsets)
    if count == 0:
        raise InvalidInputError(
            "text contains nothing the model can read", errors={"text": ["no tokens"]}
        )
    if count <= window:
        return [Span(0, text_length)], False
    if chunking is Chunking.TRUNCATE:
        return [Span(0, offsets[window - 1][1])], True
    stride = window - min(max(overlap, 0), window - 1)
    spans: list[Span] = []
    start = 0
    while True:
        end = min(start + window, count)
        first = 0 if start == 0 else offsets[start][0]
        last = text_length if end == count else offsets[end - 1][1]
        spans.append(Span(first, last))
        if end == count:
            return spans, False
        start += stride

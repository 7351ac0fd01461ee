"""Splitting a text into the token windows the model can see, as character spans."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from domain.errors import InvalidInputError
from domain.model import Chunking, Span

# A window with a section or page start in its last NEAR_END of `window` pieces ends there, and
# the next window begins there: a chunk holds one topic rather than the tail of one and the
# head of the next (a heading belongs with the text it heads).
NEAR_END = 0.3


def chunk_spans(
    offsets: Sequence[tuple[int, int]],
    text_length: int,
    window: int,
    overlap: int,
    chunking: Chunking = Chunking.WINDOW,
    boundaries: Sequence[int] = (),
) -> tuple[list[Span], bool]:
    """Return the chunk spans of a text and whether anything was left out.

    `offsets` are the character ranges of the text's word pieces. A text that fits the
    window is one span covering all of it. Otherwise `WINDOW` yields windows of `window`
    pieces overlapping by `overlap` pieces, the first starting at character 0 and the last
    ending at the end of the text, so that together they cover every character;
    `TRUNCATE` yields only the first window and reports the text as truncated.

    `boundaries` are character offsets where a section or page begins (`Layout`). A window
    with one in its last NEAR_END of `window` pieces ends at the first such one and the next
    window starts there, without overlap; windows never overlap across a boundary. Without
    boundaries the windows are the plain ones above.
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
    cuts = _boundary_tokens(offsets, boundaries)
    stride = window - min(max(overlap, 0), window - 1)
    near = max(1, int(window * NEAR_END))
    marks = sorted(cuts)
    spans: list[Span] = []
    start = 0
    while True:
        end = min(start + window, count)
        cut = _first_at_or_after(marks, start + window - near)
        if cut is not None and start < cut < end:
            end, following = cut, cut
        else:
            # Overlap stays inside one section: start at the last boundary the stride passes.
            passed = _last_before(marks, end)
            following = max(start + stride, passed if passed is not None else 0)
        first = 0 if start == 0 else cuts.get(start, offsets[start][0])
        last = text_length if end == count else cuts.get(end, offsets[end - 1][1])
        spans.append(Span(first, last))
        if end == count:
            return spans, False
        start = following


def _boundary_tokens(
    offsets: Sequence[tuple[int, int]], boundaries: Sequence[int]
) -> dict[int, int]:
    """{index of the first piece at or after a boundary: the character offset to cut at}.

    The cut is the boundary itself, or the end of a piece that runs across it, so that a span
    holds whole pieces (and the whitespace between them) and adjacent spans cover everything.
    Boundaries before the first piece or after the last one cut nothing.
    """
    starts = [start for start, _ in offsets]
    cuts: dict[int, int] = {}
    for boundary in boundaries:
        token = bisect.bisect_left(starts, boundary)
        if 0 < token < len(offsets):
            cuts[token] = max(cuts.get(token, 0), boundary, offsets[token - 1][1])
    return cuts


def _first_at_or_after(marks: Sequence[int], token: int) -> int | None:
    index = bisect.bisect_left(marks, token)
    return marks[index] if index < len(marks) else None


def _last_before(marks: Sequence[int], token: int) -> int | None:
    index = bisect.bisect_left(marks, token)
    return marks[index - 1] if index > 0 else None

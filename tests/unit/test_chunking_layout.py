"""Chunk windows that respect a text's sections and pages (Layout), and the page of a passage."""

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chunking import NEAR_END, chunk_spans
from domain.errors import InvalidInputError
from domain.layout import Layout
from domain.model import NewDocument, Span


def offsets(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def sectioned(lengths: list[int]) -> tuple[str, list[int]]:
    """A text of sections of `lengths` words, each headed "H<n>"; the offsets of the headings."""
    parts, starts, at = [], [], 0
    for number, length in enumerate(lengths):
        part = " ".join([f"H{number}", *(f"s{number}w{i}" for i in range(length))])
        starts.append(at)
        parts.append(part)
        at += len(part) + 2
    return "\n\n".join(parts), starts


def token_range(text_offsets: list[tuple[int, int]], span: Span) -> tuple[int, int]:
    """[first, last) indices of the pieces a span holds (wholly or partly)."""
    inside = [i for i, (a, b) in enumerate(text_offsets) if a < span.end and b > span.start]
    return inside[0], inside[-1] + 1


def test_a_window_ends_where_a_near_section_begins_and_the_next_starts_there():
    text, starts = sectioned([7, 12])  # the second heading is piece 8 of a 10-piece window
    spans, _ = chunk_spans(offsets(text), len(text), window=10, overlap=3, boundaries=starts[1:])
    assert text[spans[0].start : spans[0].end].split()[-1] == "s0w6"
    assert text[spans[1].start :].startswith("H1")
    assert spans[0].end == spans[1].start == starts[1]


def test_a_far_boundary_is_straddled_but_no_overlap_crosses_it():
    text, starts = sectioned([2, 20])  # heading H1 is piece 3 of 10: not near the end
    spans, _ = chunk_spans(offsets(text), len(text), window=10, overlap=8, boundaries=starts[1:])
    first, second = (text[s.start : s.end].split() for s in spans[:2])
    assert "H1" in first[1:]
    assert second[0] == "H1"  # the stride (2) would start in section 0: it starts at H1


def test_without_boundaries_the_windows_are_the_plain_ones():
    text, starts = sectioned([7, 12, 30])
    plain, _ = chunk_spans(offsets(text), len(text), window=10, overlap=3)
    assert chunk_spans(offsets(text), len(text), 10, 3, boundaries=[])[0] == plain
    structured, _ = chunk_spans(offsets(text), len(text), 10, 3, boundaries=starts[1:])
    assert structured != plain


def test_a_text_that_fits_stays_one_span_whatever_its_sections():
    text, starts = sectioned([2, 2])
    assert chunk_spans(offsets(text), len(text), 10, 3, boundaries=starts[1:])[0] == [
        Span(0, len(text))
    ]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, list[int], int, int]:
    words = draw(st.lists(st.integers(1, 6), min_size=1, max_size=120))
    gaps = draw(st.lists(st.sampled_from([" ", "\n\n", "  \n"]), min_size=len(words)))
    text = "".join(gap + "x" * size for gap, size in zip(gaps, words)) + draw(
        st.sampled_from(["", " ", "\n"])
    )
    marks = draw(st.lists(st.integers(0, len(text)), max_size=20, unique=True))
    window = draw(st.integers(1, 30))
    overlap = draw(st.integers(0, 40))
    return text, sorted(marks), window, overlap


@settings(max_examples=400, deadline=None)
@given(layouts())
def test_structured_windows_cover_the_text_keep_the_limit_and_respect_near_boundaries(case):
    text, marks, window, overlap = case
    pieces = offsets(text)
    spans, truncated = chunk_spans(pieces, len(text), window, overlap, boundaries=marks)
    assert not truncated
    assert spans[0].start == 0 and spans[-1].end == len(text)
    for before, after in itertools.pairwise(spans):
        assert before.start < after.start  # always moving on
    for a, b in pieces:  # no piece left out (only whitespace may fall between two windows)
        assert any(span.start <= a and b <= span.end for span in spans)
    if len(pieces) <= window:
        assert spans == [Span(0, len(text))]
        return
    starts = [a for a, _ in pieces]
    cuts = sorted({i for i in (sum(s < m for s in starts) for m in marks) if 0 < i < len(pieces)})
    ranges = [token_range(pieces, span) for span in spans]
    near = max(1, int(window * NEAR_END))
    for first, last in ranges:
        assert last - first <= window  # the model sees every piece of every chunk
        # no boundary in the window's last NEAR_END of `window` pieces
        assert not [c for c in cuts if first < c < last and c >= first + window - near]
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert not [c for c in cuts if start < c < end]  # overlap stays inside a section


@settings(max_examples=200, deadline=None)
@given(layouts())
def test_no_boundaries_chunk_exactly_as_before(case):
    text, _, window, overlap = case
    pieces = offsets(text)
    spans, _ = chunk_spans(pieces, len(text), window, overlap, boundaries=[])
    stride = window - min(overlap, window - 1)
    if len(pieces) > window:
        starts = [span.start for span in spans[1:]]
        assert starts == [pieces[i][0] for i in range(stride, stride * len(spans), stride)]


def test_the_page_of_an_offset_counts_from_one_and_skips_blank_pages():
    layout = Layout(pages=(10, 20, 20, 35))
    assert [layout.page_of(at) for at in (0, 9, 10, 19, 20, 34, 35, 99)] == [1, 1, 2, 2, 4, 4, 5, 5]
    assert Layout(sections=(0, 5)).page_of(3) is None


@pytest.mark.parametrize(
    "layout",
    [
        {"sections": (5, 5)},
        {"sections": (6, 2)},
        {"pages": (0, 4)},
        {"pages": (4, 2)},
        {"pages": (-1,)},
        {"sections": (True,)},
        {"pages": (99,)},
    ],
)
def test_a_layout_that_does_not_describe_the_text_is_refused(layout):
    with pytest.raises(InvalidInputError):
        NewDocument("twelve chars", layout=Layout(**layout))

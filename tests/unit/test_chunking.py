import itertools
import re

import pytest

from domain.chunking import chunk_spans
from domain.errors import InvalidInputError
from domain.model import Chunking


def offsets(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


TEXT = " ".join(f"w{i}" for i in range(23))  # 23 tokens


def test_a_text_that_fits_is_one_span_over_all_of_it():
    spans, truncated = chunk_spans(offsets("  a b c "), 8, window=5, overlap=2)
    assert [(s.start, s.end) for s in spans] == [(0, 8)]
    assert not truncated


def test_windows_cover_the_whole_text_and_overlap_by_the_configured_tokens():
    spans, truncated = chunk_spans(offsets(TEXT), len(TEXT), window=10, overlap=3)
    assert not truncated
    assert spans[0].start == 0 and spans[-1].end == len(TEXT)
    pieces = [TEXT[s.start : s.end].split() for s in spans]
    assert all(len(p) <= 10 for p in pieces)
    for before, after in itertools.pairwise(pieces):
        assert before[-3:] == after[:3]
    assert sorted({w for p in pieces for w in p}) == sorted(TEXT.split())


def test_spans_start_and_end_on_token_boundaries():
    spans, _ = chunk_spans(offsets(TEXT), len(TEXT), window=7, overlap=2)
    for span in spans[1:]:
        assert TEXT[span.start] == "w" and TEXT[span.start - 1] == " "


def test_truncate_keeps_only_the_first_window_and_says_so():
    spans, truncated = chunk_spans(offsets(TEXT), len(TEXT), 10, 3, Chunking.TRUNCATE)
    assert truncated
    assert [TEXT[s.start : s.end] for s in spans] == [" ".join(f"w{i}" for i in range(10))]


def test_an_overlap_as_large_as_the_window_still_advances():
    spans, _ = chunk_spans(offsets(TEXT), len(TEXT), window=4, overlap=9)
    assert len(spans) == 20 and spans[-1].end == len(TEXT)


def test_a_text_without_tokens_is_refused():
    with pytest.raises(InvalidInputError):
        chunk_spans([], 3, window=4, overlap=1)

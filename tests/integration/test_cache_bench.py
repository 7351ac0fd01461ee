"""bench/cache.py re-imports, upserts and measures the embedding cache on a real server."""

from __future__ import annotations

import re

import pytest
from bench import cache, corpus

from model_folder import l6_folder

pytestmark = [pytest.mark.server, pytest.mark.model]


@pytest.mark.timeout(600)
def test_the_cache_bench_reimports_without_the_model_and_upserts_only_changed_windows(capsys):
    try:
        corpus.glosses()
    except corpus.CorpusError as error:
        pytest.skip(str(error))
    argv = ["--model", l6_folder(), "--documents", "40", "--batch", "16", "--long", "2"]
    assert cache.main([*argv, "--paragraphs", "16", "--fresh", "24"]) == 0
    out = capsys.readouterr().out
    first = re.search(r"first .* model texts (\d+)", out)
    second = re.search(r"second .* model texts (\d+)", out)
    assert first and second and int(first[1]) > 30 and int(second[1]) == 0
    assert "the same ids and scores in both knowledge bases" in out
    same = re.search(r"same length .* re-embedded +(\d+) of +(\d+) windows", out)
    other = re.search(r"other length .* re-embedded +(\d+) of +(\d+) windows", out)
    assert same and other
    assert 1 <= int(same[1]) <= 4 < int(same[2])  # one or two windows per document
    assert int(same[1]) < int(other[1]) < int(other[2])
    assert re.search(r"cache hit, short texts .* us per text", out)
    assert re.search(r"in process, .* with cache / without = \d", out)
    assert re.search(r"over HTTP.*\n.*\n.*\n  with cache / without = \d", out)

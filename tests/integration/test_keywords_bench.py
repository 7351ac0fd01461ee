"""bench/keywords.py times this checkout's keyword index and a git revision's side by side."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bench import corpus, keywords

from model_folder import l6_folder

pytestmark = [pytest.mark.model]


def test_the_keywords_bench_compares_this_checkout_with_a_revision(capsys):
    try:
        corpus.glosses()
    except corpus.CorpusError as error:
        pytest.skip(str(error))
    checkout = Path(keywords.__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=False).returncode:
        pytest.skip("not a git checkout")
    argv = ["--model", l6_folder(), "--documents", "4", "--queries", "3", "--rounds", "2"]
    assert keywords.main([*argv, "--against", "HEAD"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("current ", "HEAD "))]
    assert [row[0] for row in rows] == ["current", "HEAD"]
    assert all(float(row[3]) > 0 for row in rows)  # p50 ms

"""bench/memory.py runs this checkout and a git revision side by side and prints their sizes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bench import corpus, memory

from model_folder import l6_folder

pytestmark = [pytest.mark.server, pytest.mark.model]


def test_the_memory_bench_compares_this_checkout_with_a_revision(capsys):
    try:
        corpus.glosses()
    except corpus.CorpusError as error:
        pytest.skip(str(error))
    checkout = Path(memory.__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=False).returncode:
        pytest.skip("not a git checkout")
    argv = ["--model", l6_folder(), "--documents", "3", "--batch", "1", "--compare", "2"]
    assert memory.main([*argv, "--against", "HEAD", "--no-restart"]) == 0
    out = capsys.readouterr().out
    current = next(line for line in out.splitlines() if line.startswith("current "))
    revision = next(line for line in out.splitlines() if line.startswith("HEAD "))
    assert current.split()[1:2] == ["3"] and revision.split()[1:2] == ["2"]
    assert "ratio" in out and "x the documents/s of HEAD" in out

"""bench/stream.py imports, re-imports and prints the worker's sizes and speeds."""

from __future__ import annotations

import pytest
from bench import stream

from model_folder import l6_folder

pytestmark = pytest.mark.server


def test_the_stream_bench_reports_sizes_for_each_import(capsys):
    code = stream.main(["--model", l6_folder(), "--documents", "3000", "--warmup", "200"])
    out = capsys.readouterr().out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert rows["import"][2] == "3,000/0", out
    assert rows["re-import (unchanged)"][3] == "0/3,000", out
    assert "re-import of 3,000 lines: RSS after/before" in out
    assert code == (0 if out.count("MET") == 1 else 1)

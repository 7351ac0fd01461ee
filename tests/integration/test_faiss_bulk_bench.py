"""bench/faiss_bulk.py prints both ways of loading, the hinted one ending IVF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bulk_bench_compares_a_hinted_load_with_a_plain_one():
    args = ["--vectors", "4000", "--dimension", "32", "--batch", "300", "--ann-threshold", "1000"]
    out = subprocess.run(
        [sys.executable, "-m", "bench.faiss_bulk", *args],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"expect", "no"}
    assert "IVF" in rows["expect"] and "IVF" in rows["no"]
    assert "4,000" in rows["expect"]

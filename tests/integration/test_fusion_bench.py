"""bench/fusion.py ranks a BEIR folder every way it compares, with the service's fusion."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bench import beir, fusion

from fakes import FakeEmbedder

DOCS = {
    "bike": "Bicycles go in the locked cage in the basement garage",
    "train": "The company pays for second-class train tickets on business trips",
    "serial": "Spare part XK4471 for the coffee machine",
    "lunch": "Every working day in the office gives you a meal voucher",
}
QUERIES = {
    "q1": ("where is the bicycle cage", "bike"),
    "q2": ("who pays for train tickets", "train"),
    "q3": ("XK4471", "serial"),
}


def test_the_fusion_bench_scores_every_ranking_on_every_folder(tmp_path):
    checkout = Path(fusion.__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=False).returncode:
        pytest.skip("not a git checkout")
    beir.write(
        tmp_path / "tiny",
        [{"_id": doc_id, "title": "", "text": text} for doc_id, text in DOCS.items()],
        [{"_id": query_id, "text": text} for query_id, (text, _) in QUERIES.items()],
        [(query_id, doc_id, 1) for query_id, (_, doc_id) in QUERIES.items()],
    )
    embedder = FakeEmbedder()
    args = fusion.parse_args([str(tmp_path / "tiny"), str(tmp_path / "tiny"), "--against", "HEAD"])
    table = fusion.run(args, encode=embedder.embed)
    rows = {line[:20].strip(): line[20:].split() for line in table.splitlines()[1:]}
    assert list(rows) == list(fusion.RANKINGS)
    assert all(len(values) == 2 and 0.0 <= float(values[0]) <= 1.0 for values in rows.values())
    # Every query holds a word of its note only: keyword-aware fusion finds all three first.
    assert float(rows["score 0.3"][0]) == pytest.approx(1.0)
    assert float(rows["score 0.3"][0]) >= float(rows["dense"][0])

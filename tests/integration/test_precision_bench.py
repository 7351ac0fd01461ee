"""bench.precision end to end on a few texts: both precisions per model call, the truncate
protocol's figures on team-notes, and batch adds to two real services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench import precision

from adapters.embedding.onnx_encoder import usable_cpus
from model_folder import l6_folder, linked_export

pytest.importorskip("onnx", reason="pip install onnx (quantising needs it)")
pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
TEAM_NOTES = ROOT / "bench" / "data" / "team-notes"
ROW = r"\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)x$"


def bench(tmp_path: Path, *extra: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    cache = str(linked_export(tmp_path / "cache"))
    small = ["--short", "64", "--long", "4", "--rounds", "1", "--cache-dir", cache]
    args = precision.parse_args([str(TEAM_NOTES), "--model", l6_folder(), *small, *extra])
    return precision.run(args, lines.append), lines


def test_the_bench_times_both_precisions_and_checks_the_gate(tmp_path):
    status, lines = bench(tmp_path)
    text = "\n".join(lines)
    for kind in ("short texts", "long documents"):
        found = re.search(rf"^{kind}, 1 call\(s\) at once{ROW}", text, re.MULTILINE)
        assert found, text
        exact, quantised, ratio = map(float, found.groups())
        assert exact > 0 and quantised > 0 and ratio == pytest.approx(quantised / exact, 0.02)
    found = re.search(r"^team-notes\s+([0-9.]+)\s+([0-9.]+)\s+(-?[0-9.]+)\s+([0-9.]+)", text, re.M)
    assert found, text
    # float32 reproduces the published truncate-protocol figure (docs/search.md).
    assert float(found.group(1)) == pytest.approx(0.84400, abs=1e-5)
    assert float(found.group(4)) >= 0.99
    verdicts = [line for line in lines if line.startswith(("MET", "MISSED"))]
    levels = len({1, usable_cpus()})  # one call at a time, then one per CPU
    assert len(verdicts) == 2 + 2 * levels, verdicts
    assert status == (1 if any(v.startswith("MISSED") for v in verdicts) else 0)


@pytest.mark.server
@pytest.mark.timeout(600)
def test_the_bench_adds_through_two_services(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))  # the services run this checkout
    _, lines = bench(tmp_path, "--http", "--http-short", "20", "--http-long", "2")
    text = "\n".join(lines)
    for kind in ("short texts", "long documents"):
        found = re.search(rf"^{kind}{ROW}", text, re.MULTILINE)
        assert found, text
        assert all(float(value) > 0 for value in found.groups())

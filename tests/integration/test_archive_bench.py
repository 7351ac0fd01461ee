"""bench/archive.py exports, restores and re-embeds a knowledge base on a real server."""

from __future__ import annotations

import pytest
from bench import archive, corpus

from model_folder import l6_folder

pytestmark = [pytest.mark.server, pytest.mark.model]


def _row(out: str, label: str) -> list[str]:
    return next(line for line in out.splitlines() if line.startswith(label)).split()


def test_the_archive_bench_restores_without_embedding_and_reembeds_a_sample(capsys, tmp_path):
    try:
        corpus.glosses()
    except corpus.CorpusError as error:
        pytest.skip(str(error))
    argv = ["--model", l6_folder(), "--documents", "7", "--batch", "3", "--reembed-sample", "4"]
    assert archive.main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    # step, documents, seconds, doc/s, embedded, ...: restoring embeds nothing, re-embedding all
    assert _row(out, "add (embeds)")[3:4] == ["7"]
    assert _row(out, "export")[1:2] == ["7"]
    assert _row(out, "restore, same model")[3:4] == ["7"] and _row(out, "restore, same")[7] == "0"
    reembed = _row(out, "restore, reembed=true (extrapolated)")
    assert reembed[4:5] == ["7"] and reembed[8] == "7"  # 4 embedded, scaled to the 7
    assert "MET     restore with the same model embedded 0 texts" in out
    assert "re-embedding took" in out and "RSS after/before" in out

    # A second run on the same data folder does not add the documents again.
    assert archive.main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
    assert "add (embeds)" not in capsys.readouterr().out

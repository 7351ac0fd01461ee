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
    # step, documents, seconds, doc/s, embedded, MB before, peak MB, MB after, after/before
    add, export = _row(out, "add "), _row(out, "export ")
    restore, reembed = _row(out, "restore "), _row(out, "re-embed ")
    assert (add[1], add[4]) == ("7", "7")
    assert (export[1], export[4]) == ("7", "0")
    assert (restore[1], restore[4]) == ("7", "0")  # the archive's vectors, as they are
    assert (reembed[1], reembed[4]) == ("4", "4")  # the sample, every text embedded again
    assert "all 7 EXTRAPOLATED linearly" in out
    assert "MET     restore with the same model embedded 0 texts" in out
    assert "re-embedding took" in out and "RSS after/before" in out and "peak/before" in out

    # A second run on the same data folder does not add the documents again.
    assert archive.main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
    again = capsys.readouterr().out
    assert "add " not in again and _row(again, "restore ")[1] == "7"

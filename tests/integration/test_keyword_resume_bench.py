"""bench/keyword_resume.py times a start that takes the kept keyword file back."""

from __future__ import annotations

from bench import keyword_resume


def test_the_resume_bench_takes_the_file_back_and_adds_only_what_changed(capsys, tmp_path):
    argv = ["--documents", "400", "--changed", "0.05", "--folder", str(tmp_path)]
    assert keyword_resume.main(argv) == 0
    rows = {
        line.split("  ")[0]: line.split()[-3:]  # texts added, total s, documents
        for line in capsys.readouterr().out.splitlines()
    }
    assert rows["nothing changed"][0] == "0" and rows["nothing changed"][2] == "400"
    # 20 touched: 10 changed texts and 5 new documents to add, 5 removed.
    assert rows["changed while down"][0] == "15" and rows["changed while down"][2] == "400"
    assert list(tmp_path.iterdir()) == []

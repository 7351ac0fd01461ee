"""`kb import --stream` (and a JSONL file over 64 MiB): one streamed import job, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from entrypoints import cli_stream
from entrypoints.cli import main
from kb_client import KBClient
from live_server import serving


@pytest.fixture
def url(make_app: Callable[..., Flask]) -> Iterator[str]:
    with serving(make_app()) as base:
        yield base


@pytest.fixture
def kb(url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--url", url, "--retries", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def record(i: int, text: str | None = None) -> str:
    return json.dumps({"id": f"d{i}", "text": text or f"text {i}", "metadata": {"i": i}})


def test_a_streamed_import_reports_what_it_did_and_resumes(kb, url, tmp_path):
    path = write(tmp_path / "in.jsonl", [record(i) for i in range(500)])
    code, _, err = kb("import", str(path), "--kb", "notes", "--create", "--stream", "--no-progress")
    assert code == 0, err
    assert "imported 500 documents into notes (0 replaced, 0 unchanged, 0 lines refused)" in err
    write(path, [record(i, "changed" if i == 7 else None) for i in range(600)])
    code, _, err = kb("import", str(path), "--kb", "notes", "--stream", "--no-progress")
    assert code == 0, err
    assert "imported 100 documents into notes (1 replaced, 499 unchanged" in err
    with KBClient(url, retries=0) as client:
        assert client.get_knowledge_base("notes")["document_count"] == 600
        assert client.get_document("notes", "d7")["text"] == "changed"


def test_refused_lines_are_printed_with_the_files_line_numbers_and_exit_1(kb, tmp_path):
    path = write(tmp_path / "in.jsonl", [record(1), "{oops", record(3), '{"text": "no id"}'])
    code, _, err = kb("import", str(path), "--kb", "notes", "--create", "--stream", "--no-progress")
    assert code == 1
    assert "imported 2 documents into notes (0 replaced, 0 unchanged, 2 lines refused)" in err
    assert f"{path}:2: malformed JSON" in err and f"{path}:4: an id is required" in err


def test_a_large_jsonl_file_is_streamed_without_asking(kb, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_stream, "STREAM_BYTES", 100)
    path = write(tmp_path / "in.jsonl", [record(i) for i in range(20)])
    code, _, err = kb("import", str(path), "--kb", "notes", "--create", "--no-progress")
    assert code == 0 and "lines refused" in err, err  # only the streamed import says so


def test_stream_needs_a_file(kb, tmp_path):
    code, _, err = kb("import", str(tmp_path), "--kb", "notes", "--stream")
    assert code == 2 and "--stream sends a JSONL file" in err

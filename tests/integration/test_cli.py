"""The `kb` client commands end to end: entrypoints.cli.main against a live HTTP server."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from entrypoints.cli import main
from entrypoints.cli_import import add_batch
from file_samples import pdf, word
from kb_client import Invalid, JobFailed, KBClient
from live_server import serving
from server import KB, server_env

COMMANDS = [
    *["serve", "download-model", "create", "list", "info", "import", "search", "export"],
    *["backup", "restore", "copy", "sync"],
]


@pytest.fixture
def url(make_app: Callable[..., Flask]) -> Iterator[str]:
    with serving(make_app()) as base:
        yield base


@pytest.fixture
def kb(url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `kb ARGS --url URL` in-process; (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--url", url, "--retries", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def client(url: str) -> Iterator[KBClient]:
    with KBClient(url, retries=0) as kb_client:
        yield kb_client


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: kb {command}" in capsys.readouterr().out


def test_create_then_list_shows_the_knowledge_base_with_its_counts(kb, client):
    code, out, _ = kb("create", "notes", "--description", "team notes", "--chunking", "truncate")
    assert code == 0 and "created knowledge base notes" in out
    assert client.get_knowledge_base("notes")["chunking"] == "truncate"
    client.add_document("notes", "hello there")
    code, out, _ = kb("list")
    assert code == 0 and "notes" in out and "team notes" in out and " 1 " in out


def test_info_and_list_show_the_models_readable_name_and_fingerprint(kb, fake_embedder):
    short = fake_embedder.fingerprint[:12]
    code, out, _ = kb("info")
    assert code == 0 and "model: fake-model" in out
    assert f"model_fingerprint: {fake_embedder.fingerprint}" in out
    code, out, _ = kb("create", "notes")
    assert code == 0 and f"fake-model ({short})" in out
    code, out, _ = kb("info", "--kb", "notes")
    assert code == 0 and "name: notes" in out and "model: fake-model" in out
    assert f"model_fingerprint: {fake_embedder.fingerprint}" in out
    code, out, _ = kb("list")
    assert code == 0 and short in out


def test_a_taken_name_exits_1_with_the_services_message(kb):
    kb("create", "notes")
    code, _, err = kb("create", "notes")
    assert code == 1 and "notes" in err and "409" in err


def test_importing_a_folder_uses_relative_paths_as_ids_and_skips_what_it_cannot_read(
    kb, client, tmp_path
):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "a.txt").write_text("Apples are red.\n")
    (folder / "sub" / "b.md").write_text("# Bananas\n\nBananas are yellow.")
    (folder / ".git" / "c.txt").write_text("hidden")
    (folder / "empty.txt").write_text("  \n")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "picture.png").write_bytes(b"\x89PNG")
    kb("create", "docs")
    code, _, err = kb("import", str(folder), "--kb", "docs")
    assert code == 0, err
    assert "imported 2 documents into docs" in err
    assert "skipped empty.txt: empty" in err and "latin1.txt: not UTF-8" in err
    assert [d["id"] for d in client.iter_documents("docs")] == ["a.txt", "sub/b.md"]
    assert client.get_document("docs", "sub/b.md")["text"] == "# Bananas\n\nBananas are yellow."


def test_an_interrupted_import_resumes_without_sending_anything_twice(
    kb, client, tmp_path, fake_embedder
):
    records = [
        {"id": f"doc-{i}", "text": f"text number {i}", "metadata": {"i": i}} for i in range(9)
    ]
    bad = [*records[:6], {**records[6], "metadata": {"nested": {"no": 1}}}, *records[7:]]
    kb("create", "kb")
    bad_file = write_jsonl(tmp_path / "bad.jsonl", bad)
    code, _, err = kb("import", str(bad_file), "--kb", "kb", "--batch-size", "2")
    assert code == 1 and "422" in err
    assert client.get_knowledge_base("kb")["document_count"] == 6  # three whole batches
    fake_embedder.calls.clear()
    good = write_jsonl(tmp_path / "good.jsonl", records)
    code, _, err = kb("import", str(good), "--kb", "kb", "--batch-size", "2")
    assert code == 0 and "imported 3 documents into kb (6 already there, skipped)" in err
    embedded = sorted(text for call in fake_embedder.calls for text in call)
    assert embedded == ["text number 6", "text number 7", "text number 8"]
    code, _, err = kb("import", str(good), "--kb", "kb")
    assert code == 0 and "imported 0 documents into kb (9 already there" in err


def test_a_batch_that_meets_an_id_added_meanwhile_falls_back_to_one_by_one(client):
    client.create_knowledge_base("kb")
    client.add_document("kb", "already here", id="b")
    batch = [{"id": i, "text": f"text {i}"} for i in "abc"]
    assert add_batch(client, "kb", batch) == (2, 1)
    assert [d["id"] for d in client.iter_documents("kb")] == ["a", "b", "c"]
    assert client.get_document("kb", "b")["text"] == "already here"


def test_import_into_an_unknown_knowledge_base_says_how_to_create_it(kb, client, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "alpha"}])
    code, _, err = kb("import", str(path), "--kb", "ghost")
    assert code == 1 and "ghost" in err and "--create" in err
    code, _, err = kb("import", str(path), "--kb", "ghost", "--create")
    assert code == 0 and client.get_document("ghost", "a")["text"] == "alpha"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "text": "x"}\n{not json}\n', "in.jsonl:2: not JSON"),
        ('{"text": "no id"}\n', "'id' must be a non-empty string"),
        ('{"id": "a", "text": 3}\n', "'text' must be a string"),
        ('{"id": "a", "text": "x", "vector": []}\n', "unknown keys ['vector']"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "'a' appears twice"),
    ],
)
def test_a_malformed_jsonl_file_exits_2_before_sending_anything(
    kb, client, tmp_path, content, message
):
    kb("create", "kb")
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    code, _, err = kb("import", str(path), "--kb", "kb")
    assert code == 2 and message in err
    assert client.get_knowledge_base("kb")["document_count"] == 0


def test_a_missing_path_exits_2(kb, tmp_path):
    code, _, err = kb("import", str(tmp_path / "nowhere"), "--kb", "kb")
    assert code == 2 and "does not exist" in err


def test_search_prints_a_ranked_table_and_takes_filters_and_hybrid(kb, client):
    client.create_knowledge_base("kb")
    client.add_documents(
        "kb",
        [
            {"id": "bread", "text": "A man eats bread.", "metadata": {"lang": "en"}},
            {"id": "pain", "text": "Un homme mange du pain.", "metadata": {"lang": "fr"}},
        ],
    )
    code, out, _ = kb("search", "A man eats bread.", "--kb", "kb", "--top-k", "2")
    assert code == 0 and out.index("bread") < out.index("pain") and "1.0000" in out
    code, out, _ = kb("search", "bread", "--kb", "kb", "--filter", '{"lang": "fr"}', "--json")
    assert code == 0 and [hit["id"] for hit in json.loads(out)] == ["pain"]
    code, out, _ = kb("search", "bread", "--kb", "kb", "--hybrid", "--json")
    assert code == 0 and "fusion_score" in json.loads(out)[0]
    code, out, _ = kb("search", "bread", "--kb", "kb", "--exact", "--json")
    assert code == 0 and [hit["id"] for hit in json.loads(out)] == ["bread", "pain"]
    code, out, _ = kb("search", "bread", "--kb", "kb", "--min-score", "0.999")
    assert code == 0 and "no hits" in out


def test_search_shows_the_ordering_value_beside_the_cosine_and_explains(kb, client):
    client.create_knowledge_base("kb")
    client.add_documents(
        "kb",
        [
            {"id": "bread", "text": "A man eats bread."},
            {"id": "sku", "text": "Spare part XK4471"},
            {"id": "pain", "text": "Un homme mange du pain."},
        ],
    )
    code, out, _ = kb("search", "A man eats bread.", "--kb", "kb", "--top-k", "2")
    header = out.splitlines()[1]
    assert code == 0 and "cosine" in header and "fused" not in header and "why" not in header
    code, out, _ = kb("search", "where is XK4471", "--kb", "kb", "--hybrid", "--explain")
    lines = out.splitlines()
    assert code == 0 and lines[1].index("fused") < lines[1].index("cosine") < lines[1].index("why")
    first = next(line for line in lines if "sku" in line)
    assert "dense #" in first and "keyword #1" in first  # the rest of the cell may wrap
    assert "covers" in out and "100%" in out and "keyword: no" in out
    code, out, _ = kb("search", "XK4471", "--kb", "kb", "--hybrid", "--explain", "--json")
    hits = json.loads(out)
    assert code == 0 and hits[0]["id"] == "sku"
    assert hits[0]["explain"]["fused"] == hits[0]["fusion_score"]
    assert hits[0]["explain"]["keyword"]["rank"] == 1
    code, out, _ = kb("search", "bread", "--kb", "kb", "--explain", "--json")
    assert code == 0 and set(json.loads(out)[0]["explain"]) == {"dense"}


def test_search_errors_are_clear(kb, capsys):
    code, _, err = kb("search", "x", "--kb", "ghost")
    assert code == 1 and "ghost" in err and "404" in err
    with pytest.raises(SystemExit) as exited:
        main(["search", "x", "--kb", "kb", "--filter", "{broken"])
    assert exited.value.code == 2 and "--filter: not JSON" in capsys.readouterr().err


def test_an_unreachable_service_exits_3(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["list", "--url", f"http://127.0.0.1:{port}", "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 3 and "cannot reach kb-service" in err and "KB_URL" in err


def test_the_api_key_comes_from_the_option_or_kb_api_key(make_app, monkeypatch, capsys):
    with serving(make_app(api_keys="secret-key-0123456789")) as base:
        assert main(["list", "--url", base]) == 1
        assert "401" in capsys.readouterr().err
        assert main(["list", "--url", base, "--api-key", "secret-key-0123456789"]) == 0
        monkeypatch.setenv("KB_API_KEY", "secret-key-0123456789")
        monkeypatch.setenv("KB_URL", base)
        assert main(["create", "from-env"]) == 0


def test_export_then_import_into_a_new_knowledge_base_round_trips_exactly(kb, client, tmp_path):
    client.create_knowledge_base("src")
    long_text = " ".join(f"word{i}" for i in range(200))  # several chunks with the fake model
    unicode = "Ünïcödé — 中文 🎉\nsecond line\t"
    client.add_documents(
        "src",
        [
            {"id": "b/unicode", "text": unicode, "metadata": {"z": 1, "a": [1, "x"]}},
            {"id": "a-long", "text": long_text, "metadata": {"f": 0.1, "t": True, "s": "é"}},
            {"id": "c", "text": "plain", "metadata": {}},
        ],
    )
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    code, _, err = kb("export", "--kb", "src", "--out", str(first))
    assert code == 0 and "exported 3 documents from src" in err
    code, _, err = kb("import", str(first), "--kb", "copy", "--create")
    assert code == 0, err
    assert kb("export", "--kb", "copy", "--out", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a-long", "b/unicode", "c"]
    assert lines[1]["text"] == unicode
    code, out, _ = kb("export", "--kb", "copy")
    assert code == 0 and out.encode() == first.read_bytes()


def test_exporting_an_unknown_knowledge_base_leaves_no_file(kb, tmp_path):
    out = tmp_path / "out.jsonl"
    code, _, err = kb("export", "--kb", "ghost", "--out", str(out))
    assert code == 1 and "ghost" in err
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_pipe_closed_early_stops_quietly_like_other_unix_tools(url, client):
    """`kb export | head -1`: the reader goes away; no traceback, no "Broken pipe" message."""
    client.create_knowledge_base("many")
    # More than a pipe holds (64 KiB) plus Python's buffer, so the writer meets the closed end.
    client.add_documents("many", [{"id": f"d{i:05}", "text": "x" * 300} for i in range(1000)])
    command = [KB, "export", "--kb", "many", "--url", url, "--retries", "0"]
    process = subprocess.Popen(
        command, env=server_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    assert json.loads(process.stdout.readline())["id"] == "d00000"
    process.stdout.close()  # what `head -1` does once it has its line
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err  # 128 + SIGPIPE, as a shell reports `seq | head`
    assert "Broken pipe" not in err and "Traceback" not in err and "exported" not in err


def test_a_query_over_the_length_limit_exits_1_naming_the_setting(make_app, capsys):
    with serving(make_app(max_query_chars=20)) as base:
        with KBClient(base, retries=0) as client:
            client.create_knowledge_base("kb")
            client.add_documents("kb", [{"id": "a", "text": "x y"}])
        assert main(["search", "x" * 20, "--kb", "kb", "--url", base, "--json"]) == 0
        assert [hit["id"] for hit in json.loads(capsys.readouterr().out)] == ["a"]
        assert main(["search", "x" * 21, "--kb", "kb", "--url", base]) == 1
        err = capsys.readouterr().err
        assert "422" in err and "KB_MAX_QUERY_CHARS is 20" in err


def test_the_hits_table_has_a_page_column_only_when_a_hit_has_a_page():
    from rich.console import Console

    from entrypoints.cli_commands import hits_table

    def rendered(hits: list[dict]) -> str:
        console = Console(width=200, record=True)
        console.print(hits_table(hits))
        return console.export_text()

    paged = {"id": "manual.pdf", "score": 0.9, "metadata": {}, "passage": {"text": "a", "page": 7}}
    plain = {"id": "notes", "score": 0.5, "metadata": {}, "passage": {"text": "b"}}
    with_pages = rendered([paged, plain])
    assert "page" in with_pages.splitlines()[1] and " 7 " in with_pages
    assert "page" not in rendered([plain]).splitlines()[1]


def test_importing_a_folder_uploads_its_pdf_html_and_docx_files_resumably(kb, client, tmp_path):
    folder = tmp_path / "docs"
    (folder / "reports").mkdir(parents=True)
    (folder / "a.txt").write_text("Apples are red.\n")
    (folder / "reports" / "q3.pdf").write_bytes(pdf(["Revenue grew."], title="Q3"))
    (folder / "page.html").write_bytes(b"<title>Page</title><p>Pears are green.</p>")
    (folder / "minutes.docx").write_bytes(word([("Heading 1", "Minutes"), ("", "We met.")]))
    (folder / "scan.pdf").write_bytes(pdf([""]))
    kb("create", "docs")
    code, _, err = kb("import", str(folder), "--kb", "docs")
    assert code == 0, err
    assert "imported 4 documents into docs" in err
    assert "skipped scan.pdf" in err and "OCR" in err
    ids = [d["id"] for d in client.iter_documents("docs")]
    assert ids == ["a.txt", "minutes.docx", "page.html", "reports/q3.pdf"]
    got = client.get_document("docs", "reports/q3.pdf")
    assert got["text"] == "Revenue grew." and got["metadata"]["title"] == "Q3"
    assert got["metadata"]["source"] == "q3.pdf"
    code, _, err = kb("import", str(folder), "--kb", "docs")
    assert code == 0 and "imported 0 documents into docs (4 already there" in err


def test_the_client_uploads_files_and_waits_for_the_job_of_a_large_upload(make_app):
    with serving(make_app(files_job_files=2)) as base, KBClient(base, retries=0) as client:
        client.create_knowledge_base("kb")
        small = client.upload_files("kb", [("one.pdf", pdf(["One."]))], metadata={"n": 1})
        assert [item["id"] for item in small] == ["one.pdf"]
        files = [(f"{i}.md", f"# Doc {i}\n\ntext".encode()) for i in range(5)]
        seen = []
        added = client.upload_files(
            "kb", files, ids=["x", None, "y", None, None], poll=0.05, on_progress=seen.append
        )
        assert [item["id"] for item in added] == ["x", "1.md", "y", "3.md", "4.md"]
        assert all(item["chunks"] >= 1 for item in added) and seen[-1]["status"] == "succeeded"
        assert client.get_document("kb", "y")["metadata"]["title"] == "Doc 2"
        with pytest.raises(JobFailed, match="OCR"):
            client.upload_files("kb", [*files[:2], ("scan.pdf", pdf([""]))], ids=["p", "q", "r"])
        with pytest.raises(Invalid, match=r"scan\.pdf"):
            client.upload_files("kb", [("scan.pdf", pdf([""]))])

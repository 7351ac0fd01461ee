"""`kb backup`, `kb restore` and `kb copy` end to end: the CLI against live HTTP servers."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from rich.console import Console

import postgres
from entrypoints.cli import main
from entrypoints.cli_progress import follow_job
from fakes import FakeEmbedder
from kb_client import Job, KBClient, NotFound
from live_server import serving
from model_folder import l6_folder
from server import FAKE_APP, Server

MEMBERS = ["manifest.json", "documents.jsonl", "vectors.npy", "SHA256SUMS"]
LONG = " ".join(f"word{i}" for i in range(120))  # several chunks with the fake model's window
DOCUMENTS = [
    {"id": "apples", "text": "Apples are red and sweet.", "metadata": {"kind": "fruit", "n": 1}},
    {"id": "b/long", "text": LONG, "metadata": {"f": 0.1, "tags": ["x", "é"]}},
    {"id": "unicode", "text": "Ünïcödé — 中文 🎉\nsecond line\t", "metadata": {}},
]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def url(make_app: Callable[..., Flask]) -> Iterator[str]:
    with serving(make_app()) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[KBClient]:
    with KBClient(url, retries=0) as kb_client:
        yield kb_client


@pytest.fixture
def kb(url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `kb ARGS --url URL` in-process (another --url wins); (exit code, stdout, stderr)."""

    def run(*args: str, at: str = url) -> tuple[int, str, str]:
        code = main([*args, "--url", at, "--retries", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def notes(client: KBClient) -> str:
    client.create_knowledge_base("notes", "team notes", {"team": "core"}, chunk_overlap=4)
    client.add_documents("notes", DOCUMENTS)  # type: ignore[arg-type]
    return "notes"


def documents_of(client: KBClient, kb: str) -> list[dict[str, Any]]:
    return [dict(document) for document in client.iter_documents(kb)]


def settings_of(client: KBClient, kb: str) -> dict[str, Any]:
    body = dict(client.get_knowledge_base(kb))
    return {key: body[key] for key in ("description", "metadata", "chunking", "chunk_overlap")}


def vector_hits(client: KBClient, kb: str) -> list[tuple[str, float]]:
    dimension = client.info()["dimension"]
    vector = [1.0 / dimension**0.5] * dimension
    return [(hit["id"], hit["score"]) for hit in client.search(kb, vector=vector, top_k=10)]


def assert_same_knowledge_base(
    one: KBClient, name: str, other: KBClient, other_name: str, scores: bool = True
) -> None:
    assert documents_of(other, other_name) == documents_of(one, name)
    assert settings_of(other, other_name) == settings_of(one, name)
    if scores:
        ids, values = zip(*vector_hits(one, name), strict=True)
        other_ids, other_values = zip(*vector_hits(other, other_name), strict=True)
        assert other_ids == ids and other_values == pytest.approx(values, abs=1e-6)


def test_backup_then_restore_as_another_name_copies_everything_without_embedding(
    kb, client, notes, tmp_path, fake_embedder
):
    archive = tmp_path / "notes.kbar"
    code, _, err = kb("backup", "--kb", notes, "--out", str(archive))
    assert code == 0 and f"backed up notes to {archive}" in err, err
    with tarfile.open(archive) as tar:
        assert tar.getnames() == MEMBERS
    fake_embedder.calls.clear()
    code, _, err = kb("restore", str(archive), "--as", "restored")
    assert code == 0 and f"restored restored from {archive}" in err, err
    assert fake_embedder.calls == []  # the archive's vectors are used as they are
    assert "(3 documents, " in err
    assert_same_knowledge_base(client, notes, client, "restored")


def test_restore_takes_the_name_saved_in_the_archive(kb, client, notes, tmp_path):
    assert kb("backup", "--kb", notes, "--out", str(tmp_path / "any-file-name.kbar"))[0] == 0
    before = documents_of(client, notes)
    client.delete_knowledge_base(notes)
    code, _, err = kb("restore", str(tmp_path / "any-file-name.kbar"), "--no-progress")
    assert code == 0 and "restored notes from" in err, err
    assert documents_of(client, notes) == before


def test_backup_all_writes_one_archive_per_knowledge_base_that_restore_reads_back(
    kb, client, tmp_path
):
    names = ["alpha", "beta", "empty"]
    for name in names:
        client.create_knowledge_base(name, f"the {name} one")
    client.add_documents("alpha", [{"id": "a", "text": "alpha text"}])
    client.add_documents("beta", [{"id": "b", "text": "beta text", "metadata": {"x": 1}}])
    before = {name: (documents_of(client, name), settings_of(client, name)) for name in names}
    folder = tmp_path / "backups"
    code, _, err = kb("backup", "--all", "--out", str(folder))
    assert code == 0 and "backed up 3 of 3 knowledge bases" in err, err
    assert sorted(path.name for path in folder.iterdir()) == [f"{name}.kbar" for name in names]
    for name in names:
        client.delete_knowledge_base(name)
    for path in sorted(folder.iterdir()):
        code, _, err = kb("restore", str(path), "--no-progress")
        assert code == 0, err
    after = {name: (documents_of(client, name), settings_of(client, name)) for name in names}
    assert after == before


def test_restoring_over_a_taken_name_exits_1_with_the_services_conflict(
    kb, client, notes, tmp_path
):
    archive = tmp_path / "notes.kbar"
    assert kb("backup", "--kb", notes, "--out", str(archive))[0] == 0
    client.add_document(notes, "added after the backup", id="later")
    code, _, err = kb("restore", str(archive))
    assert code == 1 and "409" in err and "notes" in err, err
    assert client.get_document(notes, "later")["text"] == "added after the backup"


def test_a_backup_to_standard_output_can_be_compressed_and_still_restores(
    url, client, notes, tmp_path, capsysbinary
):
    assert main(["backup", "--kb", notes, "--out", "-", "--url", url, "--no-progress"]) == 0
    captured = capsysbinary.readouterr()
    assert b"backed up notes to standard output" in captured.err
    with tarfile.open(fileobj=io.BytesIO(captured.out)) as tar:
        assert tar.getnames() == MEMBERS
    compressed = tmp_path / "notes.kbar.gz"
    compressed.write_bytes(gzip.compress(captured.out))  # as `kb backup --out - | gzip` makes it
    client.delete_knowledge_base(notes)
    assert main(["restore", str(compressed), "--url", url, "--no-progress"]) == 0
    assert [d["id"] for d in client.iter_documents(notes)] == ["apples", "b/long", "unicode"]


def test_backup_into_a_folder_names_the_file_after_the_knowledge_base(kb, notes, tmp_path):
    code, _, err = kb("backup", "--kb", notes, "--out", str(tmp_path))
    assert code == 0 and [path.name for path in tmp_path.iterdir()] == ["notes.kbar"], err


def test_backing_up_an_unknown_knowledge_base_exits_1_and_leaves_no_file(kb, tmp_path):
    code, _, err = kb("backup", "--kb", "ghost", "--out", str(tmp_path / "ghost.kbar"))
    assert code == 1 and "404" in err and "ghost" in err
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_archive_exits_1_with_what_is_wrong_and_leaves_nothing(
    kb, client, notes, tmp_path
):
    archive = tmp_path / "notes.kbar"
    assert kb("backup", "--kb", notes, "--out", str(archive))[0] == 0
    data = bytearray(archive.read_bytes())
    data[data.index(b"Apples are red")] ^= 0x01  # one flipped bit inside documents.jsonl
    archive.write_bytes(bytes(data))
    code, _, err = kb("restore", str(archive), "--as", "broken")
    assert code == 1 and "documents.jsonl" in err and "sha256" in err, err
    with pytest.raises(NotFound):
        client.get_knowledge_base("broken")


def test_a_file_that_is_no_archive_is_refused_here_or_by_the_service_with_422(kb, client, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n" * 100)
    code, _, err = kb("restore", str(text))
    assert code == 2 and "not a knowledge base archive" in err, err
    code, _, err = kb("restore", str(text), "--as", "notes")  # sent anyway: the service says
    assert code == 1 and "422" in err and "tar" in err, err
    with pytest.raises(NotFound):
        client.get_knowledge_base("notes")
    code, _, err = kb("restore", str(tmp_path / "missing.kbar"))
    assert code == 2 and "missing.kbar" in err


@contextmanager
def running(tmp_path: Path, label: str, **settings: str) -> Iterator[str]:
    """A second service, in its own process (wiring is global: one app per process serves):
    the real gunicorn with the same fake model as the in-process app."""
    # The configuration checks the model's folder even where the fake model then serves.
    settings.setdefault("KB_EMBEDDING_MODEL", l6_folder())
    server = Server(tmp_path / f"{label}.log", app=FAKE_APP, **settings)
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


def test_copy_moves_a_knowledge_base_from_the_embedded_backend_to_postgresql(
    kb, client, notes, tmp_path, fake_embedder
):
    database = postgres.database_url()
    postgres.clean(database)
    with running(tmp_path, "pg", KB_BACKEND="postgres", KB_DATABASE_URL=database) as target_url:
        code, _, err = kb("copy", "--kb", notes, "--to", target_url)
        assert code == 0, err
        assert f"copied notes from {client.url} to {target_url} as notes (3 documents" in err
        with KBClient(target_url, retries=0) as target:
            assert target.info()["backend"] == "postgres"
            assert_same_knowledge_base(client, notes, target, notes)
        code, _, err = kb("copy", "--kb", notes, "--to", target_url)  # the name is taken now
        assert code == 1 and "409" in err and "notes" in err


@pytest.fixture
def other_model(make_app, make_container) -> Iterator[tuple[str, FakeEmbedder]]:
    """The in-process service with another model (another fingerprint), and that model."""
    other = FakeEmbedder(dimension=32, window=16, model_name="other-model")
    container = make_container()
    container.embedder.override(other)
    with serving(make_app(container=container)) as base:
        yield base, other


def test_another_models_archive_needs_reembed_which_re_embeds_the_texts(kb, other_model, tmp_path):
    target_url, other = other_model
    with running(tmp_path, "fake-model", KB_DATA_DIR=str(tmp_path / "data")) as source_url:
        with KBClient(source_url, retries=0) as source:
            source.create_knowledge_base("notes")
            source.add_documents("notes", DOCUMENTS)  # type: ignore[arg-type]
        copy = ["copy", "--kb", "notes", "--to", target_url]
        code, _, err = kb(*copy, at=source_url)
        assert code == 1 and "409" in err and "other-model" in err and "fake-model" in err, err
        code, _, err = kb(*copy, "--as", "moved", "--reembed", at=source_url)
        assert code == 0 and "as moved (3 documents" in err, err
        archive = tmp_path / "notes.kbar"
        assert kb("backup", "--kb", "notes", "--out", str(archive), at=source_url)[0] == 0
    embedded = {text for call in other.calls for text in call}
    assert {DOCUMENTS[0]["text"], DOCUMENTS[2]["text"]} <= embedded
    assert any(text.startswith("word0 word1") for text in embedded)  # the long one, by windows
    with KBClient(target_url, retries=0) as target:
        assert target.get_knowledge_base("moved")["model"] == "other-model"
        assert [d["id"] for d in target.iter_documents("moved")] == ["apples", "b/long", "unicode"]
    code, _, err = kb("restore", str(archive), at=target_url)
    assert code == 1 and "409" in err and "other-model" in err, err
    other.calls.clear()
    code, _, err = kb("restore", str(archive), "--reembed", at=target_url)
    assert code == 0 and "restored notes" in err, err
    assert any("Apples are red and sweet." in call for call in other.calls)


def test_copy_sends_each_service_its_own_api_key(make_app, capsys, tmp_path):
    source_key, target_key = "source-key-0123456789", "target-key-0123456789"
    with (
        serving(make_app(api_keys=source_key)) as source,
        running(tmp_path, "keyed", KB_API_KEYS=target_key) as target,
    ):
        with KBClient(source, source_key) as client:
            client.create_knowledge_base("kb")
            client.add_document("kb", "hello", id="h")
        command = ["copy", "--kb", "kb", "--to", target, "--url", source, "--retries", "0"]
        assert main([*command, "--api-key", source_key]) == 1
        assert "401" in capsys.readouterr().err
        assert main([*command, "--api-key", source_key, "--to-api-key", target_key]) == 0
        with KBClient(target, target_key) as copied:
            assert copied.get_document("kb", "h")["text"] == "hello"


class InterruptedWait(KBClient):
    """A client whose wait for a job is interrupted (Ctrl-C); records what it cancels."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", retries=0)
        self.cancelled: list[str] = []

    def wait_for_job(self, id: str, *args: Any, **kwargs: Any) -> Job:
        raise KeyboardInterrupt

    def cancel_job(self, id: str) -> Job:
        self.cancelled.append(id)
        return cast(Job, {"id": id, "status": "running", "cancel_requested": True})


def test_ctrl_c_while_following_a_restore_cancels_its_job():
    client, console = InterruptedWait(), Console(file=io.StringIO())
    job = cast(Job, {"id": "j1", "status": "running", "done": 1, "total": 9})
    with pytest.raises(KeyboardInterrupt):
        follow_job(client, job, console, "restoring notes", enabled=False)
    assert client.cancelled == ["j1"]
    assert "cancelled job j1" in console.file.getvalue()  # type: ignore[attr-defined]

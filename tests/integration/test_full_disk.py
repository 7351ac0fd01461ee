"""A full disk under the memory backend: 507 naming the data folder, nothing lost, writes resume."""

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from adapters.sqlite.writes import disk_full
from domain.errors import StorageError
from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder

DOCS = "/v1/knowledge-bases/kb/documents"
MAX_BATCHES = 2000  # 20 MB fills in far fewer; a bound so that a broken test cannot loop for ever


@pytest.fixture(params=["tmpfs", "ext4"])
def small_disk(request, tmp_path):
    """A 20 MB filesystem of our own, unmounted afterwards (mounting needs root, as in CI).

    ext4 on a loop device as well as tmpfs: ext4 is where a freed disk was found to stay
    unwritable (a WAL of megabytes kept), tmpfs is what any Linux machine can mount.
    """
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(folder)]
    else:
        image = tmp_path / "disk.img"
        with image.open("wb") as file:
            file.truncate(20 * 2**20)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"mkfs.ext4 (e2fsprogs) is needed for an ext4 image: {made.stderr!r}")
        command = ["mount", "-o", "loop", str(image), str(folder)]
    mounted = subprocess.run(command, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a small filesystem of our own: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk with a file, then give `leave` bytes back."""
    filler = disk / "filler"
    # Unbuffered: a buffered file would keep the bytes that did not fit and fail again on close.
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def batch(number: int, size: int = 5) -> list[dict[str, str]]:
    return [
        {"id": f"b{number}-{j}", "text": " ".join(f"b{number}d{j}w{i}" for i in range(300))}
        for j in range(size)
    ]


def start(data_dir: Path):
    app = create_app(Settings(data_dir=str(data_dir)), embedder=FakeEmbedder())
    return app, app.test_client()


def write_until_refused(client, acknowledged: dict[str, str], expect_error) -> tuple[dict, list]:
    for number in range(MAX_BATCHES):
        documents = batch(number)
        response = client.post(DOCS, json={"documents": documents})
        if response.status_code == 201:
            acknowledged.update((doc["id"], doc["text"]) for doc in documents)
            continue
        return expect_error(response, 507), [doc["id"] for doc in documents]
    raise AssertionError("the disk never filled up")


def assert_all_there(client, acknowledged: dict[str, str], refused: list[str]) -> None:
    assert client.get("/v1/knowledge-bases/kb").get_json()["document_count"] == len(acknowledged)
    for doc_id, text in acknowledged.items():
        assert client.get(f"{DOCS}/{doc_id}").get_json()["text"] == text
    for doc_id in refused:
        assert client.get(f"{DOCS}/{doc_id}").status_code == 404
    some = sorted(acknowledged)[len(acknowledged) // 2]
    opening = " ".join(acknowledged[some].split()[:10])  # within its first chunk
    found = client.post("/v1/knowledge-bases/kb/search", json={"query": opening})
    assert found.get_json()["hits"][0]["id"] == some


def test_a_full_disk_is_a_507_naming_the_data_folder_and_writes_resume_once_space_is_freed(
    small_disk, expect_error
):
    data_dir, acknowledged = small_disk / "kb-data", {}
    app, client = start(data_dir)
    try:
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
        filler = fill(small_disk, leave=3 * 2**20)
        refused_body, refused = write_until_refused(client, acknowledged, expect_error)
        assert str(data_dir) in refused_body["message"] and "KB_DATA_DIR" in refused_body["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and str(data_dir) in ready.get_json()["message"]
        assert len(acknowledged) > 20, "too few writes were acknowledged to prove anything"
        assert_all_there(client, acknowledged, refused)
    finally:
        close_app(app)

    app, client = start(data_dir)  # a restart while the disk is still full
    # Taking back the keyword index's file (KB_DATA_DIR/indexes) may give back part of its
    # log (1.4 MB seen on tmpfs): fill that too.
    filler = fill(small_disk, leave=0)
    try:
        assert_all_there(client, acknowledged, refused)
        bigger = batch(MAX_BATCHES, size=20)  # than the one refused: it cannot fit either
        expect_error(client.post(DOCS, json={"documents": bigger}), 507)
        refused += [doc["id"] for doc in bigger]
        some = next(iter(acknowledged))
        long_text = " ".join(f"{'y' * 95}{i:04d}" for i in range(4000))  # 400 KB
        expect_error(client.put(f"{DOCS}/{some}", json={"text": long_text}), 507)
        assert client.get(f"{DOCS}/{some}").get_json()["text"] == acknowledged[some]
        assert client.get("/readyz").status_code == 503

        # A little more than the WAL holds (3 MB): room for its checkpoint, not for much else.
        os.truncate(filler, filler.stat().st_size - 5 * 2**20)
        assert client.get("/readyz").status_code == 200
        # The WAL's megabytes were copied into the database and given back (on ext4 they stayed).
        assert (data_dir / "kb.sqlite3-wal").stat().st_size == 0
        again = {"id": "after", "text": "written once space was freed"}
        assert client.post(DOCS, json=again).status_code == 201
        acknowledged[again["id"]] = again["text"]
        assert client.get("/readyz").status_code == 200
    finally:
        close_app(app)

    app, client = start(data_dir)
    try:
        assert_all_there(client, acknowledged, refused)
    finally:
        close_app(app)


def test_an_io_error_counts_as_a_full_disk_only_when_the_disk_has_no_room(small_disk, tmp_path):
    # What SQLite raises when growing its -shm file fails: ENOSPC then reads as an I/O error.
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 10 | (19 << 8)  # SQLITE_IOERR_SHMSIZE
    assert not disk_full(error, tmp_path)
    fill(small_disk, leave=0)
    assert disk_full(error, small_disk)


def test_a_new_data_folder_on_a_full_disk_is_refused_with_a_message_then_made_once_there_is_room(
    small_disk,
):
    data_dir = small_disk / "kb-data"
    data_dir.mkdir()
    filler = fill(small_disk, leave=0)
    with pytest.raises(StorageError, match=f"data folder {data_dir} \\(KB_DATA_DIR\\)"):
        start(data_dir)
    assert not (data_dir / "kb.sqlite3").exists()
    filler.unlink()
    app, client = start(data_dir)
    try:
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    finally:
        close_app(app)
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "indexes",
        "kb.sqlite3",
        "kb.sqlite3.lock",
    ]

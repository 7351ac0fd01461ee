"""bench/service.py starts the service the benchmarks measure, on either backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.service import start_service

from model_folder import l6_folder

pytestmark = [pytest.mark.server, pytest.mark.model]


def test_a_postgres_service_gets_a_private_database_for_the_run(monkeypatch, tmp_path):
    monkeypatch.delenv("KB_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    with start_service(
        l6_folder(), str(data_dir), threads=4, backend="postgres", quiet=True, workers=1
    ) as service:
        client = service.client(timeout=60.0)
        assert client.info()["backend"] == "postgres"
        assert service.settings["KB_WORKERS"] == "1"
        assert "pgserver" in service.describe() and "1 worker;" in service.describe()
        client.create_kb("bench")
        client.add_documents("bench", [{"id": "bread", "text": "A man eats bread."}])
        assert [hit["id"] for hit in client.search("bench", query="bread", top_k=1)] == ["bread"]
    assert (data_dir / "postgres" / "PG_VERSION").is_file()  # kept under a given data dir
    assert not _postgres_running(data_dir / "postgres")


def _postgres_running(folder: Path) -> bool:
    """Whether a postmaster still runs on `folder` (its postmaster.pid names a live process)."""
    pid_file = folder / "postmaster.pid"
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text().split()[0])
    return Path(f"/proc/{pid}").exists()

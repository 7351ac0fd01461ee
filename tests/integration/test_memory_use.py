"""The served worker gives back the model's working memory once a large add is done."""

import time
from pathlib import Path

import pytest

from model_folder import l6_folder
from server import Server

pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
pytestmark = [pytest.mark.model, pytest.mark.server]

# Two calls of 32 texts of 256 word pieces at once held ~0.7 GB in ONNX Runtime's arena for
# ever; what stays after such an add is the data and allocator slack, a few tens of MB.
MARGIN_MB = 150
SENTENCES = [
    "The committee reviewed the quarterly budget figures in detail.",
    "Spending on maintenance had risen for the third year running.",
    "Income from rents had fallen while the reserve fund shrank.",
    "Several members asked whether another such year could be absorbed.",
]


def long_text(n: int) -> str:
    """About 1,000 word pieces (four chunks), different for every n."""
    return " ".join(f"Item {n}.{k}: {SENTENCES[k % 4]}" for k in range(70))


def worker_rss_mb(server: Server) -> float:
    master = server.process.pid
    (worker,) = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def settled_rss_mb(server: Server, below: float, patience: float = 30.0) -> float:
    """The worker's size once it is under `below`, or after `patience` seconds if never."""
    deadline = time.monotonic() + patience
    while (size := worker_rss_mb(server)) > below and time.monotonic() < deadline:
        time.sleep(0.2)
    return size


def test_the_worker_gives_back_the_models_working_memory_after_a_large_add(tmp_path):
    server = Server(
        tmp_path / "server.log", KB_EMBEDDING_MODEL=l6_folder(), KB_EMBEDDING_RUNTIME="onnx"
    )
    try:
        server.wait_ready()
        assert server.call("POST", "/v1/knowledge-bases", {"name": "memory"})[0] == 201
        add = "/v1/knowledge-bases/memory/documents"
        assert server.call("POST", add, {"id": "warm", "text": "A short one."})[0] == 201
        before = settled_rss_mb(server, below=0.0, patience=1.0)
        documents = [{"id": f"long-{n}", "text": long_text(n)} for n in range(16)]
        status, body = server.call("POST", add, {"documents": documents})
        assert status == 201 and sum(item["chunks"] for item in body["items"]) >= 64
        after = settled_rss_mb(server, below=before + MARGIN_MB)
        assert after <= before + MARGIN_MB, f"{before:.0f} MB before, {after:.0f} MB after"
    finally:
        server.stop()

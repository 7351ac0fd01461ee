"""KB_EMBEDDING_PRECISION=int8: the quantised export is made once and reused, keeps the float32
answers, and is another model to knowledge bases (409 both ways, on both backends, archives too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from adapters.embedding import onnx_quantize
from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.onnx_cache import META_FILE, MODEL_FILE, TOKENIZER_FILE
from adapters.embedding.onnx_encoder import OnnxEncoder
from entrypoints.app import close_app, create_app
from model_folder import l6_folder, linked_export

pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
pytest.importorskip("onnx", reason="pip install onnx (quantising needs it)")
pytestmark = pytest.mark.model

TEXTS = [
    "Bicycles go in the locked cage in the basement garage; your badge opens the gate.",
    "how do penguins survive winter",
    "Penguins huddle together to survive the Antarctic winter.",
    "The stock market fell sharply on Monday.",
    "",
    "Naïve café-owners   don't panic.",
    "The committee reviewed the quarterly budget figures in detail. " * 40,
    "a religious ceremony in which something is made holy",
]
DOCS = [
    {"id": "bread", "text": "A man is eating a piece of bread."},
    {"id": "market", "text": "The stock market fell sharply on Monday."},
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of our own holding the packaged float32 export (linked: no export from torch)."""
    return linked_export(tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def float32(cache_dir: Path) -> CoalescingEmbedder:
    return CoalescingEmbedder(OnnxEncoder(l6_folder(), cache_dir=cache_dir))


@pytest.fixture(scope="module")
def int8(cache_dir: Path) -> CoalescingEmbedder:
    return CoalescingEmbedder(OnnxEncoder(l6_folder(), cache_dir=cache_dir, precision="int8"))


def test_int8_vectors_stay_close_to_float32_and_rank_alike(float32, int8):
    exact, quantised = float32.embed(TEXTS), int8.embed(TEXTS)
    cosines = (exact * quantised).sum(axis=1)
    # The empty text (two word pieces) strays most: 0.971 measured.
    assert cosines[[i for i, text in enumerate(TEXTS) if text]].mean() >= 0.99, cosines
    assert cosines.min() >= onnx_quantize.MIN_AGREEMENT, cosines
    assert not np.array_equal(exact, quantised)  # really the int8 model
    query = int8.embed([TEXTS[1]])[0]
    assert int(np.argmax(quantised[2:4] @ query)) == 0  # penguins, not the stock market


def test_int8_is_another_model_whose_name_says_so(float32, int8):
    assert int8.model_name == f"{float32.model_name} (int8)"
    assert int8.fingerprint != float32.fingerprint
    assert (int8.dimension, int8.max_seq_length) == (float32.dimension, float32.max_seq_length)


def test_the_quantised_model_is_cached_beside_the_export_and_reused(int8, monkeypatch):
    encoder = int8.encoder
    assert encoder.model_file == encoder.export_dir / onnx_quantize.QUANTISED_FILE
    marker = json.loads((encoder.export_dir / onnx_quantize.QUANTISED_META).read_text())
    source = json.loads((encoder.export_dir / META_FILE).read_text())["source"]
    assert marker["source"] == source and marker["agreement"] >= onnx_quantize.MIN_AGREEMENT
    before = encoder.model_file.stat().st_mtime_ns

    def no_quantising(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cached int8 model should have been reused")

    monkeypatch.setattr(onnx_quantize, "_write", no_quantising)
    again = CoalescingEmbedder(
        OnnxEncoder(l6_folder(), cache_dir=encoder.export_dir.parent, precision="int8")
    )
    assert encoder.model_file.stat().st_mtime_ns == before
    assert again.fingerprint == int8.fingerprint
    assert np.array_equal(again.embed(TEXTS[:3]), int8.embed(TEXTS[:3]))


def test_a_stale_quantised_model_is_made_again(int8, tmp_path):
    own = tmp_path / "export"
    own.mkdir()
    for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE):
        (own / name).symlink_to(int8.encoder.export_dir / name)
    meta = json.loads((own / META_FILE).read_text())
    (own / onnx_quantize.QUANTISED_FILE).write_bytes(b"not a model")
    stale = {"format": onnx_quantize.QUANTISED_FORMAT, "source": "an older export"}
    (own / onnx_quantize.QUANTISED_META).write_text(json.dumps(stale))
    path = onnx_quantize.quantised("l6", own, meta)
    assert path.read_bytes() == int8.encoder.model_file.read_bytes()
    assert json.loads((own / onnx_quantize.QUANTISED_META).read_text())["source"] == meta["source"]


@contextmanager
def serving(make_container: Any, embedder: CoalescingEmbedder, data: Path) -> Iterator[FlaskClient]:
    container = make_container(data_dir=str(data))
    container.embedder.override(embedder)
    app = create_app(container=container)
    app.config["TESTING"] = True
    try:
        yield app.test_client()
    finally:
        close_app(app)


@pytest.mark.both_backends
@pytest.mark.parametrize("made_by", ["float32", "int8"])
def test_one_precision_refuses_the_others_knowledge_base_with_409(
    made_by, float32, int8, make_container, expect_error, tmp_path
):
    maker, other = (float32, int8) if made_by == "float32" else (int8, float32)
    with serving(make_container, maker, tmp_path / "data") as client:
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
        added = client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
        assert added.status_code == 201
        archive = client.get("/v1/knowledge-bases/kb/archive").get_data()
    with serving(make_container, other, tmp_path / "data") as client:
        for request in (
            client.post("/v1/knowledge-bases/kb/search", json={"query": "bread"}),
            client.post("/v1/knowledge-bases/kb/documents", json={"text": "mixed?"}),
        ):
            body = expect_error(request, 409, "model")
            assert repr(maker.model_name) in body["message"]
            assert repr(other.model_name) in body["message"]
        restored = client.post(
            "/v1/knowledge-bases/moved/archive", data=archive, content_type="application/x-tar"
        )
        body = expect_error(restored, 409)
        assert repr(maker.model_name) in body["message"] and "reembed" in body["message"]
    with serving(make_container, maker, tmp_path / "data") as client:
        found = client.post("/v1/knowledge-bases/kb/search", json={"query": "someone eats bread"})
        assert found.status_code == 200 and found.get_json()["hits"][0]["id"] == "bread"

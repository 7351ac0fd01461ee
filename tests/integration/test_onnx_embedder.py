"""The ONNX Runtime encoder keeps the Embedder contract, gives torch's embeddings, exports once."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.embedding import onnx_cache, onnx_export
from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.onnx_encoder import OnnxEncoder
from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder
from contracts import EmbedderContract
from model_folder import l6_folder, model_copy

pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
pytestmark = pytest.mark.model

PARAGRAPH = (
    "The committee reviewed the quarterly budget figures in detail, and noted that spending "
    "on maintenance had risen for the third year running while income from rents had fallen. "
    "Several members asked whether the reserve fund could absorb another such year. "
)
TEXTS = [
    "This is an example sentence",
    "A man is eating a piece of bread.",
    "Someone is having some bread.",
    "The stock market fell sharply on Monday.",
    "how do penguins survive winter",
    "Penguins huddle together to survive the Antarctic winter.",
    "Naïve café-owners   don't panic.",
    "   leading and trailing whitespace   ",
    "UPPER CASE TEXT AND lower case text",
    "Numbers: 3.14159, 2,718 and 1e-10; dates 2024-05-17 and 17/05/2024.",
    "E-mail me at someone@example.org or visit https://example.org/path?q=1.",
    "Emoji 🙂 and symbols ∑ ∫ √ → ⇒ ©",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le vif renard brun saute par-dessus le chien paresseux.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "日本語のテキストも埋め込める。",
    "Русский текст тоже должен работать.",
    "a",
    "",
    "?",
    "def embed(texts): return model.encode(texts)",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    "one\ntwo\nthree\ttabbed",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy.",
    "The Treaty of Versailles was signed in 1919.",
    "Water boils at 100 degrees Celsius at sea level.",
    "She sells sea shells by the sea shore.",
    "To be, or not to be, that is the question.",
    "an upper deck where a ship is steered",
    "a religious ceremony in which something is made holy",
    "someone whose business involves importing goods from outside",
    "a series of hills or mountains",
    "the quality of being balanced",
    "training patients in self-induced relaxation",
    "word " * 20,
    "word " * 300,
    "antidisestablishmentarianism " * 40,
    PARAGRAPH,
    PARAGRAPH * 2,
    PARAGRAPH * 4,
    PARAGRAPH * 8,
    PARAGRAPH * 20,
    " ".join(f"token{i}" for i in range(400)),
    "x" * 3000,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 30,
    "Short.",
    "Medium length sentence about databases, vector search and cosine similarity.",
    "Knowledge bases rank documents by their best chunk's cosine similarity.",
    "Which documents are most like this one?",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir):
    return CoalescingEmbedder(OnnxEncoder(l6_folder(), cache_dir=cache_dir))


@pytest.fixture(scope="module")
def same_model(cache_dir):
    return CoalescingEmbedder(OnnxEncoder(l6_folder(), cache_dir=cache_dir))


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A max length of 128 instead of 256, run by torch (an export would take long): another
    model, whatever the runtime."""
    edits = {"sentence_bert_config.json": {"max_seq_length": 128}}
    folder = model_copy(tmp_path_factory.mktemp("short") / "minilm-128", edits)
    return CoalescingEmbedder(SentenceTransformerEncoder(str(folder)))


class TestOnnxEmbedderContract(EmbedderContract):
    """Runs on the module's `embedder`: one export for the whole module."""


def export_dir(embedder) -> Path:
    return embedder.encoder.export_dir


def test_embeddings_agree_with_the_torch_runtime(embedder):
    torch_vectors = CoalescingEmbedder(SentenceTransformerEncoder(l6_folder())).embed(TEXTS)
    onnx_vectors = embedder.embed(TEXTS)
    cosines = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= 0.9999, TEXTS[int(cosines.argmin())][:80]


def test_a_cached_export_is_reused_without_exporting_again(embedder, cache_dir, monkeypatch):
    model_file = export_dir(embedder) / onnx_cache.MODEL_FILE
    assert model_file.is_file() and Path(cache_dir) in model_file.parents
    before = model_file.stat().st_mtime_ns, (model_file.parent / "export.json").stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(onnx_export, "_export_to", no_export)
    again = CoalescingEmbedder(OnnxEncoder(l6_folder(), cache_dir=cache_dir))
    assert export_dir(again) == export_dir(embedder)
    after = model_file.stat().st_mtime_ns, (model_file.parent / "export.json").stat().st_mtime_ns
    assert after == before
    assert np.array_equal(again.embed(TEXTS[:5]), embedder.embed(TEXTS[:5]))


def linked_model_folder(folder: Path) -> Path:
    """A model folder of our own: symlinks to the packaged files, so nothing is copied."""
    source = Path(l6_folder())
    for path in source.rglob("*"):
        if path.is_file() and "onnx" not in path.relative_to(source).parts:
            target = folder / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return folder


def test_the_service_searches_with_the_onnx_runtime_and_measures_its_batches(embedder, tmp_path):
    from entrypoints.app import close_app, create_app
    from entrypoints.settings import Settings

    # The same files, so the module's export (linked in where the service looks) is current.
    folder = linked_model_folder(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "kb-service").symlink_to(export_dir(embedder), target_is_directory=True)
    settings = Settings(data_dir=":memory:", embedding_model=str(folder), embedding_runtime="onnx")
    app = create_app(settings)
    try:
        assert isinstance(app.extensions["kb_container"].embedder().inner.encoder, OnnxEncoder)
        client = app.test_client()
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
        documents = [
            {"id": "paraphrase", "text": "A man is eating a piece of bread."},
            {"id": "unrelated", "text": "The stock market fell sharply on Monday."},
        ]
        added = client.post("/v1/knowledge-bases/kb/documents", json={"documents": documents})
        assert added.status_code == 201
        found = client.post(
            "/v1/knowledge-bases/kb/search", json={"query": "Someone is having some bread."}
        )
        assert found.status_code == 200
        assert [hit["id"] for hit in found.json["hits"]] == ["paraphrase", "unrelated"]
        metrics = client.get("/metrics").get_data(as_text=True)
        counts = [
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "kb_model_batch_size_sum"
        ]
        assert counts == [3.0]  # two documents, then one query, each through the coalescer
    finally:
        close_app(app)


def test_the_default_runtime_is_onnx_runtime_where_the_model_exports(embedder, tmp_path):
    from entrypoints.container import Container
    from entrypoints.settings import Settings

    folder = linked_model_folder(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "kb-service").symlink_to(export_dir(embedder), target_is_directory=True)
    settings = Settings(data_dir=":memory:", embedding_model=str(folder))
    assert settings.embedding_runtime == "auto"
    chosen = Container(settings=settings).embedder()
    assert isinstance(chosen.inner.encoder, OnnxEncoder)
    assert np.array_equal(chosen.embed(TEXTS[:3]), embedder.embed(TEXTS[:3]))


def test_the_export_sits_beside_a_writable_model_and_follows_its_changes(tmp_path):
    folder = linked_model_folder(tmp_path / "model")
    first = CoalescingEmbedder(OnnxEncoder(str(folder)))
    assert export_dir(first) == folder / "onnx" / "kb-service"
    exported = (export_dir(first) / onnx_cache.MODEL_FILE).stat().st_mtime_ns

    # The model's files change: the old export is stale and is replaced.
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.unlink()
    readme.write_text(text + "\nEdited.\n", encoding="utf-8")
    second = CoalescingEmbedder(OnnxEncoder(str(folder)))
    assert (export_dir(second) / onnx_cache.MODEL_FILE).stat().st_mtime_ns != exported
    assert np.allclose(second.embed(TEXTS[:3]), first.embed(TEXTS[:3]), atol=1e-6)
    assert not [p for p in export_dir(second).iterdir() if p.name.startswith(".export-")]


def test_a_hub_cache_snapshot_is_exported_into_the_user_cache(tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    where = onnx_cache.export_dir_for(snapshot, None)
    assert tmp_path / "xdg" / "kb-service" / "onnx" in where.parents
    assert not (snapshot / "onnx").exists()
    # A chosen cache folder wins over both places.
    assert onnx_cache.export_dir_for(snapshot, tmp_path / "c").parent == tmp_path / "c"


def test_a_read_only_model_folder_is_exported_into_the_user_cache(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_access = os.access
    monkeypatch.setattr(
        onnx_cache.os,
        "access",
        lambda path, mode: False if Path(path) == folder else real_access(path, mode),
    )
    where = onnx_cache.export_dir_for(folder, None)
    assert tmp_path / "xdg" / "kb-service" / "onnx" in where.parents


def test_without_onnxruntime_the_error_names_the_package(monkeypatch):
    from domain.errors import ModelUnavailableError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ModelUnavailableError, match="pip install onnxruntime"):
        OnnxEncoder(l6_folder())

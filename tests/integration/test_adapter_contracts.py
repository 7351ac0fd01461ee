"""The real adapters pass the port contracts."""

import pytest

from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.caching import CachingEmbedder
from adapters.embedding.vector_cache import VectorCache
from adapters.faiss.index import FaissVectorIndex
from adapters.memory.job_store import InMemoryJobStore
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
from adapters.sqlite.job_store import SqliteJobStore
from adapters.sqlite.repository import SqliteDocumentRepository
from contracts import (
    DocumentRepositoryContract,
    EmbedderContract,
    JobStoreContract,
    KeywordIndexContract,
    VectorIndexContract,
)
from fakes import FakeEncoder


class TestFaissVectorIndex(VectorIndexContract):
    @pytest.fixture
    def make_index(self):
        return FaissVectorIndex


class TestInMemoryDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self):
        return InMemoryDocumentRepository


class TestFts5KeywordIndex(KeywordIndexContract):
    @pytest.fixture
    def make_keywords(self):
        return Fts5KeywordIndex

    @pytest.fixture
    def make_kept_keywords(self, tmp_path):
        return lambda: Fts5KeywordIndex(tmp_path / "indexes" / "kb.1.fts")


class TestCoalescingEmbedder(EmbedderContract):
    """The batching wrapper over a fake encoder; test_onnx_embedder and test_real_model bind it
    over the two real encoders (the model loads once per module there)."""

    @pytest.fixture
    def embedder(self):
        return CoalescingEmbedder(FakeEncoder(), batch_size=4)

    @pytest.fixture
    def same_model(self):
        return CoalescingEmbedder(FakeEncoder(), batch_size=8)

    @pytest.fixture
    def other_model(self):
        return CoalescingEmbedder(FakeEncoder(window=8), batch_size=4)


class TestCachingEmbedder(EmbedderContract):
    """The cache in front of the batching wrapper, as the container builds it; a small bound,
    so the contract also runs while entries are being evicted."""

    @pytest.fixture
    def embedder(self):
        return CachingEmbedder(CoalescingEmbedder(FakeEncoder(), batch_size=4), VectorCache(4096))

    @pytest.fixture
    def same_model(self):
        return CachingEmbedder(CoalescingEmbedder(FakeEncoder()), VectorCache(2**20))

    @pytest.fixture
    def other_model(self):
        return CachingEmbedder(CoalescingEmbedder(FakeEncoder(window=8)), VectorCache(2**20))


class TestInMemoryJobStore(JobStoreContract):
    @pytest.fixture
    def make_job_store(self):
        return InMemoryJobStore


class TestSqliteJobStore(JobStoreContract):
    """On the memory backend's file, opened (and migrated) by its repository first."""

    @pytest.fixture
    def make_job_store(self, tmp_path):
        path = tmp_path / "kb.sqlite3"
        repository = SqliteDocumentRepository(path)
        stores = []

        def make():
            stores.append(SqliteJobStore(path))
            return stores[-1]

        yield make
        for store in stores:
            store.close()
        repository.close()

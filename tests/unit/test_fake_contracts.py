"""The fakes the unit tests rely on honour the same contracts as the real adapters."""

import pytest

from contracts import (
    DocumentRepositoryContract,
    EmbedderContract,
    JobStoreContract,
    KeywordIndexContract,
    VectorIndexContract,
)
from fakes import (
    FakeDocumentRepository,
    FakeEmbedder,
    FakeJobStore,
    FakeKeywordIndex,
    FakeVectorIndex,
)


class TestFakeVectorIndex(VectorIndexContract):
    @pytest.fixture
    def make_index(self):
        return FakeVectorIndex


class TestFakeDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self):
        return FakeDocumentRepository


class TestFakeKeywordIndex(KeywordIndexContract):
    @pytest.fixture
    def make_keywords(self):
        return FakeKeywordIndex

    @pytest.fixture
    def make_kept_keywords(self):
        kept: dict[str, str] = {}
        return lambda: FakeKeywordIndex(kept)


class TestFakeEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self):
        return FakeEmbedder()

    @pytest.fixture
    def same_model(self):
        return FakeEmbedder()

    @pytest.fixture
    def other_model(self):
        return FakeEmbedder(window=8)


class TestFakeJobStore(JobStoreContract):
    @pytest.fixture
    def make_job_store(self):
        return FakeJobStore

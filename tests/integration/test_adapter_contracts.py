"""The real adapters pass the port contracts."""

import pytest

from adapters.faiss_index import FaissVectorIndex
from adapters.fts_keyword_index import Fts5KeywordIndex
from adapters.memory_repository import InMemoryDocumentRepository
from contracts import DocumentRepositoryContract, KeywordIndexContract, VectorIndexContract


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

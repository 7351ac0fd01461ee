"""The real adapters pass the port contracts."""

import pytest

from adapters.faiss.index import FaissVectorIndex
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
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

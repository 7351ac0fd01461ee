"""The real adapters pass the port contracts."""

import pytest

from adapters.faiss_index import FaissVectorIndex
from adapters.memory_repository import InMemoryDocumentRepository
from contracts import DocumentRepositoryContract, VectorIndexContract


class TestFaissVectorIndex(VectorIndexContract):
    @pytest.fixture
    def make_index(self):
        return FaissVectorIndex


class TestInMemoryDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self):
        return InMemoryDocumentRepository

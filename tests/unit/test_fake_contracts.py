"""The fakes the unit tests rely on honour the same contracts as the real adapters."""

import pytest

from contracts import DocumentRepositoryContract, VectorIndexContract
from fakes import FakeDocumentRepository, FakeVectorIndex


class TestFakeVectorIndex(VectorIndexContract):
    @pytest.fixture
    def make_index(self):
        return FakeVectorIndex


class TestFakeDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self):
        return FakeDocumentRepository

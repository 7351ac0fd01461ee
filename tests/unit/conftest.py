import pytest

from domain.ports import by_dimension
from domain.services import KnowledgeBaseService
from fakes import FakeDocumentRepository, FakeEmbedder, FakeVectorIndex


@pytest.fixture
def embedder():
    return FakeEmbedder(dimension=32, window=16)


@pytest.fixture
def repository():
    return FakeDocumentRepository()


@pytest.fixture
def service(embedder, repository):
    return KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex))


@pytest.fixture
def kb(service):
    return service.create_knowledge_base("kb").name

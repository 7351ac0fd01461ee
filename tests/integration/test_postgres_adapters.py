"""The `postgres` backend's adapters pass the port contracts, against a real PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.postgres.database import PostgresDatabase
from adapters.postgres.job_store import PostgresJobStore
from adapters.postgres.keyword_index import PgKeywordIndex
from adapters.postgres.pgvector_index import PgVectorIndex
from adapters.postgres.repository import PostgresDocumentRepository
from contracts import (
    DocumentRepositoryContract,
    JobStoreContract,
    KeywordIndexContract,
    VectorIndexContract,
    make_kb,
)


@pytest.fixture
def database(pg_database: PostgresDatabase) -> PostgresDatabase:
    return pg_database


def knowledge_base(database: PostgresDatabase, dimension: int) -> str:
    PostgresDocumentRepository(database).add_knowledge_base(make_kb("kb", dimension))
    return "kb"


class TestPostgresDocumentRepository(DocumentRepositoryContract):
    @pytest.fixture
    def make_repository(self, database):
        return lambda: PostgresDocumentRepository(database)


class TestPgVectorIndexExact(VectorIndexContract):
    @pytest.fixture
    def make_index(self, database):
        return lambda dimension: PgVectorIndex(
            database, knowledge_base(database, dimension), dimension
        )


class BuiltPgVectorIndex(PgVectorIndex):
    """Builds its HNSW index after every add, so every search goes through it."""

    def add(self, labels, vectors):
        super().add(labels, vectors)
        assert self.build_index()


class TestPgVectorIndexHnsw(VectorIndexContract):
    """Every search through the HNSW index (exact_limit=0)."""

    @pytest.fixture
    def make_index(self, database):
        return lambda dimension: BuiltPgVectorIndex(
            database,
            knowledge_base(database, dimension),
            dimension,
            exact_limit=0,
            background=False,
        )


class TestPgKeywordIndex(KeywordIndexContract):
    KEEPS_A_COPY = False  # kb_keywords is the store's own table

    @pytest.fixture
    def make_keywords(self, database):
        return lambda: PgKeywordIndex(database, knowledge_base(database, 8))

    @pytest.fixture
    def make_kept_keywords(self, database):
        name = knowledge_base(database, 8)
        return lambda: PgKeywordIndex(database, name)


class TestPostgresJobStore(JobStoreContract):
    @pytest.fixture
    def make_job_store(self, database):
        return lambda: PostgresJobStore(database)

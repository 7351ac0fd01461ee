"""The `postgres` backend: documents, vectors and keywords in PostgreSQL tables (pgvector)."""

from __future__ import annotations

from collections.abc import Iterator

from dependency_injector import containers, providers

from adapters.postgres.database import PostgresDatabase
from adapters.postgres.job_store import PostgresJobStore
from adapters.postgres.keyword_index import PgKeywordIndex
from adapters.postgres.pgvector_index import PgVectorIndex
from adapters.postgres.repository import PostgresDocumentRepository
from domain.ports import KeywordIndexFactory, VectorIndexFactory
from entrypoints.settings import Settings


def postgres_database(url: str, pool_size: int, timeout: int) -> Iterator[PostgresDatabase]:
    """The pool every `postgres` adapter shares; the schema is migrated before it opens."""
    database = PostgresDatabase(url, pool_size, timeout=timeout)
    try:
        yield database
    finally:
        database.close()


def postgres_indexes(database: PostgresDatabase, exact_limit: int) -> VectorIndexFactory:
    return lambda kb: PgVectorIndex(database, kb.name, kb.dimension, exact_limit)


def postgres_keywords(database: PostgresDatabase) -> KeywordIndexFactory:
    return lambda kb: PgKeywordIndex(database, kb.name)


def check_database(url: str) -> None:
    """Connect once, creating or migrating the schema, before any worker starts.

    A foreign or newer schema, or a database that cannot be reached, stops start-up at once.
    """
    PostgresDatabase(url, pool_size=1).close()


def database_state(database: PostgresDatabase) -> str:
    """StorageUnavailableError unless the database answers within KB_DATABASE_TIMEOUT."""
    database.ping()
    return "reachable"


class PostgresBackend(containers.DeclarativeContainer):
    """Storage shared by many workers and replicas: every write commits as one transaction."""

    settings = providers.Dependency(instance_of=Settings)

    database = providers.Resource(
        postgres_database,
        url=settings.provided.database_url,
        pool_size=settings.provided.database_pool_size,
        timeout=settings.provided.database_timeout,
    )
    repository = providers.Singleton(PostgresDocumentRepository, database)
    index_factory = providers.Callable(
        postgres_indexes, database, exact_limit=settings.provided.exact_search_limit
    )
    keyword_factory = providers.Callable(postgres_keywords, database)
    job_store = providers.Singleton(PostgresJobStore, database)
    # Workers and replicas share the table: another's job is lost only once it stops beating.
    jobs_exclusive = providers.Object(False)
    # Each write's rows, vectors and keywords commit together; a search reads one snapshot.
    transaction = database.provided.transaction
    snapshot = database.provided.snapshot
    check_storage = providers.Callable(check_database, url=settings.provided.database_url)
    storage_state = providers.Callable(database_state, database)

"""The dependency-injector container: the only module that names concrete adapters."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from dependency_injector import containers, providers

from adapters.faiss_index import FaissVectorIndex
from adapters.fts_keyword_index import Fts5KeywordIndex
from adapters.memory_repository import InMemoryDocumentRepository
from adapters.model_loader import resolve_model
from adapters.onnx_embedder import OnnxEmbedder
from adapters.pgvector_index import PgVectorIndex
from adapters.postgres_database import PostgresDatabase
from adapters.postgres_keyword_index import PgKeywordIndex
from adapters.postgres_repository import PostgresDocumentRepository
from adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from adapters.sqlite_repository import SqliteDocumentRepository
from domain.errors import ModelUnavailableError
from domain.model import KnowledgeBase
from domain.ports import (
    DocumentRepository,
    Embedder,
    KeywordIndexFactory,
    VectorIndexFactory,
    by_dimension,
)
from domain.services import KnowledgeBaseService

__all__ = ["Container", "check_storage", "resolve_model"]

DATABASE_FILE = "kb.sqlite3"

log = logging.getLogger(__name__)


def make_embedder(
    runtime: str,
    model: str,
    device: str,
    batch_size: int,
    observer: Callable[[int, float], None] | None,
) -> Embedder:
    """KB_EMBEDDING_RUNTIME: the same model run by ONNX Runtime (`onnx`) or by torch (`torch`).

    `auto` is ONNX Runtime where it can run the model: on the CPU, with an export of the model
    (made and checked against torch at the first start, then cached). A model the exporter
    cannot handle, or a missing package, falls back to torch with a warning that says why; so
    does any device but the CPU. Both batch their callers through a coalescer that tells
    `observer` about every model call.
    """
    if runtime == "onnx" or (runtime == "auto" and device == "cpu"):
        try:
            return OnnxEmbedder(model, batch_size, observer=observer)
        except ModelUnavailableError as error:
            if runtime == "onnx":
                raise
            log.warning("ONNX Runtime cannot run %s, so torch will: %s", model, error.message)
    return SentenceTransformerEmbedder(
        model, device=device, batch_size=batch_size, observer=observer
    )


def memory_repository(backend: str, data_dir: str) -> Iterator[DocumentRepository | None]:
    """RAM only for KB_DATA_DIR=:memory:, else RAM backed by a SQLite file in KB_DATA_DIR.

    None on other backends (init_resources() starts every resource, selected or not).
    """
    if backend != "memory":
        yield None
        return
    if data_dir == ":memory:":
        yield InMemoryDocumentRepository()
        return
    repository = SqliteDocumentRepository(Path(data_dir) / DATABASE_FILE)
    try:
        yield repository
    finally:
        repository.close()


def fts5_keywords(kb: KnowledgeBase) -> Fts5KeywordIndex:
    """Each knowledge base's keyword index lives in this process (rebuilt at start)."""
    return Fts5KeywordIndex()


def postgres_database(
    backend: str, url: str, pool_size: int, timeout: int
) -> Iterator[PostgresDatabase | None]:
    """The pool every `postgres` adapter shares; the schema is migrated before it opens.

    None on other backends (init_resources() starts every resource, selected or not).
    """
    if backend != "postgres":
        yield None
        return
    database = PostgresDatabase(url, pool_size, timeout=timeout)
    try:
        yield database
    finally:
        database.close()


def postgres_indexes(database: PostgresDatabase, exact_limit: int) -> VectorIndexFactory:
    return lambda kb: PgVectorIndex(database, kb.name, kb.dimension, exact_limit)


def postgres_keywords(database: PostgresDatabase) -> KeywordIndexFactory:
    return lambda kb: PgKeywordIndex(database, kb.name)


def check_storage(backend: str, data_dir: str, database_url: str = "") -> None:
    """Open the store once, so a foreign or newer file or database stops start-up at once.

    For PostgreSQL this also creates or migrates the schema, once, before workers start.
    """
    if backend == "memory" and data_dir != ":memory:":
        SqliteDocumentRepository.check(Path(data_dir) / DATABASE_FILE)
    if backend == "postgres":
        PostgresDatabase(database_url, pool_size=1).close()


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(packages=["entrypoints.blueprints"])

    config = providers.Configuration(strict=True)
    # Told the size and duration of every model batch; the app overrides it to feed /metrics.
    batch_observer: providers.Object[Callable[[int, float], None] | None] = providers.Object(None)

    embedder = providers.Singleton(
        make_embedder,
        runtime=config.embedding_runtime,
        model=config.embedding_model,
        device=config.device,
        batch_size=config.embed_batch_size,
        observer=batch_observer,
    )
    database = providers.Resource(
        postgres_database,
        backend=config.backend,
        url=config.database_url,
        pool_size=config.database_pool_size,
        timeout=config.database_timeout,
    )
    repository = providers.Selector(
        config.backend,
        memory=providers.Resource(
            memory_repository, backend=config.backend, data_dir=config.data_dir
        ),
        postgres=providers.Singleton(PostgresDocumentRepository, database),
    )
    index_factory = providers.Selector(
        config.backend,
        memory=providers.Callable(
            by_dimension,
            providers.Callable(
                functools.partial, FaissVectorIndex, ann_threshold=config.ann_threshold
            ),
        ),
        postgres=providers.Callable(
            postgres_indexes, database, exact_limit=config.exact_search_limit
        ),
    )
    keyword_factory = providers.Selector(
        config.backend,
        memory=providers.Object(fts5_keywords),
        postgres=providers.Callable(postgres_keywords, database),
    )
    # PostgreSQL commits each write's rows, vectors and keywords together; RAM needs no unit.
    transaction = providers.Selector(
        config.backend,
        memory=providers.Object(contextlib.nullcontext),
        postgres=database.provided.transaction,
    )
    snapshot = providers.Selector(
        config.backend,
        memory=providers.Object(contextlib.nullcontext),
        postgres=database.provided.snapshot,
    )
    service = providers.Singleton(
        KnowledgeBaseService,
        embedder=embedder,
        repository=repository,
        index_factory=index_factory,
        keyword_factory=keyword_factory,
        transaction=transaction,
        snapshot=snapshot,
    )

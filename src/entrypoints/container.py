"""The dependency-injector container: the only module that names concrete adapters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

from dependency_injector import containers, providers

from adapters.faiss_index import FaissVectorIndex
from adapters.fts_keyword_index import Fts5KeywordIndex
from adapters.memory_repository import InMemoryDocumentRepository
from adapters.model_loader import resolve_model
from adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from adapters.sqlite_repository import SqliteDocumentRepository
from domain.model import KnowledgeBase
from domain.ports import DocumentRepository, by_dimension
from domain.services import KnowledgeBaseService

__all__ = ["Container", "check_storage", "resolve_model"]

DATABASE_FILE = "kb.sqlite3"


def memory_repository(data_dir: str) -> Iterator[DocumentRepository]:
    """RAM only for KB_DATA_DIR=:memory:, else RAM backed by a SQLite file in KB_DATA_DIR."""
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


def check_storage(backend: str, data_dir: str) -> None:
    """Open and close the store once, so a foreign or newer file stops start-up at once."""
    if backend == "memory" and data_dir != ":memory:":
        SqliteDocumentRepository.check(Path(data_dir) / DATABASE_FILE)


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(packages=["entrypoints.blueprints"])

    config = providers.Configuration(strict=True)
    # Told the size and duration of every model batch; the app overrides it to feed /metrics.
    batch_observer: providers.Object[Callable[[int, float], None] | None] = providers.Object(None)

    embedder = providers.Singleton(
        SentenceTransformerEmbedder,
        model=config.embedding_model,
        device=config.device,
        batch_size=config.embed_batch_size,
        observer=batch_observer,
    )
    repository = providers.Selector(
        config.backend,
        memory=providers.Resource(memory_repository, data_dir=config.data_dir),
    )
    index_factory = providers.Selector(
        config.backend,
        memory=providers.Callable(
            by_dimension,
            providers.Callable(
                functools.partial, FaissVectorIndex, ann_threshold=config.ann_threshold
            ),
        ),
    )
    keyword_factory = providers.Selector(
        config.backend,
        memory=providers.Object(fts5_keywords),
    )
    service = providers.Singleton(
        KnowledgeBaseService,
        embedder=embedder,
        repository=repository,
        index_factory=index_factory,
        keyword_factory=keyword_factory,
    )

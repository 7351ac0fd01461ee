"""The dependency-injector container: the only module that names concrete adapters."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.faiss_index import FaissVectorIndex
from adapters.memory_repository import InMemoryDocumentRepository
from adapters.model_loader import resolve_model
from adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from domain.services import KnowledgeBaseService

__all__ = ["Container", "resolve_model"]


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(packages=["entrypoints.blueprints"])

    config = providers.Configuration(strict=True)

    embedder = providers.Singleton(
        SentenceTransformerEmbedder,
        model=config.embedding_model,
        device=config.device,
        batch_size=config.embed_batch_size,
    )
    repository = providers.Selector(
        config.backend,
        memory=providers.Singleton(InMemoryDocumentRepository),
    )
    index_factory = providers.Selector(
        config.backend,
        memory=providers.Object(FaissVectorIndex),
    )
    service = providers.Singleton(
        KnowledgeBaseService,
        embedder=embedder,
        repository=repository,
        index_factory=index_factory,
    )

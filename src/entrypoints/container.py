"""The dependency-injector container: with its backend bundles, the only code naming adapters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from operator import attrgetter

from dependency_injector import containers, providers

from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.caching import CacheObserver, CachingEmbedder
from adapters.embedding.encoder import Encoder
from adapters.embedding.model_loader import resolve_model
from adapters.embedding.onnx_encoder import OnnxEncoder
from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder
from adapters.embedding.vector_cache import VectorCache
from adapters.extraction.sandbox import SandboxedTextExtractor
from domain.errors import ModelUnavailableError
from domain.extraction import FileLimits, TextExtractor
from domain.files import FileIngester
from domain.job_runner import Jobs
from domain.jobs import JobStore
from domain.ports import Embedder
from domain.services import KnowledgeBaseService
from entrypoints.backends import MemoryBackend, PostgresBackend
from entrypoints.settings import Settings

__all__ = ["Container", "resolve_model"]

log = logging.getLogger(__name__)


def make_embedder(
    runtime: str,
    model: str,
    device: str,
    batch_size: int,
    observer: Callable[[int, float], None] | None,
    cache_mb: int = 0,
    cache_observer: CacheObserver | None = None,
    precision: str = "float32",
) -> Embedder:
    """KB_EMBEDDING_RUNTIME: the same model run by ONNX Runtime (`onnx`) or by torch (`torch`).

    `auto` is ONNX Runtime where it can run the model: on the CPU, with an export of the model
    (made and checked against torch at the first start, then cached). A model the exporter
    cannot handle, or a missing package, falls back to torch with a warning that says why; so
    does any device but the CPU. Either encoder batches its callers through a
    `CoalescingEmbedder` that tells `observer` about every model call. With `cache_mb`
    (KB_EMBEDDING_CACHE_MB) a `CachingEmbedder` of that many MiB sits in front: for both
    backends, every knowledge base and queries alike, since the model is the same for all.
    """
    encoder = make_encoder(runtime, model, device, precision)
    embedder = CoalescingEmbedder(encoder, batch_size, observer)
    if cache_mb == 0:
        return embedder
    return CachingEmbedder(embedder, VectorCache(cache_mb * 2**20), cache_observer)


def make_encoder(runtime: str, model: str, device: str, precision: str = "float32") -> Encoder:
    """The model run by ONNX Runtime where `runtime` and `device` allow it, else by torch.

    KB_EMBEDDING_PRECISION=int8 never falls back to torch: that would be another model.
    """
    if runtime == "onnx" or (runtime == "auto" and device == "cpu"):
        try:
            return OnnxEncoder(model, precision=precision)
        except ModelUnavailableError as error:
            if runtime == "onnx" or precision != "float32":
                raise
            log.warning("ONNX Runtime cannot run %s, so torch will: %s", model, error.message)
    return SentenceTransformerEncoder(model, device=device)


def run_extractor(limits: FileLimits, workers: int) -> Iterator[TextExtractor]:
    """The process's file reader: its worker processes stop with the app."""
    extractor = SandboxedTextExtractor(limits, workers)
    try:
        yield extractor
    finally:
        extractor.close()


def run_jobs(store: JobStore, workers: int, exclusive: bool, stale_after: int) -> Iterator[Jobs]:
    """The one job runner of the process (a singleton that stops its jobs on shutdown)."""
    jobs = Jobs(store, workers=workers, exclusive=exclusive, stale_after=stale_after)
    try:
        yield jobs
    finally:
        jobs.close()


class Container(containers.DeclarativeContainer):
    """Every port the service uses, built from one Settings object (KB_* variables by default).

    `create_app` wires it into the blueprints; a test overrides any provider (the embedder, the
    repository, an index factory) before handing it to `create_app(container=...)`.
    """

    # create_app wires the container it serves: wiring is process-global, not per instance.
    wiring_config = containers.WiringConfiguration(
        packages=["entrypoints.blueprints"], auto_wire=False
    )

    settings = providers.Singleton(Settings.from_env)
    # The KB_MAX_* bounds (built and checked once, with the settings); views inject them. A
    # provider of its own, not `settings.provided.limits`: wiring would not see its overrides.
    limits = providers.Callable(attrgetter("limits"), settings)
    # Told the size and duration of every model batch; the app overrides it to feed /metrics.
    batch_observer: providers.Object[Callable[[int, float], None] | None] = providers.Object(None)
    # Told the hits, misses and evictions of every cached embed call (/metrics too).
    cache_observer: providers.Object[CacheObserver | None] = providers.Object(None)

    embedder = providers.Singleton(
        make_embedder,
        runtime=settings.provided.embedding_runtime,
        model=settings.provided.embedding_model,
        device=settings.provided.device,
        batch_size=settings.provided.embed_batch_size,
        observer=batch_observer,
        cache_mb=settings.provided.embedding_cache_mb,
        cache_observer=cache_observer,
        precision=settings.provided.embedding_precision,
    )
    # The one place the backend is chosen. A bundle's stores open when first asked for, so only
    # the chosen one ever opens (init_resources() would start both).
    backend = providers.Selector(
        settings.provided.backend,
        memory=providers.Container(MemoryBackend, settings=settings),
        postgres=providers.Container(PostgresBackend, settings=settings),
    )
    repository = backend.provided.repository.call()
    index_factory = backend.provided.index_factory.call()
    keyword_factory = backend.provided.keyword_factory.call()
    transaction = backend.provided.transaction.call()
    snapshot = backend.provided.snapshot.call()
    # Called, not injected: each opens or asks the store anew ("reachable" or "in-process").
    check_storage = backend.provided.check_storage.call()
    storage_state = backend.provided.storage_state.call()
    job_store = backend.provided.job_store.call()
    jobs = providers.Resource(
        run_jobs,
        store=job_store,
        workers=settings.provided.job_workers,
        exclusive=backend.provided.jobs_exclusive.call(),
        stale_after=settings.provided.job_stale_seconds,
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
    # Uploaded files to documents: a test may override `extractor` with a fake.
    extractor = providers.Resource(
        run_extractor,
        limits=settings.provided.file_limits,
        workers=settings.provided.extraction_workers,
    )
    files = providers.Singleton(FileIngester, service=service, extractor=extractor, limits=limits)

"""Prometheus metrics: requests per route and status, model batches and embedding cache,
documents per KB."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.errors import DomainError
from domain.ports import KnowledgeBaseStore

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The service's metrics, in a registry per app (so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "kb_http_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "kb_http_request_duration_seconds",
            "Time to answer an HTTP request, seconds",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "kb_model_batch_size",
            "Texts per embedding model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.encode_seconds = Histogram(
            "kb_model_encode_seconds",
            "Time of one embedding model call, seconds",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._cache_metrics()

    def _cache_metrics(self) -> None:
        self.cache_hits = Counter(
            "kb_embedding_cache_hits",
            "Texts whose embedding came from the cache (or from a caller embedding it already)",
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "kb_embedding_cache_misses", "Texts the model had to embed", registry=self.registry
        )
        self.cache_evictions = Counter(
            "kb_embedding_cache_evictions",
            "Embeddings dropped, least recently used first, to stay within KB_EMBEDDING_CACHE_MB",
            registry=self.registry,
        )
        # livesum: under several workers, each holds a cache of its own; a scrape adds them up.
        self.cache_entries = Gauge(
            "kb_embedding_cache_entries",
            "Embeddings held in the cache",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.cache_bytes = Gauge(
            "kb_embedding_cache_bytes",
            "Memory the cache's entries are charged, bytes (at most KB_EMBEDDING_CACHE_MB MiB)",
            multiprocess_mode="livesum",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.encode_seconds.observe(seconds)

    def observe_cache(
        self, *, hits: int, misses: int, evictions: int, entries: int, size_bytes: int
    ) -> None:
        self.cache_hits.inc(hits)
        self.cache_misses.inc(misses)
        self.cache_evictions.inc(evictions)
        self.cache_entries.set(entries)
        self.cache_bytes.set(size_bytes)


class KnowledgeBaseCollector(Collector):
    """Documents and chunks per knowledge base, read from the repository at scrape time."""

    def __init__(self, repository: Callable[[], KnowledgeBaseStore | None]) -> None:
        self._repository = repository

    def collect(self) -> Iterator[GaugeMetricFamily]:
        documents = GaugeMetricFamily(
            "kb_documents", "Documents per knowledge base", labels=["knowledge_base"]
        )
        chunks = GaugeMetricFamily(
            "kb_chunks", "Indexed chunks per knowledge base", labels=["knowledge_base"]
        )
        repository = self._repository()
        after: str | None = None
        while repository is not None and (batch := repository.list_knowledge_bases(500, after)):
            for kb in batch:
                try:
                    stats = repository.stats(kb.name)
                except DomainError:  # deleted while we were counting
                    continue
                documents.add_metric([kb.name], stats.document_count)
                chunks.add_metric([kb.name], stats.chunk_count)
            after = batch[-1].name
        yield documents
        yield chunks


def scrape_registry(metrics: Metrics, collector: Collector) -> CollectorRegistry:
    """The registry a scrape reads: this process's, or every worker's under gunicorn."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return metrics.registry
    # Several workers: each writes its samples to files in that folder, any one of them answers.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(collector)
    return registry


def install_metrics(app: Flask, repository: Callable[[], KnowledgeBaseStore | None]) -> Metrics:
    """Create the app's metrics and its KB collector; /metrics is registered with the API."""
    metrics = Metrics()
    collector = KnowledgeBaseCollector(repository)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics.registry.register(collector)
    app.extensions["kb_metrics"] = metrics
    app.extensions["kb_metrics_registry"] = lambda: scrape_registry(metrics, collector)
    return metrics

"""The `memory` backend: FAISS and dicts in RAM, each write journaled to SQLite in KB_DATA_DIR."""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from dependency_injector import containers, providers

from adapters.faiss.index import FaissVectorIndex
from adapters.memory.job_store import InMemoryJobStore
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
from adapters.sqlite.job_store import SqliteJobStore
from adapters.sqlite.repository import SqliteDocumentRepository
from adapters.sqlite.vectors import SqliteVectorStore
from domain.jobs import JobStore
from domain.model import KnowledgeBase
from domain.ports import (
    DocumentRepository,
    KeywordIndexFactory,
    VectorIndexFactory,
)
from entrypoints.settings import Settings

DATABASE_FILE = "kb.sqlite3"
IN_RAM = ":memory:"  # KB_DATA_DIR that keeps nothing on disk
KEPT_INDEXES = "indexes"  # folder of KB_DATA_DIR with the indexes' kept copies of themselves
KEPT_NAME = re.compile(r"(?P<kb>.+\.[0-9]+)\.(faiss|fts)(-wal|-shm|-journal)?")


def kept_copy(data_dir: str, kb: KnowledgeBase, suffix: str) -> Path | None:
    """Where an index of `kb` keeps a copy of itself between runs (None for :memory:): named
    by the knowledge base and its creation instant, so one re-created under the same name
    never takes another's copy."""
    if data_dir == IN_RAM:
        return None
    return Path(data_dir) / KEPT_INDEXES / f"{_stem(kb)}{suffix}"


def _stem(kb: KnowledgeBase) -> str:
    return f"{kb.name}.{int(kb.created_at.timestamp() * 1_000_000)}"


def sweep_kept_copies(data_dir: str, repository: DocumentRepository) -> None:
    """Delete kept copies of knowledge bases that are gone (removed while a copy was being
    written, or restores a stopped process left unpublished): at start, before any is used."""
    if data_dir == IN_RAM:
        return
    folder = Path(data_dir) / KEPT_INDEXES
    folder.mkdir(exist_ok=True)
    live: set[str] = set()
    after: str | None = None
    while page := repository.list_knowledge_bases(1000, after):
        live |= {_stem(kb) for kb in page}
        after = page[-1].name
    for path in folder.iterdir():
        kept = KEPT_NAME.fullmatch(path.name)
        if kept is None or kept["kb"] not in live:  # temporary files of a stopped writer too
            path.unlink(missing_ok=True)


def memory_repository(data_dir: str) -> Iterator[DocumentRepository]:
    """RAM only for KB_DATA_DIR=:memory:, else RAM backed by a SQLite file in KB_DATA_DIR."""
    if data_dir == IN_RAM:
        yield InMemoryDocumentRepository()
        return
    repository = SqliteDocumentRepository(Path(data_dir) / DATABASE_FILE)
    try:
        sweep_kept_copies(data_dir, repository)
        yield repository
    finally:
        repository.close()


class _Closable(Protocol):
    def close(self) -> None: ...


ClosableT = TypeVar("ClosableT", bound=_Closable)
InRamT = TypeVar("InRamT")


def memory_job_store(data_dir: str, repository: DocumentRepository) -> Iterator[JobStore]:
    """The `jobs` table of the same file, opened once the repository owns and migrated it."""
    yield from _beside_the_file(data_dir, SqliteJobStore, InMemoryJobStore)


def vector_store(
    data_dir: str, repository: DocumentRepository
) -> Iterator[SqliteVectorStore | None]:
    """The file's float32 vectors for compressed indexes; none in RAM only (nothing to read)."""
    yield from _beside_the_file(data_dir, SqliteVectorStore, lambda: None)


def _beside_the_file(
    data_dir: str, open_file: Callable[[Path], ClosableT], in_ram: Callable[[], InRamT]
) -> Iterator[ClosableT | InRamT]:
    """`open_file` on the repository's file, closed at shutdown; `in_ram()` for :memory:."""
    if data_dir == IN_RAM:
        yield in_ram()
        return
    store = open_file(Path(data_dir) / DATABASE_FILE)
    try:
        yield store
    finally:
        store.close()


def faiss_indexes(
    settings: Settings, store: SqliteVectorStore | None
) -> Iterator[VectorIndexFactory]:
    """FAISS indexes that compress past KB_COMPRESS_THRESHOLD when the file holds the vectors
    and keep a copy of themselves in KB_DATA_DIR/indexes; each writes it at shutdown if due."""

    def make(kb: KnowledgeBase) -> FaissVectorIndex:
        return FaissVectorIndex(
            kb.dimension,
            ann_threshold=settings.ann_threshold,
            compress_threshold=settings.compress_threshold,
            store=store,
            kept=kept_copy(settings.data_dir, kb, ".faiss"),
        )

    yield from _closed_at_shutdown(make)


def fts5_keywords(settings: Settings) -> Iterator[KeywordIndexFactory]:
    """Each knowledge base's keyword index, in a file of KB_DATA_DIR/indexes that it takes
    back at the next start (a private temporary one for :memory:, rebuilt at start). Each is
    closed at shutdown: its file whole, no descriptor left open on the data folder."""
    yield from _closed_at_shutdown(
        lambda kb: Fts5KeywordIndex(kept_copy(settings.data_dir, kb, ".fts"))
    )


def _closed_at_shutdown(
    make: Callable[[KnowledgeBase], ClosableT],
) -> Iterator[Callable[[KnowledgeBase], ClosableT]]:
    """A factory that makes what `make` does and, when the resource shuts down, closes every
    one still alive (a knowledge base deleted meanwhile took its own along)."""
    made: weakref.WeakSet[ClosableT] = weakref.WeakSet()

    def tracked(kb: KnowledgeBase) -> ClosableT:
        index = make(kb)
        made.add(index)
        return index

    try:
        yield tracked
    finally:
        for index in list(made):
            index.close()


def check_file(data_dir: str) -> None:
    """Open the file once, so a foreign or newer one stops start-up at once."""
    if data_dir != IN_RAM:
        SqliteDocumentRepository.check(Path(data_dir) / DATABASE_FILE)


def file_state(data_dir: str, repository: Callable[[], SqliteDocumentRepository]) -> str:
    """Ask the file a trivial question (StorageError if it cannot answer); RAM has none."""
    if data_dir == IN_RAM:
        return "in-process"
    repository().ping()
    return "reachable"


class MemoryBackend(containers.DeclarativeContainer):
    """Storage for one process: the repository holds it all; indexes are rebuilt at start."""

    settings = providers.Dependency(instance_of=Settings)

    repository = providers.Resource(memory_repository, data_dir=settings.provided.data_dir)
    vectors = providers.Resource(
        vector_store, data_dir=settings.provided.data_dir, repository=repository
    )
    index_factory = providers.Resource(faiss_indexes, settings=settings, store=vectors)
    keyword_factory = providers.Resource(fts5_keywords, settings=settings)
    job_store = providers.Resource(
        memory_job_store, data_dir=settings.provided.data_dir, repository=repository
    )
    # One process owns the file: a job it finds unfinished at start was left by a stopped one.
    jobs_exclusive = providers.Object(True)
    # One process owns the data and each write holds its knowledge base's lock: no unit needed.
    transaction = providers.Object(contextlib.nullcontext)
    snapshot = providers.Object(contextlib.nullcontext)
    check_storage = providers.Callable(check_file, data_dir=settings.provided.data_dir)
    storage_state = providers.Callable(
        file_state, data_dir=settings.provided.data_dir, repository=repository.provider
    )

"""Archive use cases: export a knowledge base as a kb-archive from one consistent state."""

from __future__ import annotations

from collections.abc import Iterator

from domain.archive import ArchiveHeader
from domain.archive_writer import SpooledArchive, spool_archive
from domain.catalog import Catalog, Slot
from domain.model import Document, validate_name
from domain.ports import CatalogStore, Clock, UnitOfWork, Vectors

EXPORT_PAGE = 500  # documents read per repository call while spooling


class ArchiveExporter:
    """Spools a knowledge base's documents and vectors under its read lock and one snapshot.

    Any knowledge base can be exported, also one another model built: that is how its data
    moves to a service that runs its model.
    """

    def __init__(
        self,
        catalog: Catalog,
        repository: CatalogStore,
        clock: Clock,
        snapshot: UnitOfWork,
    ) -> None:
        self._catalog = catalog
        self._repository = repository
        self._clock = clock
        self._snapshot = snapshot

    def export(self, kb_name: str, spool_dir: str | None = None) -> SpooledArchive:
        validate_name(kb_name)
        while True:
            slot = self._catalog.slot(kb_name)
            # Writes wait while the data is spooled, so every document is whole and the counts
            # agree (new searches wait behind a queued write, then go first); a shared store's
            # other processes are held off by the snapshot. The lock is free before the first
            # byte. The lock is phase-fair: back-to-back writes cannot hold an export off.
            with slot.lock.reading(), self._snapshot():
                if not self._catalog.is_live(kb_name, slot):
                    continue  # deleted (and maybe re-created) since: take the live one
                kb = self._repository.get_knowledge_base(kb_name)
                header = ArchiveHeader(kb, self._clock())
                return spool_archive(header, self._entries(kb_name, slot), spool_dir)

    def _entries(self, kb_name: str, slot: Slot) -> Iterator[tuple[Document, Vectors]]:
        after: str | None = None
        while page := self._repository.list_documents(kb_name, EXPORT_PAGE, after):
            vectors = slot.index.get([chunk.id for doc in page for chunk in doc.chunks])
            row = 0
            for document in page:
                yield document, vectors[row : row + len(document.chunks)]
                row += len(document.chunks)
            after = page[-1].id

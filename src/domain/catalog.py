"""The live indexes and lock of every knowledge base, and safe access to a knowledge base."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from domain.errors import ConflictError, ModelMismatchError, StorageError
from domain.identity import not_reproduced, readable_model, short
from domain.locking import ReadWriteLock
from domain.model import KnowledgeBase, validate_name
from domain.ports import (
    CatalogStore,
    Clock,
    Embedder,
    KeywordIndex,
    KeywordIndexFactory,
    Labels,
    UnitOfWork,
    VectorIndex,
    VectorIndexFactory,
)

log = logging.getLogger(__name__)

KEYWORD_PAGE = 1000  # documents read at a time to fill a keyword index
HASH_PAGE = 10_000  # content hashes listed at a time to check a kept keyword index


@dataclass
class Slot:
    """One knowledge base's indexes; searches hold `lock` shared, writes hold it exclusive."""

    index: VectorIndex
    keywords: KeywordIndex
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    # Why the loaded model was found not to make this knowledge base's (unfingerprinted) vectors:
    # asked once, not on every request.
    refused: str | None = None


class Catalog:
    """Maps knowledge base names to slots; creation and removal are serialised here.

    `embedder` is asked which model it runs: a knowledge base of another model is refused,
    never mixed. One from before fingerprints is adopted if the model reproduces its vectors.
    A knowledge base's slot is rebuilt from what `store` kept when it is first used in this
    process (nothing, for a store whose indexes are its own).
    """

    def __init__(
        self,
        store: CatalogStore,
        index_factory: VectorIndexFactory,
        keyword_factory: KeywordIndexFactory,
        transaction: UnitOfWork,
        embedder: Embedder,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._transaction = transaction
        self._index_factory = index_factory
        self._keyword_factory = keyword_factory
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()

    def load(self, kb: KnowledgeBase) -> Slot:
        """Build a slot from what the store kept, unless one is already live."""
        slot = self._new_slot(kb)
        labels = self._store.chunk_labels(kb.name)
        if labels is not None:  # else the indexes are the store's own, already complete
            self._fill_vectors(kb, slot.index, labels)
            self._fill_keywords(kb, slot.keywords)
        with self._lock:
            return self._slots.setdefault(kb.name, slot)

    def _fill_vectors(self, kb: KnowledgeBase, index: VectorIndex, labels: Labels) -> None:
        """Bring `index` to hold exactly `labels`: from its own kept copy if it has one, with
        what changed since read from the store; else every vector, streamed in batches."""
        held = index.resume()
        stale = np.setdiff1d(held, labels, assume_unique=True)
        if len(stale):
            index.remove(stale.tolist())
        missing = np.setdiff1d(labels, held, assume_unique=True)
        if len(missing):
            if not len(held):
                index.expect(len(missing))
            for batch, vectors in self._store.load_vectors(kb.name, missing if len(held) else None):
                index.add(batch, vectors)
        if len(held) or len(stale):
            log.info(
                "knowledge base %r: vector index resumed from its kept copy of %d vectors, "
                "%d removed and %d added since", kb.name, len(held), len(stale), len(missing),
            )  # fmt: skip
        if len(index) != len(labels):
            raise StorageError(
                f"knowledge base {kb.name!r}: {len(labels)} chunks are stored but {len(index)} "
                "vectors were kept; the index cannot be rebuilt without re-embedding"
            )

    def _fill_keywords(self, kb: KnowledgeBase, keywords: KeywordIndex) -> None:
        """Bring `keywords` to hold every stored document: from its own kept copy if it has
        one (the documents added or changed since read from the store), else every text."""
        lacking = keywords.resume(self._digests(kb.name))
        if lacking is None:
            after: str | None = None
            while page := self._store.list_documents(kb.name, KEYWORD_PAGE, after):
                keywords.add([(doc.id, doc.text) for doc in page])
                after = page[-1].id
            return
        for first in range(0, len(lacking), KEYWORD_PAGE):
            ids = lacking[first : first + KEYWORD_PAGE]
            keywords.add([(i, self._store.get_document(kb.name, i).text) for i in ids])

    def _digests(self, kb: str) -> Iterator[tuple[str, str]]:
        after: str | None = None
        while page := self._store.content_hashes(kb, HASH_PAGE, after):
            yield from page
            after = page[-1][0]

    def _new_slot(self, kb: KnowledgeBase) -> Slot:
        return Slot(self._index_factory(kb), self._keyword_factory(kb))

    def create(self, kb: KnowledgeBase) -> None:
        with self._lock, self._transaction():
            self._store.add_knowledge_base(kb)
            self._slots[kb.name] = self._new_slot(kb)

    def reserve(self, kb: KnowledgeBase, job_id: str) -> Slot:
        """Store `kb` unpublished, built by job `job_id`, with a slot of its own that no request
        sees until `publish`; KnowledgeBaseExistsError if the name is taken."""
        with self._transaction():
            self._store.add_knowledge_base(kb, building=job_id)
        return self._new_slot(kb)

    def publish(self, name: str, slot: Slot) -> None:
        """Show a reserved knowledge base, whole, with `slot` as its live index."""
        with self._lock, self._transaction():
            self._store.publish_knowledge_base(name)
            self._slots[name] = slot

    def discard(self, name: str) -> bool:
        """Remove an unpublished knowledge base and every row it had; False if none."""
        with self._transaction():
            return self._store.remove_unpublished(name)

    def transaction(self) -> AbstractContextManager[None]:
        """One unit of work (see UnitOfWork): a restore's batch of rows, vectors and keywords."""
        return self._transaction()

    def slot(self, name: str) -> Slot:
        with self._lock:
            slot = self._slots.get(name)
        if slot is None:
            # Raises KnowledgeBaseNotFoundError when the store does not know it either;
            # a name no knowledge base can have is refused by the rule first, on every backend.
            slot = self.load(self._store.get_knowledge_base(validate_name(name)))
        return slot

    def stored(self, name: str) -> KnowledgeBase:
        """The knowledge base as the store holds it now; KnowledgeBaseNotFoundError if gone."""
        return self._store.get_knowledge_base(name)

    def is_live(self, name: str, slot: Slot) -> bool:
        """Whether `slot` is still the index of knowledge base `name`."""
        with self._lock:
            return self._slots.get(name) is slot

    def remove(self, name: str) -> None:
        slot = self.slot(name)
        # Exclusive on the slot so no write or search is half-way through the index.
        with slot.lock.writing(), self._transaction():
            self._store.remove_knowledge_base(name)
            with self._lock:
                if self._slots.get(name) is slot:
                    del self._slots[name]
        slot.index.discard()
        slot.keywords.discard()

    def usable(self, name: str) -> tuple[KnowledgeBase, Slot]:
        """The knowledge base and its slot; ModelMismatchError if another model built it."""
        slot = self.slot(name)
        kb = self._store.get_knowledge_base(name)
        if kb.fingerprint != self._embedder.fingerprint:
            kb = self._adopt(name, slot, kb)
        return kb, slot

    def _adopt(self, name: str, slot: Slot, kb: KnowledgeBase) -> KnowledgeBase:
        """Record the loaded model on a knowledge base from before fingerprints if it reproduces
        the stored vectors; else ModelMismatchError with the reason."""
        loaded = self._embedder
        if not kb.fingerprint and slot.refused is None:
            with self.writing(name, slot):  # one adoption at a time, with the data at rest
                kb = self._store.get_knowledge_base(name)
                if not kb.fingerprint:  # else adopted by another thread or process meanwhile
                    slot.refused = not_reproduced(kb, slot.index, self._store, loaded)
                    if slot.refused is None:
                        kb = self._record(kb)
            if kb.fingerprint == loaded.fingerprint:
                return kb
        raise ModelMismatchError(
            name,
            (readable_model(kb.model), kb.fingerprint, kb.dimension),
            (loaded.model_name, loaded.fingerprint, loaded.dimension),
            "" if kb.fingerprint else slot.refused or "",
        )

    def _record(self, kb: KnowledgeBase) -> KnowledgeBase:
        loaded = self._embedder
        adopted = replace(kb, model=loaded.model_name, fingerprint=loaded.fingerprint)
        self._store.update_knowledge_base(adopted)
        log.info(
            "knowledge base %r (model %r) adopted by %r, fingerprint %s: the loaded model "
            "reproduces its stored vectors",
            kb.name, readable_model(kb.model), adopted.model, short(adopted.fingerprint),
        )  # fmt: skip
        return adopted

    @contextmanager
    def writing(self, name: str, slot: Slot) -> Iterator[None]:
        """Hold the knowledge base exclusively, provided `slot` is still its live index.

        A request takes the slot before embedding; if the knowledge base was deleted (and maybe
        re-created) meanwhile, writing would put vectors into a discarded index.
        """
        with slot.lock.writing():
            if not self.is_live(name, slot):
                self._store.get_knowledge_base(name)  # KnowledgeBaseNotFoundError
                raise ConflictError(
                    f"knowledge base {name!r} was deleted and re-created while this request "
                    "ran; nothing was written. Send the request again.",
                    errors={"kb": ["deleted and re-created meanwhile"]},
                )
            with self._transaction():
                yield


class WriteContext(NamedTuple):
    """What the knowledge base and document writers share: the catalog, the model, the time.

    A tuple, so each part unpacks it in one line and keeps only its store as its own port.
    """

    catalog: Catalog
    embedder: Embedder
    clock: Clock

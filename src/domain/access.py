"""KnowledgeBaseAccess: the state every use case shares, and safe access to a knowledge base."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime

from domain.catalog import Catalog, Slot
from domain.errors import ConflictError, ModelMismatchError
from domain.keywords import NoKeywordIndex
from domain.model import KnowledgeBase
from domain.ports import (
    DocumentRepository,
    Embedder,
    KeywordIndexFactory,
    UnitOfWork,
    VectorIndexFactory,
)
from domain.ranking import Ranker

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_keywords(kb: KnowledgeBase) -> NoKeywordIndex:
    return NoKeywordIndex()


class KnowledgeBaseAccess:
    """Holds the embedder, the repository and the live indexes; checks before every use."""

    def __init__(
        self,
        embedder: Embedder,
        repository: DocumentRepository,
        index_factory: VectorIndexFactory,
        keyword_factory: KeywordIndexFactory | None = None,
        clock: Clock = utc_now,
        transaction: UnitOfWork = nullcontext,
        snapshot: UnitOfWork = nullcontext,
    ) -> None:
        """`keyword_factory` enables hybrid (keyword + meaning) search; without it only dense.

        `transaction` makes each write's repository and index calls one unit, and `snapshot`
        makes each search's reads see one state of a store that other processes write to
        (see UnitOfWork).
        """
        self.embedder = embedder
        self._repository = repository
        self._transaction = transaction
        keywords = keyword_factory or _no_keywords
        self._catalog = Catalog(repository, index_factory, keywords, transaction)
        self._clock = clock
        self._ranker = Ranker(embedder, repository, snapshot)

    @contextmanager
    def _writing(self, kb_name: str, slot: Slot) -> Iterator[None]:
        """Hold the knowledge base exclusively, provided `slot` is still its live index.

        A request takes the slot before embedding; if the knowledge base was deleted (and maybe
        re-created) meanwhile, writing would put vectors into a discarded index.
        """
        with slot.lock.writing():
            if not self._catalog.is_live(kb_name, slot):
                self._repository.get_knowledge_base(kb_name)  # KnowledgeBaseNotFoundError
                raise ConflictError(
                    f"knowledge base {kb_name!r} was deleted and re-created while this request "
                    "ran; nothing was written. Send the request again.",
                    errors={"kb": ["deleted and re-created meanwhile"]},
                )
            with self._transaction():
                yield

    def _usable(self, kb_name: str) -> tuple[KnowledgeBase, Slot]:
        slot = self._catalog.slot(kb_name)
        kb = self._repository.get_knowledge_base(kb_name)
        if kb.model != self.embedder.model_name or kb.dimension != self.embedder.dimension:
            raise ModelMismatchError(
                f"knowledge base {kb_name!r} was built with model {kb.model!r} "
                f"({kb.dimension} dimensions) but the service runs {self.embedder.model_name!r} "
                f"({self.embedder.dimension} dimensions); start it with KB_EMBEDDING_MODEL="
                f"{kb.model!r} to use this knowledge base",
                errors={"model": [f"built with {kb.model!r}"]},
            )
        return kb, slot

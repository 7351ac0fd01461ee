"""Restore use case: a knowledge base from a kb-archive, built unpublished, shown whole or never."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from itertools import islice
from typing import BinaryIO

import numpy as np

from domain.archive import ArchiveManifest
from domain.archive_reader import Entries, read_archive
from domain.catalog import Catalog, Slot
from domain.encoding import encode_texts
from domain.errors import KnowledgeBaseExistsError, KnowledgeBaseNotFoundError, ModelMismatchError
from domain.identity import readable_model
from domain.jobs import JobHandle
from domain.knowledge_bases import DEFAULT_CHUNK_OVERLAP
from domain.model import Chunk, Document, KnowledgeBase, Span, validate_name
from domain.ports import DocumentStore, Embedder, KnowledgeBaseStore, Vectors

log = logging.getLogger(__name__)

RESTORE_BATCH = 500  # documents per transaction while a restore writes
RESTORE_JOB = "restore"  # the job kind a restore runs as


class ArchiveRestorer:
    """Creates a knowledge base from an archive's documents, with their stored vectors when
    this service runs the archive's model (nothing is embedded), or re-embedded with this
    service's model on request.

    The knowledge base is built unpublished (no request sees it) and published in one step
    once every byte of the archive was read and checked; on any failure or cancellation it is
    removed, and one a stopped process left unpublished is removed at the next start.
    """

    def __init__(
        self,
        catalog: Catalog,
        knowledge_bases: KnowledgeBaseStore,
        documents: DocumentStore,
        embedder: Embedder,
    ) -> None:
        self._catalog = catalog
        self._knowledge_bases = knowledge_bases
        self._documents = documents
        self._embedder = embedder

    def inspect(self, name: str, stream: BinaryIO, reembed: bool) -> ArchiveManifest:
        """The archive's manifest, once the checks that need no more than it passed:
        ArchiveInvalidError, KnowledgeBaseExistsError, ModelMismatchError (without reembed)."""
        manifest, entries = read_archive(stream)
        with closing(entries):
            self._plan(name, manifest, reembed)
        return manifest

    def restore(
        self, name: str, stream: BinaryIO, reembed: bool, job: JobHandle, spool_dir: str | None
    ) -> KnowledgeBase:
        """Read the archive in `stream` into a new knowledge base `name`; all or nothing."""
        manifest, entries = read_archive(stream, spool_dir)
        with closing(entries):
            kb = self._plan(name, manifest, reembed)
            job.report(0, manifest.document_count)
            slot = self._catalog.reserve(kb, job.job_id)
            if not reembed:  # the archive's chunks are the knowledge base's, one for one
                slot.index.expect(manifest.chunk_count)
            try:
                self._fill(kb, slot, entries, reembed, job)
                # The reader checked the checksums and counts as the last entry went by.
                job.raise_if_cancelled()
                self._catalog.publish(name, slot)
            except BaseException:
                self._catalog.discard(name)
                slot.index.discard()
                slot.keywords.discard()
                raise
        log.info(
            "knowledge base %r restored: %d documents, %d chunks%s",
            name, manifest.document_count, manifest.chunk_count, " re-embedded" if reembed else "",
        )  # fmt: skip
        return kb

    def discard_abandoned(self, unfinished: Callable[[str], bool]) -> list[str]:
        """Remove every unpublished knowledge base whose job is no longer `unfinished`: one a
        process stopped (or was killed) while building. Return their names."""
        removed = []
        for name, job_id in self._knowledge_bases.unpublished_knowledge_bases():
            if not unfinished(job_id) and self._catalog.discard(name):
                log.warning("removed %r, left unpublished by restore job %s", name, job_id)
                removed.append(name)
        return removed

    def check_name_free(self, name: str) -> None:
        """KnowledgeBaseExistsError if `name` is taken, by a restore under way too."""
        validate_name(name)
        building = dict(self._knowledge_bases.unpublished_knowledge_bases())
        try:
            self._knowledge_bases.get_knowledge_base(name)
        except KnowledgeBaseNotFoundError:
            if name not in building:
                return
        raise KnowledgeBaseExistsError(name)

    def _plan(self, name: str, manifest: ArchiveManifest, reembed: bool) -> KnowledgeBase:
        """The knowledge base to create, or why not."""
        self.check_name_free(name)
        archived, loaded = manifest.knowledge_base, self._embedder
        same = (
            bool(archived.fingerprint)
            and archived.fingerprint == loaded.fingerprint
            and archived.dimension == loaded.dimension
        )
        if same:
            return replace(archived, name=name)
        if not reembed:
            raise ModelMismatchError(
                name,
                (readable_model(archived.model), archived.fingerprint, archived.dimension),
                (loaded.model_name, loaded.fingerprint, loaded.dimension),
                "the archive's vectors are that model's; restore with reembed=true to embed "
                "its texts with this service's model instead",
            )
        overlap = archived.chunk_overlap
        if overlap >= loaded.window:
            overlap = min(DEFAULT_CHUNK_OVERLAP, loaded.window // 2)
        return replace(
            archived,
            name=name,
            model=loaded.model_name,
            fingerprint=loaded.fingerprint,
            dimension=loaded.dimension,
            chunk_overlap=overlap,
        )

    def _fill(
        self, kb: KnowledgeBase, slot: Slot, entries: Entries, reembed: bool, job: JobHandle
    ) -> None:
        done = 0
        for batch in _batches(entries, RESTORE_BATCH):
            job.raise_if_cancelled()
            if reembed:
                batch = self._reembedded(kb, batch)
            self._write(kb, slot, batch)
            done += len(batch)
            job.report(done)

    def _reembedded(
        self, kb: KnowledgeBase, batch: Sequence[tuple[Document, Vectors]]
    ) -> list[tuple[Document, Vectors]]:
        """The batch chunked with this model's tokenizer and embedded with this model."""
        texts = [document.text for document, _ in batch]
        layouts = [document.layout for document, _ in batch]
        encoded = encode_texts(
            self._embedder, texts, kb.chunking, kb.chunk_overlap, layouts=layouts
        )
        return [
            (
                replace(
                    document,
                    chunks=tuple(Chunk(0, span) for span in each.spans),
                    truncated=each.truncated,
                ),
                each.vectors,
            )
            for (document, _), each in zip(batch, encoded)
        ]

    def _write(
        self, kb: KnowledgeBase, slot: Slot, batch: Sequence[tuple[Document, Vectors]]
    ) -> None:
        """Store one batch under labels of this store (the archive's are row numbers)."""
        spans = [[chunk.span for chunk in document.chunks] for document, _ in batch]
        labels = iter(self._documents.allocate_chunk_ids(sum(map(len, spans))))
        documents = [
            _relabelled(document, each, labels) for (document, _), each in zip(batch, spans)
        ]
        vectors = np.vstack([rows for _, rows in batch]).astype(np.float32, copy=False)
        chunk_labels = np.array(
            [chunk.id for document in documents for chunk in document.chunks], np.int64
        )
        with self._catalog.transaction():
            self._documents.add_documents(kb.name, documents, vectors)
            slot.index.add(chunk_labels, vectors)
            slot.keywords.add([(document.id, document.text) for document in documents])


def _relabelled(document: Document, spans: Sequence[Span], labels: Iterator[int]) -> Document:
    # spans first: zip stops on them without taking a label the next document needs
    chunks = tuple(Chunk(label, span) for span, label in zip(spans, labels))
    return replace(document, chunks=chunks)


def _batches(entries: Entries, size: int) -> Iterator[list[tuple[Document, Vectors]]]:
    while batch := list(islice(entries, size)):
        yield batch

"""The rows of kb-service's SQLite file: knowledge bases and documents to and from columns.

No port of its own: `SqliteDocumentRepository` reads and writes its file through it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.errors import StorageError
from domain.model import Chunking, Document, KnowledgeBase

KB_COLUMNS = (
    "name, model, dimension, created_at, description, metadata, chunking, chunk_overlap, "
    "fingerprint"
)


def kb_row(kb: KnowledgeBase) -> tuple[Any, ...]:
    return (
        kb.name, kb.model, kb.dimension, kb.created_at.isoformat(), kb.description,
        json.dumps(dict(kb.metadata)), kb.chunking.value, kb.chunk_overlap, kb.fingerprint,
    )  # fmt: skip


def kb_from_row(row: sqlite3.Row) -> KnowledgeBase:
    return KnowledgeBase(
        name=row["name"],
        model=row["model"],
        dimension=row["dimension"],
        created_at=datetime.fromisoformat(row["created_at"]),
        description=row["description"],
        metadata=json.loads(row["metadata"]),
        chunking=Chunking(row["chunking"]),
        chunk_overlap=row["chunk_overlap"],
        fingerprint=row["fingerprint"],
    )


def document_row(kb: str, doc: Document) -> tuple[Any, ...]:
    return (
        kb, doc.id, doc.text, json.dumps(dict(doc.metadata)), doc.created_at.isoformat(),
        doc.updated_at.isoformat(), int(doc.truncated), len(doc.chunks), doc.content_hash,
    )  # fmt: skip


def disagreement(path: Path, kb: str, doc_id: str, found: int, stored: int) -> StorageError:
    return StorageError(
        f"{path}: knowledge base {kb!r}, document {doc_id!r} has {found} chunk row(s) but "
        f"{stored} were stored with it: the index and the documents disagree, so kb-service will "
        "not start on this file. Something other than kb-service changed it; restore it from a "
        "backup."
    )

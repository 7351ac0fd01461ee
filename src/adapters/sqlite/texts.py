"""Documents' texts read back from kb-service's SQLite file: the cache in RAM holds none.

No port of its own: `SqliteDocumentRepository` fills in the texts of the documents it returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from pathlib import Path

from adapters.memory import document_records as records
from domain.errors import StorageError
from domain.model import Document

BATCH = 500  # ids per query, well under SQLite's bound on parameters (32,766)


def read(
    db: sqlite3.Connection, path: Path, kb: str, document_ids: Collection[str]
) -> dict[str, str]:
    """The stored text of each of `document_ids` of `kb` that is in the file.

    StorageError (a 503, not a 500) if the file cannot be read.
    """
    ids = list(dict.fromkeys(document_ids))
    found: dict[str, str] = {}
    try:
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            marks = ", ".join("?" * len(part))
            rows = db.execute(
                f"SELECT id, text FROM documents WHERE kb = ? AND id IN ({marks})", (kb, *part)
            )
            rows.row_factory = None
            found.update(rows)
    except sqlite3.Error as error:
        raise StorageError(f"{path}: the texts of {kb!r} could not be read ({error})") from error
    return found


def filled(
    db: sqlite3.Connection, path: Path, kb: str, documents: Iterable[Document]
) -> list[Document]:
    """`documents` (from the cache, texts empty) with their texts read from the file."""
    documents = list(documents)
    return with_texts(path, kb, documents, read(db, path, kb, [doc.id for doc in documents]))


def with_texts(
    path: Path, kb: str, documents: Iterable[Document], texts: dict[str, str]
) -> list[Document]:
    """`documents` with the texts of `texts`; StorageError if one is missing from it."""
    complete = []
    for doc in documents:
        text = texts.get(doc.id)
        if text is None:
            raise StorageError(
                f"{path}: knowledge base {kb!r}, document {doc.id!r} is known but its row is "
                "gone: something other than kb-service changed the file; restore it from a backup."
            )
        # Stored documents were validated when written: no need to check them again.
        complete.append(records.trusted(Document, {**doc.__dict__, "text": text}))
    return complete

"""What a sync reads: a folder (the ids `kb import` gives) or a JSONL file of documents."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb_client.sync import Skipped, SourceFile, SourceItem, SourceText

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
# What the service's files endpoint extracts: compared by the SHA-256 of their bytes.
FILE_SUFFIXES = frozenset({".pdf", ".html", ".htm", ".docx"})
BLOCK = 1 << 20


class SourceError(ValueError):
    """The source path, or one of its lines, cannot be read as documents."""


def read_source(path: Path) -> Iterator[SourceItem]:
    """A folder's documents, or a JSONL file's; SourceError if `path` is neither."""
    if path.is_dir():
        return folder_source(path)
    if path.is_file():
        return jsonl_source(path)
    raise SourceError(f"{path} does not exist")


def folder_source(root: Path) -> Iterator[SourceItem]:
    """Every .txt/.md/.markdown file below `root` as text, every .pdf/.html/.htm/.docx as a
    file; hidden ones and other suffixes left out. The id is the path relative to `root`
    with '/' separators, and texts are read as `kb import` reads them (UTF-8, newlines
    translated), so a folder imported once syncs with nothing to do."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        suffix, doc_id = path.suffix.lower(), relative.as_posix()
        if suffix in TEXT_SUFFIXES:
            yield _text_file(path, doc_id)
        elif suffix in FILE_SUFFIXES:
            yield SourceFile(doc_id, path, file_sha256(path))


def _text_file(path: Path, doc_id: str) -> SourceItem:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Skipped(doc_id, "not UTF-8 text")
    if not text.strip():
        return Skipped(doc_id, "empty")
    return SourceText(doc_id, text)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def jsonl_source(path: Path) -> Iterator[SourceItem]:
    """One {"id", "text", "metadata"?} object per line, as `kb export` writes; a line without
    metadata states that the document has none ({}). SourceError names a bad line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_line(line, f"{path}:{number}")


def parse_line(line: str, where: str) -> SourceItem:
    id, text, metadata = parse_record(line, where)
    if not text.strip():
        return Skipped(id, "empty text")
    return SourceText(id, text, metadata)


def parse_record(line: str, where: str) -> tuple[str, str, dict[str, Any]]:
    """(id, text, metadata) of one {"id", "text", "metadata"?} line; SourceError names what is
    wrong. The one reading of a JSONL line, for `kb sync` and `kb import` alike."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise SourceError(f"{where}: not JSON ({error})") from None
    if not isinstance(record, dict):
        raise SourceError(f"{where}: expected an object with 'id' and 'text'")
    unknown = set(record) - {"id", "text", "metadata"}
    if unknown:
        raise SourceError(f"{where}: unknown keys {sorted(unknown)}; use id, text, metadata")
    # Without an id a line could not be matched with a stored document (nor an import resumed).
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise SourceError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(record.get("text"), str):
        raise SourceError(f"{where}: 'text' must be a string")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise SourceError(f"{where}: 'metadata' must be an object")
    return record["id"], record["text"], metadata

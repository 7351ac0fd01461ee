"""What `kb import` reads: a folder of .txt/.md files or a JSONL file of documents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kb_client import NewDocument, sync_sources

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}


class InputError(Exception):
    """The input path or one of its records cannot be imported (the CLI exits 2)."""


def read_documents(path: Path, warn: Callable[[str], None]) -> list[NewDocument]:
    """All documents of `path`, checked before anything is sent; `warn(message)` for skips."""
    if path.is_dir():
        documents = read_folder(path, warn)
    elif path.is_file():
        documents = read_jsonl(path)
    else:
        raise InputError(f"{path} does not exist")
    check_unique(documents)
    return documents


def read_folder(root: Path, warn: Callable[[str], None]) -> list[NewDocument]:
    """Every .txt/.md file below `root` (hidden ones left out); id = path relative to root."""
    documents: list[NewDocument] = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if not file.is_file() or file.suffix.lower() not in TEXT_SUFFIXES:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            warn(f"skipped {relative.as_posix()}: not UTF-8 text")
            continue
        if not text.strip():
            warn(f"skipped {relative.as_posix()}: empty")
            continue
        documents.append({"id": relative.as_posix(), "text": text, "metadata": {}})
    return documents


def read_jsonl(path: Path) -> list[NewDocument]:
    """One {"id", "text", "metadata"?} object per line, as `kb export` writes them."""
    documents: list[NewDocument] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                documents.append(parse_record(line, f"{path}:{number}"))
    return documents


def parse_record(line: str, where: str) -> NewDocument:
    try:
        id, text, metadata = sync_sources.parse_record(line, where)
    except sync_sources.SourceError as error:
        raise InputError(str(error)) from None
    return {"id": id, "text": text, "metadata": metadata}


def check_unique(documents: list[NewDocument]) -> None:
    seen: set[str] = set()
    for document in documents:
        if document["id"] in seen:
            raise InputError(f"the id {document['id']!r} appears twice in the input")
        seen.add(document["id"])

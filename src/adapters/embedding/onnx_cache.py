"""Where the ONNX export of a model lives, and whether a cached one is still current.

Beside the model, in `<model folder>/onnx/kb-service/`, when that folder is writable and is not
a Hugging Face hub cache snapshot; else in `$XDG_CACHE_HOME/kb-service/onnx/<hash of the folder
path>/` (default `~/.cache`). A cached export is current while the model's files are unchanged.
No port of its own: `onnx_export` writes there and `OnnxEncoder` reads from there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.embedding.model_loader import resolve_model
from domain.errors import ModelUnavailableError

EXPORT_FORMAT = 2
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export.json"  # written last: its presence marks a complete export
_SKIPPED_DIRS = {"onnx", "openvino", ".git", ".cache"}


def model_folder(model: str) -> Path:
    location = resolve_model(model)
    if Path(location).is_dir():
        return Path(location)
    from huggingface_hub import snapshot_download  # a hub name, reachable: fetch it once

    try:
        return Path(snapshot_download(location))
    except Exception as error:  # network and hub errors have no common base class
        raise ModelUnavailableError(
            f"cannot load embedding model KB_EMBEDDING_MODEL={model!r}: {error}"
        ) from error


def export_dir_for(folder: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    if cache_dir is not None:
        return Path(cache_dir) / key
    beside = folder / "onnx" / "kb-service"
    if not _in_hub_cache(folder) and os.access(folder, os.W_OK):
        try:
            beside.mkdir(parents=True, exist_ok=True)
            if os.access(beside, os.W_OK):
                return beside
        except OSError:
            pass
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kb-service" / "onnx" / key


def _in_hub_cache(folder: Path) -> bool:
    """A Hugging Face cache snapshot (models--org--name/snapshots/<rev>) is the hub's to manage."""
    parts = folder.resolve().parts
    return len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--")


def fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the model's files (not of any ONNX exports)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            stat = path.stat()  # follows the hub cache's symlinks to the blobs
            digest.update(
                f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def cached_export(export_dir: Path, folder: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != EXPORT_FORMAT or meta.get("source") != fingerprint(folder):
        return None
    if not (export_dir / MODEL_FILE).is_file() or not (export_dir / TOKENIZER_FILE).is_file():
        return None
    return meta


@contextmanager
def locked(export_dir: Path) -> Iterator[None]:
    """Only one process exports into a folder at a time; the others then reuse its export."""
    with open(export_dir / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

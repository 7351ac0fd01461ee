"""What a sentence-transformers model is, wherever it lies: a readable name and a fingerprint.

The fingerprint hashes what decides the model's vectors and nothing that says where it came from:
the pipeline (modules.json: each module's type, in order, e.g. Transformer, Pooling, Normalize),
each module's configuration (transformer config, pooling mode, max_seq_length, tokenizer rules
and vocabulary) and its weights tensor by tensor (name, dtype, shape, bytes), plus the dimension
and max_seq_length the runtime loaded. Left out: paths, file dates, hub cache layout, README and
training files, exports (ONNX, OpenVINO) and provenance fields such as `_name_or_path` or
`transformers_version`. So a copied folder, a trailing slash, the hub snapshot of the same
files, and the ONNX Runtime and torch runtimes (both read these source files) agree. See
docs/architecture.md, "Model identity".
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.embedding.onnx_cache import export_dir_for
from adapters.embedding.onnx_cache import fingerprint as files_state
from domain.errors import ModelUnavailableError
from domain.identity import readable_model

FORMAT = 1
FULL_PRECISION = "float32"
CACHE_FILE = "identity.json"  # beside the ONNX export: the weights' digest, per file state
_JSON_FILES = {
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
}
_RAW_FILES = {
    "vocab.txt",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
}
# Where a file came from or which library wrote it; and the tokenizer file's truncation and
# padding, which the runtime sets anew on every call (max_seq_length is hashed on its own).
_PROVENANCE = {
    "_name_or_path",
    "name_or_path",
    "transformers_version",
    "__version__",
    "_commit_hash",
}
_RUNTIME_SETTINGS = {"truncation", "padding"}
_BLOCK = 1 << 20


@dataclass(frozen=True)
class ModelIdentity:
    """A model's readable name (never a path) and its fingerprint (64 hex digits)."""

    name: str
    fingerprint: str


def identify(
    model: str,
    folder: Path,
    dimension: int,
    max_seq_length: int,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    precision: str = "float32",
) -> ModelIdentity:
    """The identity of `model` (KB_EMBEDDING_MODEL) loaded from `folder` by either runtime.

    The weights' digest is cached beside the ONNX export (`cache_dir` as OnnxEmbedder takes it).
    Another `precision` (KB_EMBEDDING_PRECISION) than float32 makes other vectors, so another
    model: its name says so and its fingerprint differs.
    """
    try:
        source = files_state(folder)
        content = cached_content_digest(folder, export_dir_for(folder, cache_dir), source)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as error:
        raise ModelUnavailableError(
            f"cannot fingerprint KB_EMBEDDING_MODEL={model!r}: a file of {folder.name} cannot be "
            f"read as a model file ({error})"
        ) from error
    name = readable_name(model, folder)
    if precision != FULL_PRECISION:
        name = f"{name} ({precision})"
    return ModelIdentity(name, fingerprint(content, dimension, max_seq_length, precision))


def fingerprint(
    content: str, dimension: int, max_seq_length: int, precision: str = FULL_PRECISION
) -> str:
    """The model's fingerprint: its files' `content_digest` and what the runtime loaded.

    float32 adds nothing, so the fingerprints of knowledge bases made before precisions stay.
    """
    identity: dict[str, object] = {
        "format": FORMAT,
        "content": content,
        "dimension": dimension,
        "max_seq_length": max_seq_length,
        "normalised": True,  # every embedder of the service returns unit vectors
    }
    if precision != FULL_PRECISION:
        identity["precision"] = precision
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def readable_name(name_or_path: str, folder: Path) -> str:
    """The hub id the model was asked by, else what its folder reads as (`readable_model`)."""
    if not Path(name_or_path).expanduser().is_dir():
        return name_or_path
    return readable_model(os.path.normpath(Path(name_or_path).expanduser().absolute()))


def cached_content_digest(folder: Path, cache_dir: Path, source: str) -> str:
    """`content_digest(folder)`, reused from `cache_dir` while the files' state is `source`.

    Hashing reads every weight (docs/architecture.md has the time); the cache spares a restart.
    """
    cache = cache_dir / CACHE_FILE
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept.get("format") == FORMAT and kept.get("source") == source:
            return str(kept["content"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    content = content_digest(folder)
    record = {"format": FORMAT, "source": source, "content": content}
    try:  # a cache that cannot be written only costs the hashing next time
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache_dir, delete=False, suffix=".tmp") as tmp:
            json.dump(record, tmp)
        os.replace(tmp.name, cache)
    except OSError:
        pass
    return content


def content_digest(folder: Path) -> str:
    """A sha256 over the model's pipeline, configurations, vocabulary and weight tensors."""
    digest = hashlib.sha256()
    modules = _modules(folder)
    for kind, relative in modules:
        digest.update(f"module\0{kind}\0".encode())
        for name, part in _module_parts(folder / relative):
            digest.update(f"{name}\0{part}\n".encode())
    if all(relative not in ("", ".") for _, relative in modules):  # modules.json and the like
        for name, part in _module_parts(folder, weights=False):
            digest.update(f"root\0{name}\0{part}\n".encode())
    return digest.hexdigest()


def _modules(folder: Path) -> list[tuple[str, str]]:
    """(type, folder) of each module in order; a plain transformers folder is one, mean-pooled
    as sentence-transformers loads it."""
    try:
        listed = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [("transformers+mean-pooling", "")]
    return [(str(module["type"]), str(module.get("path", ""))) for module in listed]


def _module_parts(folder: Path, weights: bool = True) -> Iterator[tuple[str, str]]:
    if not folder.is_dir():  # e.g. 2_Normalize: a module without files
        return
    for path in sorted(folder.iterdir()):
        if path.name in _JSON_FILES and path.is_file():
            yield path.name, _json_digest(path)
        elif path.name in _RAW_FILES and path.is_file():
            yield path.name, _file_digest([path])
    if weights:
        yield from _weights(folder)


def _weights(folder: Path) -> Iterator[tuple[str, str]]:
    """Safetensors tensor by tensor (the runtimes prefer them); else the PyTorch files' bytes."""
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        yield "tensors", _tensors_digest(safetensors)
        return
    pickles = sorted(folder.glob("pytorch_model*.bin"))
    if pickles:
        yield "pytorch_model.bin", _file_digest(pickles)


def _json_digest(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        drop = _PROVENANCE | (_RUNTIME_SETTINGS if path.name == "tokenizer.json" else set())
        data = {key: value for key, value in data.items() if key not in drop}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as file:
            while block := file.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def _tensors_digest(paths: list[Path]) -> str:
    """Tensors in name order, whatever the shards, the header's metadata or the byte layout."""
    located: dict[str, tuple[Path, int, dict[str, Any]]] = {}
    for path in paths:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header: dict[str, Any] = json.loads(file.read(length))
        header.pop("__metadata__", None)
        for name, tensor in header.items():
            located[name] = (path, 8 + length, tensor)
    digest = hashlib.sha256()
    for name in sorted(located):
        path, base, tensor = located[name]
        start, end = tensor["data_offsets"]
        digest.update(f"{name}\0{tensor['dtype']}\0{tensor['shape']}\0".encode())
        with path.open("rb") as file:
            file.seek(base + start)
            left = end - start
            while left > 0:
                block = file.read(min(_BLOCK, left))
                if not block:
                    raise ValueError(f"{path} is shorter than its header says")
                digest.update(block)
                left -= len(block)
    return digest.hexdigest()

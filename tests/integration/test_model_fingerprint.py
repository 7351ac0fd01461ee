"""The fingerprint of a model's files on tiny hand-made folders: tensors count, layout does not."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from adapters.embedding.model_fingerprint import content_digest, identify
from domain.errors import ModelUnavailableError

TENSORS = {
    "embeddings.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
    "pooler.bias": np.ones(4, dtype=np.float32),
}
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]


def write_safetensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset, blobs = 0, []
    for name, array in tensors.items():
        data = array.tobytes()
        shape = list(array.shape)
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def model(folder: Path, shards: list[dict] | None = None, **config) -> Path:
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text(json.dumps(MODULES))
    (folder / "config.json").write_text(json.dumps({"hidden_size": 4, **config}))
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True})
    )
    for number, tensors in enumerate(shards or [TENSORS]):
        write_safetensors(folder / f"model-{number:05}.safetensors", tensors)
    return folder


def test_shards_header_metadata_and_provenance_do_not_change_the_digest(tmp_path):
    one = content_digest(model(tmp_path / "one"))
    halves = [
        {"pooler.bias": TENSORS["pooler.bias"]},
        {"embeddings.weight": TENSORS["embeddings.weight"]},
    ]
    assert content_digest(model(tmp_path / "sharded", halves)) == one
    provenance = model(tmp_path / "provenance", _name_or_path="/x", transformers_version="9")
    assert content_digest(provenance) == one
    (provenance / "README.md").write_text("a model card")  # not what the model is
    write_safetensors(provenance / "model-00000.safetensors", TENSORS, {"format": "np"})
    assert content_digest(provenance) == one


def test_a_changed_tensor_config_or_pipeline_changes_the_digest(tmp_path):
    one = content_digest(model(tmp_path / "one"))
    changed = {**TENSORS, "pooler.bias": np.full(4, 2.0, dtype=np.float32)}
    assert content_digest(model(tmp_path / "weights", [changed])) != one
    assert content_digest(model(tmp_path / "config", hidden_size=8)) != one
    normalised = model(tmp_path / "normalised")
    modules = [*MODULES, {"idx": 2, "path": "2_Normalize", "type": "models.Normalize"}]
    (normalised / "modules.json").write_text(json.dumps(modules))
    assert content_digest(normalised) != one


def test_a_folder_with_a_broken_model_file_is_unavailable_not_a_crash(tmp_path):
    folder = model(tmp_path / "broken")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="cannot fingerprint"):
        identify(str(folder), folder, 4, 8, cache_dir=tmp_path / "cache")

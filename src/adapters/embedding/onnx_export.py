"""The ONNX export of a sentence-transformers model: made once, checked against torch.

The export records the whole pipeline (transformer, pooling, normalisation) with `torch.onnx`
and is refused unless it agrees with torch on a few texts; `onnx_cache` says where it is kept
and whether it is current. A current export is reused without importing torch.
Exporting needs `torch`, `sentence-transformers`, `onnx` and `onnxruntime`. No port of its
own: `OnnxEncoder` (the `Encoder` port) runs what it exports.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from adapters.embedding.onnx_cache import (
    EXPORT_FORMAT,
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    cached_export,
    export_dir_for,
    fingerprint,
    locked,
    model_folder,
)
from domain.errors import ModelUnavailableError
from domain.ports import Vectors

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.9999  # cosine between the export and torch on the probe texts
INPUTS = {  # ONNX input name -> the tokenizers.Encoding field that feeds it
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}
PROBES = [
    "This is an example sentence",
    "Naïve café-owners   don't panic.",
    "",
    "A short one.",
    "The committee reviewed the quarterly budget figures in detail. " * 60,
]


def exported(
    model: str, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, dict[str, Any]]:
    """The folder holding a current export of `model` and its description; export if needed."""
    folder = model_folder(model)
    export_dir = export_dir_for(folder, cache_dir)
    meta = cached_export(export_dir, folder)
    if meta is None:
        meta = _export(model, folder, export_dir)
    return export_dir, meta


# --- what the runtime and the export check share ------------------------------------------------


def feeds(inputs: list[str], encodings: list[Encoding]) -> dict[str, np.ndarray[Any, Any]]:
    return {
        name: np.array([getattr(e, INPUTS[name]) for e in encodings], dtype=np.int64)
        for name in inputs
    }


def normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def batch_tokenizer(path: Path, meta: dict[str, Any]) -> Tokenizer:
    """The model's tokenizer, cutting at max_seq_length and padding to each batch's longest."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(
        int(meta["max_seq_length"]), direction=str(meta.get("truncation_side", "right"))
    )
    tokenizer.enable_padding(
        direction=str(meta.get("padding_side", "right")),
        pad_id=int(meta["pad_id"]),
        pad_token=str(meta["pad_token"]),
    )
    return tokenizer


# --- the export ---------------------------------------------------------------------------------


def _export(model: str, folder: Path, export_dir: Path) -> dict[str, Any]:
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelUnavailableError(
            f"cannot cache the ONNX export of KB_EMBEDDING_MODEL={model!r} in {export_dir}: {error}"
        ) from error
    with locked(export_dir):
        meta = cached_export(export_dir, folder)  # another process may have just written it
        if meta is not None:
            return meta
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir))
        try:
            meta = _export_to(model, folder, scratch)
            for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE):  # the marker goes last
                os.replace(scratch / name, export_dir / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info(
            "exported %s to ONNX in %s (%.1f s)", model, export_dir, time.monotonic() - started
        )
        return meta


def _export_to(model: str, folder: Path, out: Path) -> dict[str, Any]:
    """Export, check against torch and describe one model into the empty folder `out`."""
    try:
        import sentence_transformers  # noqa: F401  (needed below; say so before any work)
        import torch
    except ImportError as error:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r} has no cached ONNX export, and exporting one needs "
            f"torch and sentence-transformers: {error}"
        ) from error
    source = fingerprint(folder)
    st = _load_for_export(model, folder)
    hf_tokenizer = st.tokenizer
    names, example = _input_names(model, st)
    _write_onnx(model, st, names, example, out / MODEL_FILE)
    (out / TOKENIZER_FILE).write_text(hf_tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
    dimension, max_seq_length = st.get_embedding_dimension(), st.max_seq_length
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "source": source,
        "dimension": int(dimension),
        "max_seq_length": int(max_seq_length),
        "window": int(max_seq_length) - int(hf_tokenizer.num_special_tokens_to_add(pair=False)),
        "pad_id": int(hf_tokenizer.pad_token_id or 0),
        "pad_token": str(hf_tokenizer.pad_token or "[PAD]"),
        "padding_side": str(getattr(hf_tokenizer, "padding_side", "right")),
        "truncation_side": str(getattr(hf_tokenizer, "truncation_side", "right")),
        "inputs": names,
        "torch": torch.__version__,
    }
    meta["agreement"] = _check(model, st, out / MODEL_FILE, out, meta)
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _load_for_export(model: str, folder: Path) -> Any:
    """The model as sentence-transformers loads it, refused unless it is a sentence embedder."""
    from sentence_transformers import SentenceTransformer

    try:
        # Eager attention exports as plain MatMul/Softmax nodes, which ONNX Runtime runs faster
        # on long inputs than the export of torch's scaled_dot_product_attention.
        st = SentenceTransformer(
            str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"}
        )
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"cannot load embedding model KB_EMBEDDING_MODEL={model!r}: {error}"
        ) from error
    st.eval()
    if st.get_embedding_dimension() is None or st.max_seq_length is None or st.tokenizer is None:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r} is not a sentence embedding model "
            "(no embedding dimension, max_seq_length or tokenizer)"
        )
    return st


def _input_names(model: str, st: Any) -> tuple[list[str], dict[str, Any]]:
    """The model's tensor inputs, in `INPUTS` order, and an example batch of them."""
    import torch

    example = st.preprocess(["an example input", "a second, somewhat longer example input"])
    tensors = sorted(k for k, v in example.items() if isinstance(v, torch.Tensor))
    names = [name for name in INPUTS if name in tensors]
    if "input_ids" not in names or "attention_mask" not in names or len(names) != len(tensors):
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r}: cannot export to ONNX a model whose inputs are "
            f"{tensors}"
        )
    return names, example


def _write_onnx(model: str, st: Any, names: list[str], example: dict[str, Any], path: Path) -> None:
    """Record the whole SentenceTransformer, tensors in, sentence embedding out, into `path`."""
    import torch

    class Pipeline(torch.nn.Module):
        """The whole SentenceTransformer as a function of tensors: what ONNX records."""

        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features: dict[str, Any] = dict(zip(names, tensors))
            embedding: torch.Tensor = self.st(features)["sentence_embedding"]
            return embedding

    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(
                Pipeline().eval(),
                tuple(example[name] for name in names),
                str(path),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as error:  # the exporter raises many unrelated types
        raise ModelUnavailableError(
            f"cannot export KB_EMBEDDING_MODEL={model!r} to ONNX (exporting needs the `onnx` "
            f"package): {error}"
        ) from error


def _check(model: str, st: Any, path: Path, out: Path, meta: dict[str, Any]) -> float:
    """Refuse an export whose embeddings differ from torch's; return the lowest cosine."""
    import onnxruntime as ort

    expected = st.encode(
        PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [node.name for node in session.get_inputs()]
    tokenizer = batch_tokenizer(out / TOKENIZER_FILE, meta)
    rows = []
    for batch in (PROBES, *([text] for text in PROBES)):  # padded together, then alone
        (output,) = session.run(None, feeds(inputs, tokenizer.encode_batch(batch)))
        rows.append(normalised(np.asarray(output, dtype=np.float32)))
    together, alone = rows[0], np.concatenate(rows[1:])
    if together.shape != expected.shape:
        raise ModelUnavailableError(
            f"the ONNX export of KB_EMBEDDING_MODEL={model!r} gives vectors of shape "
            f"{together.shape[1:]}, torch gives {expected.shape[1:]}"
        )
    lowest = float(min((together * expected).sum(1).min(), (alone * expected).sum(1).min()))
    if not lowest >= MIN_AGREEMENT:
        raise ModelUnavailableError(
            f"the ONNX export of KB_EMBEDDING_MODEL={model!r} disagrees with torch "
            f"(lowest cosine {lowest:.6f} < {MIN_AGREEMENT}); use the torch runtime"
        )
    return lowest

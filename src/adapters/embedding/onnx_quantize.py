"""The int8 form of a model's ONNX export (KB_EMBEDDING_PRECISION=int8): made once, checked, cached.

ONNX Runtime's own dynamic quantisation (`quantize_dynamic`) turns the weight matrices of every
MatMul with a constant weight into signed 8-bit integers, one scale per output channel, and
quantises their inputs on the fly at each call. The choices were measured on all-MiniLM-L6-v2
on an AVX2 CPU without VNNI (docs/performance.md, "int8 precision"): signed weights run ~1.6x
float32 where unsigned ones run ~1.3x, and one scale per channel raises the mean cosine to the
float32 vectors from 0.96 to 0.99; keeping a sensitive layer in float32 cost more speed than it
gained in agreement. The file sits beside the float32 export, follows it (a new float32 export
makes it stale) and is refused unless its vectors agree with the float32 export's on probe
texts. Needs the `onnx` package, as exporting does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.embedding.onnx_cache import MODEL_FILE, TOKENIZER_FILE, locked
from adapters.embedding.onnx_export import PROBES, batch_tokenizer, feeds, normalised
from domain.errors import ModelUnavailableError

log = logging.getLogger(__name__)

QUANTISED_FORMAT = 1
QUANTISED_FILE = "model.int8.onnx"
QUANTISED_META = "int8.json"  # written last: its presence marks a complete quantisation
# The settings measured best (module docstring); recorded in QUANTISED_META so a change of them
# makes older files stale.
SETTINGS: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True, "ops": ["MatMul"]}
# Lowest cosine to the float32 export on the probe texts. Measured on L6: mean 0.992 and at
# worst 0.984 over 400 texts, but 0.971 for the empty text (two word pieces, nothing to average
# out the rounding); a model that quantises far worse than that is refused.
MIN_AGREEMENT = 0.95


def quantised(model: str, export_dir: Path, meta: dict[str, Any]) -> Path:
    """The int8 model file beside the float32 export in `export_dir`; quantise it if needed."""
    if _current(export_dir, meta) is not None:
        return export_dir / QUANTISED_FILE
    with locked(export_dir):
        if _current(export_dir, meta) is None:  # another process may have just written it
            _quantise(model, export_dir, meta)
    return export_dir / QUANTISED_FILE


def _current(export_dir: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    try:
        kept: dict[str, Any] = json.loads((export_dir / QUANTISED_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if kept.get("format") != QUANTISED_FORMAT or kept.get("source") != meta.get("source"):
        return None
    if kept.get("settings") != SETTINGS or not (export_dir / QUANTISED_FILE).is_file():
        return None
    return kept


def _quantise(model: str, export_dir: Path, meta: dict[str, Any]) -> None:
    started = time.monotonic()
    (export_dir / QUANTISED_META).unlink(missing_ok=True)  # stale: the marker goes first
    fd, scratch = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=export_dir)
    os.close(fd)
    try:
        _write(model, export_dir / MODEL_FILE, Path(scratch))
        agreement = _check(model, export_dir, Path(scratch), meta)
        os.replace(scratch, export_dir / QUANTISED_FILE)
    finally:
        Path(scratch).unlink(missing_ok=True)
    record = {
        "format": QUANTISED_FORMAT,
        "source": meta.get("source"),
        "settings": SETTINGS,
        "agreement": agreement,
    }
    (export_dir / QUANTISED_META).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log.info(
        "quantised %s to int8 in %s (%.1f s, lowest cosine to float32 %.4f)",
        model,
        export_dir,
        time.monotonic() - started,
        agreement,
    )


def _write(model: str, source: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_PRECISION=int8 for KB_EMBEDDING_MODEL={model!r} needs the onnx "
            f"package to quantise the model once (pip install onnx): {error}"
        ) from error
    # The quantiser advises, on the root logger, pre-processing the model first (shape
    # inference and graph optimisation): measured on L6, it changed neither the vectors nor the
    # speed, so the advice would only mislead whoever reads the service's log.
    advice = _Unadvised()
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=getattr(QuantType, SETTINGS["weight_type"]),
            per_channel=SETTINGS["per_channel"],
            op_types_to_quantize=SETTINGS["ops"],
        )
    except Exception as error:  # the quantiser raises many unrelated types
        raise ModelUnavailableError(
            f"cannot quantise KB_EMBEDDING_MODEL={model!r} to int8: {error}"
        ) from error
    finally:
        logging.getLogger().removeFilter(advice)


class _Unadvised(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _check(model: str, export_dir: Path, path: Path, meta: dict[str, Any]) -> float:
    """The lowest cosine between the int8 and float32 models' vectors of the probe texts."""
    import onnxruntime as ort

    tokenizer = batch_tokenizer(export_dir / TOKENIZER_FILE, meta)
    vectors = []
    for file in (export_dir / MODEL_FILE, path):
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        inputs = [node.name for node in session.get_inputs()]
        (output,) = session.run(None, feeds(inputs, tokenizer.encode_batch(PROBES)))
        vectors.append(normalised(np.asarray(output, dtype=np.float32)))
    lowest = float((vectors[0] * vectors[1]).sum(axis=1).min())
    if not lowest >= MIN_AGREEMENT:
        raise ModelUnavailableError(
            f"the int8 form of KB_EMBEDDING_MODEL={model!r} strays too far from float32 "
            f"(lowest cosine {lowest:.4f} < {MIN_AGREEMENT}); use KB_EMBEDDING_PRECISION=float32"
        )
    return lowest

"""OnnxEmbedder: the same model as SentenceTransformerEmbedder, run by ONNX Runtime.

The first construction exports the whole sentence-transformers pipeline (transformer, pooling,
normalisation) with `torch.onnx`, checks the export against torch on a few texts, and caches it;
later constructions load the cached export and never import torch. The cache lives in
`<model folder>/onnx/kb-service/` when that folder is writable and is not a Hugging Face hub
cache snapshot, else in `$XDG_CACHE_HOME/kb-service/onnx/<hash of the folder path>/` (default
`~/.cache`). A cached export is reused while the model folder's files are unchanged.

Runtime needs `onnxruntime`; exporting also needs `torch`, `sentence-transformers` and `onnx`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from adapters.coalescer import BatchObserver, Coalescer
from adapters.heap import map_large_allocations, release_free_memory
from adapters.model_loader import resolve_model
from domain.errors import ModelUnavailableError
from domain.ports import Vectors

log = logging.getLogger(__name__)

EXPORT_FORMAT = 2
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export.json"  # written last: its presence marks a complete export
MIN_AGREEMENT = 0.9999  # cosine between the export and torch on the probe texts
_INPUTS = {  # ONNX input name -> the tokenizers.Encoding field that feeds it
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}
ARENA_SHRINKAGE = "memory.enable_memory_arena_shrinkage"  # an ONNX Runtime run option
# Calls of at least this many padded word pieces (texts x longest) leave enough working memory
# in the arena to give back afterwards; smaller ones leave a few megabytes.
SHRINK_AFTER = 1024
_SKIPPED_DIRS = {"onnx", "openvino", ".git", ".cache"}
_PROBES = [
    "This is an example sentence",
    "Naïve café-owners   don't panic.",
    "",
    "A short one.",
    "The committee reviewed the quarterly budget figures in detail. " * 60,
]

# What one ONNX Runtime call costs beyond its texts, in padded word pieces. On two ORT threads
# one short text took 4.8 ms and each word piece ~0.22 ms (MiniLM-L6), so small calls are nearly
# free; with one single-threaded call per core, 24 did no better (same batch adds; single adds
# from 16 clients 0.79-0.80x the raw model against 0.81-0.87x with 6).
CALL_OVERHEAD = 6


class OnnxEmbedder:
    """Embeds with an ONNX export of a sentence-transformers model; rows are L2-normalised."""

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int = 1,
        calls: int | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        """`calls` model calls run at once (default: `usable_cpus()`), each on
        `threads` ONNX Runtime threads.

        Several single-threaded calls side by side beat one call spread over every core: no
        thread waits for another inside an operator, and a call is never slowed by a request
        thread taking one of its cores. On 2 cores, single adds from 16 clients went from
        0.65-0.75x to 0.79-0.87x the raw model and short batch adds from 1.14-1.28x to
        1.53-1.62x (bench.ingest, same runs). One lone call uses one core.
        """
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ModelUnavailableError(
                f"the ONNX runtime for KB_EMBEDDING_MODEL={model!r} needs the onnxruntime "
                f"package (pip install onnxruntime): {error}"
            ) from error

        folder = _model_folder(model)
        self._name = model
        self._batch_size = batch_size
        self.export_dir = _export_dir(folder, cache_dir)
        meta = _cached_export(self.export_dir, folder)
        if meta is None:
            meta = _export(model, folder, self.export_dir)
        self._dimension = int(meta["dimension"])
        self._max_seq_length = int(meta["max_seq_length"])
        self._window = int(meta["window"])

        self._tokenizer = _batch_tokenizer(self.export_dir / TOKENIZER_FILE, meta)
        # A private copy without truncation or padding, for the chunker's character offsets.
        self._offsets_tokenizer = Tokenizer.from_file(str(self.export_dir / TOKENIZER_FILE))
        self._offsets_tokenizer.no_truncation()
        self._offsets_tokenizer.no_padding()

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: the web server's threads need the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(self.export_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            raise ModelUnavailableError(
                f"cannot load the ONNX export of KB_EMBEDDING_MODEL={model!r} "
                f"from {self.export_dir}: {error}"
            ) from error
        self._inputs = [node.name for node in self._session.get_inputs()]
        # ONNX Runtime's CPU arena keeps the largest calls' working memory for ever (two calls
        # of 32 texts of 256 word pieces at once: ~0.7 GB, mostly attention scores), and its
        # power-of-two growth adds more with each new mix of batch shapes. Shrinking it at the
        # end of every call cost ~6 % CPU (page faults to map it again), so it is shrunk only
        # when the coalescer runs out of work: a tiny call with the shrinkage run option. The
        # regions it frees must not then be reused from glibc's heap (see map_large_allocations).
        map_large_allocations()
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry(ARENA_SHRINKAGE, "cpu:0")
        self._tiny_feeds = _feeds(self._inputs, self._tokenizer.encode_batch([""]))
        self._grown = False  # a large call ran since the arena was last shrunk
        # Concurrent callers' texts are batched together; `calls` forward passes run at once.
        self._coalescer = Coalescer(
            self._encode,
            self._dimension,
            max_texts=batch_size,
            token_budget=batch_size * self._max_seq_length,
            max_tokens=self._max_seq_length,
            observer=observer,
            call_overhead=CALL_OVERHEAD,
            parallel=calls or usable_cpus(),
            on_idle=self.release_memory,
        )

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @property
    def window(self) -> int:
        return self._window

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._coalescer(texts)

    def _encode(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        feeds = _feeds(self._inputs, encodings)
        (output,) = self._session.run(None, feeds)
        if feeds["input_ids"].size >= SHRINK_AFTER:
            self._grown = True  # after the call: see release_memory
        return _normalised(np.asarray(output, dtype=np.float32))

    def release_memory(self) -> None:
        """Hand the unused part of ONNX Runtime's CPU arena back to the operating system.

        A no-op unless a call of at least SHRINK_AFTER padded word pieces ran since the last
        release (small calls' few megabytes are reused). The flag is cleared before the tiny
        call and set after each large one, so a large call running meanwhile is never missed.
        """
        if not self._grown:
            return
        self._grown = False
        self._session.run(None, self._tiny_feeds, self._shrink)
        # The burst's request bodies, texts and token arrays were freed into glibc's per-thread
        # heaps, which keep their free pages mapped: hand those back too.
        release_free_memory()

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self._offsets_tokenizer.encode(text, add_special_tokens=False)
        return [(int(start), int(end)) for start, end in encoding.offsets]


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (`docker --cpus`)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def _feeds(inputs: list[str], encodings: list[Encoding]) -> dict[str, np.ndarray[Any, Any]]:
    return {
        name: np.array([getattr(e, _INPUTS[name]) for e in encodings], dtype=np.int64)
        for name in inputs
    }


def _normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _batch_tokenizer(path: Path, meta: dict[str, Any]) -> Tokenizer:
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


# --- where the export lives, and whether it is current -------------------------------------


def _model_folder(model: str) -> Path:
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


def _export_dir(folder: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
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


def _fingerprint(folder: Path) -> str:
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


def _cached_export(export_dir: Path, folder: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != EXPORT_FORMAT or meta.get("source") != _fingerprint(folder):
        return None
    if not (export_dir / MODEL_FILE).is_file() or not (export_dir / TOKENIZER_FILE).is_file():
        return None
    return meta


@contextmanager
def _locked(export_dir: Path) -> Iterator[None]:
    """Only one process exports into a folder at a time; the others then reuse its export."""
    with open(export_dir / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- the export ---------------------------------------------------------------------------------


def _export(model: str, folder: Path, export_dir: Path) -> dict[str, Any]:
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelUnavailableError(
            f"cannot cache the ONNX export of KB_EMBEDDING_MODEL={model!r} in {export_dir}: {error}"
        ) from error
    with _locked(export_dir):
        meta = _cached_export(export_dir, folder)  # another process may have just written it
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
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r} has no cached ONNX export, and exporting one needs "
            f"torch and sentence-transformers: {error}"
        ) from error
    fingerprint = _fingerprint(folder)
    try:
        # Eager attention exports as plain MatMul/Softmax nodes, which ONNX Runtime runs faster
        # on long inputs than the export of torch's scaled_dot_product_attention (~10 % here).
        st = SentenceTransformer(
            str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"}
        )
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"cannot load embedding model KB_EMBEDDING_MODEL={model!r}: {error}"
        ) from error
    st.eval()
    dimension, max_seq_length = st.get_embedding_dimension(), st.max_seq_length
    hf_tokenizer = st.tokenizer
    if dimension is None or max_seq_length is None or hf_tokenizer is None:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r} is not a sentence embedding model "
            "(no embedding dimension, max_seq_length or tokenizer)"
        )
    example = st.preprocess(["an example input", "a second, somewhat longer example input"])
    names = [name for name in _INPUTS if isinstance(example.get(name), torch.Tensor)]
    extra = [k for k, v in example.items() if isinstance(v, torch.Tensor) and k not in _INPUTS]
    if "input_ids" not in names or "attention_mask" not in names or extra:
        raise ModelUnavailableError(
            f"KB_EMBEDDING_MODEL={model!r}: cannot export to ONNX a model whose inputs are "
            f"{sorted(k for k, v in example.items() if isinstance(v, torch.Tensor))}"
        )

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
                str(out / MODEL_FILE),
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

    (out / TOKENIZER_FILE).write_text(hf_tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "source": fingerprint,
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


def _check(model: str, st: Any, path: Path, out: Path, meta: dict[str, Any]) -> float:
    """Refuse an export whose embeddings differ from torch's; return the lowest cosine."""
    import onnxruntime as ort

    expected = st.encode(
        _PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [node.name for node in session.get_inputs()]
    tokenizer = _batch_tokenizer(out / TOKENIZER_FILE, meta)
    rows = []
    for batch in (_PROBES, *([text] for text in _PROBES)):  # padded together, then alone
        (output,) = session.run(None, _feeds(inputs, tokenizer.encode_batch(batch)))
        rows.append(_normalised(np.asarray(output, dtype=np.float32)))
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

"""OnnxEncoder, the `Encoder` port: the model of SentenceTransformerEncoder run by ONNX Runtime.

The model is exported once by `onnx_export` (which needs torch); later constructions load the
cached export and never import torch. Running needs only `onnxruntime`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from adapters.embedding.encoder import LoadedModel
from adapters.embedding.model_fingerprint import identify
from adapters.embedding.onnx_cache import MODEL_FILE, TOKENIZER_FILE, model_folder
from adapters.embedding.onnx_export import (
    batch_tokenizer,
    exported,
    feeds,
    normalised,
)
from adapters.embedding.onnx_quantize import quantised
from adapters.embedding.tokens import offsets_tokenizer, token_offsets
from adapters.heap import map_large_allocations, release_free_memory
from domain.errors import ModelUnavailableError
from domain.ports import Vectors

ARENA_SHRINKAGE = "memory.enable_memory_arena_shrinkage"  # an ONNX Runtime run option
# Calls of at least this many padded word pieces (texts x longest) leave enough working memory
# in the arena to give back afterwards; smaller ones leave a few megabytes.
SHRINK_AFTER = 1024

# What one ONNX Runtime call costs beyond its texts, in padded word pieces: small calls are
# nearly free (measured for MiniLM, and 24 did no better: docs/performance.md).
CALL_OVERHEAD = 6


class OnnxEncoder(LoadedModel):
    """Encodes with an ONNX export of a sentence-transformers model; rows are L2-normalised."""

    call_overhead = CALL_OVERHEAD

    def __init__(
        self,
        model: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int = 1,
        calls: int | None = None,
        precision: str = "float32",
    ) -> None:
        """`calls` model calls run at once (default: `usable_cpus()`), each on
        `threads` ONNX Runtime threads. `precision` `int8` runs the quantised form of the
        export (`onnx_quantize`): another model as far as knowledge bases are concerned.

        Several single-threaded calls side by side beat one call spread over every core: no
        thread waits for another inside an operator, and a call is never slowed by a request
        thread taking one of its cores (the figures are in docs/performance.md). One lone call
        uses one core.
        """
        ort = _onnxruntime(model)
        self.export_dir, meta = exported(model, cache_dir)
        self._dimension = int(meta["dimension"])
        self._max_seq_length = int(meta["max_seq_length"])
        self._window = int(meta["window"])
        # From the source files, as the torch runtime computes it: the same model either way.
        self._identity = identify(
            model,
            model_folder(model),
            self._dimension,
            self._max_seq_length,
            cache_dir,
            precision=precision,
        )
        self._tokenizer = batch_tokenizer(self.export_dir / TOKENIZER_FILE, meta)
        self._offsets_tokenizer = offsets_tokenizer(
            Tokenizer.from_file(str(self.export_dir / TOKENIZER_FILE))
        )
        self.model_file = self.export_dir / MODEL_FILE
        if precision == "int8":
            self.model_file = quantised(model, self.export_dir, meta)
        self._session = _session(ort, model, self.model_file, threads)
        self._inputs = [node.name for node in self._session.get_inputs()]
        self._prepare_release(ort)
        self._calls = calls or usable_cpus()

    def _prepare_release(self, ort: Any) -> None:
        # ONNX Runtime's CPU arena keeps the largest calls' working memory for ever (two calls
        # of 32 texts of 256 word pieces at once: ~0.7 GB, mostly attention scores), and its
        # power-of-two growth adds more with each new mix of batch shapes. Shrinking it at the
        # end of every call cost ~6 % CPU (page faults to map it again), so it is shrunk only
        # when the callers run out of work: a tiny call with the shrinkage run option. The
        # regions it frees must not then be reused from glibc's heap (see map_large_allocations).
        map_large_allocations()
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry(ARENA_SHRINKAGE, "cpu:0")
        self._tiny_feeds = feeds(self._inputs, self._tokenizer.encode_batch([""]))
        self._grown = False  # a large call ran since the arena was last shrunk

    @property
    def concurrent_calls(self) -> int:
        return self._calls

    def encode(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        inputs = feeds(self._inputs, encodings)
        (output,) = self._session.run(None, inputs)
        if inputs["input_ids"].size >= SHRINK_AFTER:
            self._grown = True  # after the call: see release_memory
        return normalised(np.asarray(output, dtype=np.float32))

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
        return token_offsets(self._offsets_tokenizer, text)


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


def _onnxruntime(model: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ModelUnavailableError(
            f"the ONNX runtime for KB_EMBEDDING_MODEL={model!r} needs the onnxruntime "
            f"package (pip install onnxruntime): {error}"
        ) from error
    return ort


def _session(ort: Any, model: str, path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the web server's threads need the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped exceptions
        raise ModelUnavailableError(
            f"cannot load the ONNX export of KB_EMBEDDING_MODEL={model!r} "
            f"from {path.parent}: {error}"
        ) from error

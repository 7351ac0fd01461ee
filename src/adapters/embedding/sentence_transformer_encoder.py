"""SentenceTransformerEncoder, the `Encoder` port: the model run by sentence-transformers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from adapters.embedding.encoder import LoadedModel
from adapters.embedding.model_fingerprint import identify
from adapters.embedding.model_loader import resolve_model
from adapters.embedding.onnx_cache import model_folder
from adapters.embedding.tokens import offsets_tokenizer, token_offsets
from domain.errors import ModelUnavailableError
from domain.ports import Vectors

# What one forward pass costs beyond its texts, in padded word pieces, as measured for MiniLM
# (docs/performance.md). Batching splits pending texts into calls when that is cheaper than
# padding short texts to a long one.
CALL_OVERHEAD = 48


class SentenceTransformerEncoder(LoadedModel):
    """Encodes with sentence-transformers on the CPU; vectors are L2-normalised float32."""

    call_overhead = CALL_OVERHEAD
    # One forward pass at a time: torch's OpenMP pool belongs to the thread that calls it.
    concurrent_calls = 1

    def __init__(self, model: str, device: str = "cpu") -> None:
        _idle_threads_sleep()
        from sentence_transformers import SentenceTransformer

        location = resolve_model(model)
        try:
            self._model = SentenceTransformer(location, device=device)
        except (OSError, ValueError) as error:
            raise ModelUnavailableError(
                f"cannot load embedding model KB_EMBEDDING_MODEL={model!r}: {error}"
            ) from error
        self._model.eval()
        dimension, max_seq_length = (
            self._model.get_embedding_dimension(),
            self._model.max_seq_length,
        )
        if dimension is None or max_seq_length is None:
            raise ModelUnavailableError(
                f"KB_EMBEDDING_MODEL={model!r} is not a sentence embedding model "
                "(no embedding dimension or max_seq_length)"
            )
        self._dimension, self._max_seq_length = int(dimension), int(max_seq_length)
        # A hub name is in the local cache now that it loaded: the files both runtimes hash.
        folder = Path(location) if Path(location).is_dir() else model_folder(model)
        self._identity = identify(model, folder, self._dimension, self._max_seq_length)
        tokenizer = self._model.tokenizer
        self._window = self._max_seq_length - int(tokenizer.num_special_tokens_to_add(pair=False))
        # A private copy without truncation or padding: the model's own tokenizer changes
        # those settings on every encode call, which is not safe to share between threads.
        self._offsets_tokenizer = offsets_tokenizer(
            Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        )

    def encode(self, texts: list[str]) -> Vectors:
        # One call at a time (`concurrent_calls`): the model's tokenizer changes its
        # truncation/padding state on every call and must not be shared between threads.
        vectors = self._model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self._offsets_tokenizer, text)

    def release_memory(self) -> None:
        """Nothing to do: torch's working memory is left to its own allocator, as it always was."""


def _idle_threads_sleep() -> None:
    """Let torch's OpenMP threads sleep between forward passes instead of spinning.

    Spinning threads take the cores from the web server's threads and from the next forward
    pass; on a busy 2-core host a single query then took 3-4 times longer (README, Measured).
    OpenMP reads the variable once, when torch loads: later it is too late. An explicit
    OMP_WAIT_POLICY wins.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

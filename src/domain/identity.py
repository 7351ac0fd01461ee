"""Which model made a knowledge base's vectors: readable names, and adopting older knowledge bases.

A knowledge base records the loaded model's fingerprint (Embedder.fingerprint) and is usable
while the loaded model has the same one. Knowledge bases from before fingerprints recorded only
the model setting's text; one is adopted when the loaded model reproduces a sample of its own
stored vectors, so moving a venv or switching runtimes never strands existing data.
"""

from __future__ import annotations

import posixpath

import numpy as np

from domain.model import Document, KnowledgeBase
from domain.ports import DocumentLookup, Embedder, VectorIndex

SHORT = 12  # hex digits of a fingerprint shown to people
SAMPLE_CHUNKS = 8
SAMPLE_DOCUMENTS = 64  # the first documents by id the sample is chosen from
MIN_COSINE = 0.9999  # what ONNX Runtime and torch agree to on the same weights
MAX_DIFFERENCE = 1e-4


def short(fingerprint: str) -> str:
    return fingerprint[:SHORT]


def readable_model(text: str) -> str:
    """A model setting as people read it: a hub id as it is, a path as its folder's name.

    A Hugging Face cache snapshot (`models--org--name/snapshots/<revision>`) reads as `org/name`;
    a folder called `model` (as pip packages of models ship it) by its parent's name.
    """
    if not text.startswith(("/", ".", "~")) and text.count("/") <= 1 and not text.endswith("/"):
        return text  # a hub id such as sentence-transformers/all-MiniLM-L6-v2
    parts = [part for part in posixpath.normpath(text).split("/") if part not in ("", ".", "..")]
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3].removeprefix("models--").replace("--", "/")
    if len(parts) >= 2 and parts[-1] == "model":
        return parts[-2]
    return parts[-1] if parts else text


def not_reproduced(
    kb: KnowledgeBase, index: VectorIndex, repository: DocumentLookup, embedder: Embedder
) -> str | None:
    """None if `embedder` reproduces a sample of the knowledge base's stored vectors, else why not.

    The sample is the longest embedded pieces of its first documents: long ones also show a
    different max length. A knowledge base without chunks has nothing to disagree with.
    """
    if kb.dimension != embedder.dimension:
        loaded = embedder.dimension
        return f"its vectors have {kb.dimension} dimensions, the loaded model's {loaded}"
    pieces = _sample(repository.list_documents(kb.name, SAMPLE_DOCUMENTS))
    if not pieces:
        return None
    labels = [label for label, _ in pieces]
    try:
        stored = np.asarray(index.get(labels), dtype=np.float32)
    except KeyError as error:
        return f"its index lacks the vectors of stored chunks ({error})"
    fresh = embedder.embed([text for _, text in pieces])
    cosines = (stored * fresh).sum(axis=1)
    differences = np.abs(stored - fresh).max(axis=1)
    agree = (cosines >= MIN_COSINE) | (differences < MAX_DIFFERENCE)
    if bool(agree.all()):
        return None
    return (
        f"the loaded model does not reproduce its stored vectors ({int((~agree).sum())} of "
        f"{len(pieces)} sampled chunks differ, lowest cosine {float(cosines.min()):.4f})"
    )


def _sample(documents: list[Document]) -> list[tuple[int, str]]:
    """(chunk label, the text that was embedded for it) of up to SAMPLE_CHUNKS chunks."""
    pieces = [
        # A truncated document went to the model whole (see encode_texts); the model cut it.
        (chunk.id, doc.text if doc.truncated else doc.text[chunk.span.start : chunk.span.end])
        for doc in documents
        for chunk in doc.chunks
    ]
    pieces.sort(key=lambda piece: -len(piece[1]))  # stable: ties keep document order
    return pieces[:SAMPLE_CHUNKS]

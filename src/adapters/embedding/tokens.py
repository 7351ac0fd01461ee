"""Word-piece character offsets for the chunker, shared by both encoders (no port of its own)."""

from __future__ import annotations

from tokenizers import Tokenizer


def offsets_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """`tokenizer` (a private copy) set to cut and pad nothing, so offsets span the whole text."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def token_offsets(tokenizer: Tokenizer, text: str) -> list[tuple[int, int]]:
    """Character [start, end) of every word piece of `text`, special tokens excluded."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return [(int(start), int(end)) for start, end in encoding.offsets]

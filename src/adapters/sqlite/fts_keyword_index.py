"""Fts5KeywordIndex: BM25 keyword search over one knowledge base with SQLite's FTS5."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Sequence

from domain.keywords import MAX_MATCHED_TERMS, TermMatches, query_terms

CACHE_KIB = 2048  # SQLite's own default page cache, made explicit: the RAM it may hold
PAGE_BYTES = 32768


class Fts5KeywordIndex:
    """A `KeywordIndex` over FTS5: Porter-stemmed, accent-folded words ranked by bm25().

    SQLite's FTS5 is a maintained BM25 implementation that updates in place, so the keyword
    index follows every add, replace and delete. It is rebuilt from the documents at start,
    like the vector index. One table per knowledge base keeps the document frequencies (IDF)
    per knowledge base.

    The tables live in a private temporary file, not in RAM: FTS5 keeps a copy of every text
    besides its word lists, as much again as the texts themselves (38 MB at 5,000 long
    documents), and in ":memory:" all of it counted in the worker's resident size. SQLite
    creates the file in SQLITE_TMPDIR, TMPDIR or /var/tmp or /tmp, and unlinks it at once, so
    none is left behind. Only its page cache stays in RAM.
    """

    def __init__(self) -> None:
        # "": a temporary database on disk; at most CACHE_KIB of its pages held in RAM. Its
        # writes are never synced (SQLite skips that for temporary files): it is rebuilt anyway.
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        # 32 KiB pages: a query reads the long word lists of common words through the page
        # cache; 4 KiB pages made that 25% slower than ":memory:", 32 KiB ones about as fast.
        self._db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # The rollback journal of a batch in RAM: one file fewer to write (a batch is small).
        self._db.execute("PRAGMA journal_mode = MEMORY")
        self._db.execute(
            "CREATE VIRTUAL TABLE words USING fts5("
            "doc UNINDEXED, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        # FTS5 cannot index `doc`: without this map a delete scans every row (64 ms at 200k).
        self._db.execute("CREATE TABLE rows (doc TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")
        self._lock = threading.Lock()
        self._count = 0
        self._next_row = 1

    def __len__(self) -> int:
        return self._count

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            # One transaction per batch: row-by-row autocommit is five times slower.
            first = self._next_row
            rows = [(first + i, doc_id) for i, (doc_id, _) in enumerate(documents)]
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO rows (row, doc) VALUES (?, ?)", rows)
                self._db.executemany(
                    "INSERT INTO words (rowid, doc, body) VALUES (?, ?, ?)",
                    [(first + i, doc_id, body) for i, (doc_id, body) in enumerate(documents)],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._next_row += len(documents)
            self._count += len(documents)

    def remove(self, document_ids: Collection[str]) -> None:
        with self._lock:
            for doc_id in document_ids:
                found = self._db.execute("SELECT row FROM rows WHERE doc = ?", (doc_id,)).fetchone()
                if found is None:
                    continue
                self._db.execute("DELETE FROM words WHERE rowid = ?", found)
                self._db.execute("DELETE FROM rows WHERE doc = ?", (doc_id,))
                self._count -= 1

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """Up to k (document id, BM25 score) pairs, best first; any query word but a stop
        word may match (FTS5 indexes stop words too: the query leaves them out)."""
        words = query_terms(text)
        if not words or k <= 0:
            return []
        match = " OR ".join(_phrase(word) for word in sorted(words))
        found: list[tuple[str, float]] = []
        with self._lock:
            rows = self._db.execute(
                "SELECT doc, bm25(words) FROM words WHERE words MATCH ? ORDER BY bm25(words)",
                (match,),
            )
            for doc_id, rank in rows:
                if allowed is None or doc_id in allowed:
                    found.append((doc_id, -float(rank)))
                    if len(found) == k:
                        break
        return found

    def term_matches(self, text: str, document_ids: Collection[str]) -> TermMatches:
        terms = query_terms(text)[:MAX_MATCHED_TERMS]
        wanted = list(document_ids)
        frequencies: dict[str, int] = {}
        matched: dict[str, set[str]] = {}
        with self._lock:
            rows = dict(self._rows_of(wanted))
            marks = ",".join("?" * len(rows))
            for term in terms:
                (count,) = self._db.execute(
                    "SELECT count(*) FROM words WHERE words MATCH ?", (_phrase(term),)
                ).fetchone()
                frequencies[term] = int(count)
                if not count or not rows:
                    continue
                holding = self._db.execute(
                    f"SELECT rowid FROM words WHERE words MATCH ? AND rowid IN ({marks})",
                    (_phrase(term), *rows),
                )
                for (row,) in holding:
                    matched.setdefault(rows[row], set()).add(term)
            total = self._count
        return TermMatches(total, frequencies, {d: frozenset(t) for d, t in matched.items()})

    def _rows_of(self, document_ids: list[str]) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        for start in range(0, len(document_ids), 500):  # under SQLite's bound-variable limit
            part = document_ids[start : start + 500]
            found += self._db.execute(
                f"SELECT row, doc FROM rows WHERE doc IN ({','.join('?' * len(part))})", part
            ).fetchall()
        return found


def _phrase(word: str) -> str:
    """One word as an FTS5 string: no word of a query is read as FTS5 syntax."""
    return '"' + word.replace('"', '""') + '"'

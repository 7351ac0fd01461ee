"""PgKeywordIndex: one knowledge base's keyword search with PostgreSQL full-text search.

Each document's text is stored as an English `tsvector` (stemmed, stop words dropped) in
`kb_keywords`, under a GIN index. A query matches documents sharing any of its words and is
ranked by `ts_rank` normalised by document length (rank / (1 + log(length))): term frequency
with a length penalty, as BM25 does, though the numbers differ from SQLite FTS5's BM25.
The `english` configuration drops the same stop words as domain.keywords.STOP_WORDS (the list
is PostgreSQL's), so both backends look up the same words.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from psycopg import sql

from adapters.postgres.database import PostgresDatabase
from domain.keywords import MAX_MATCHED_TERMS, TermMatches

LANGUAGE = "english"
LENGTH_NORMALISATION = 1  # ts_rank's flag: divide by 1 + log(document length)
# The query's lexemes in order of first use; per lexeme, the documents of the knowledge base
# holding it (through the GIN index) and which of the asked ones do. quote_literal makes a
# lexeme one tsquery operand whatever its characters.
TERM_MATCHES = """
WITH q AS (
    SELECT lexeme, quote_literal(lexeme)::tsquery AS query
    FROM unnest(to_tsvector(%(language)s::regconfig, %(text)s))
    ORDER BY positions[1], lexeme LIMIT %(limit)s
)
SELECT q.lexeme,
    (SELECT count(*) FROM kb_keywords k WHERE k.kb = %(kb)s AND k.terms @@ q.query),
    ARRAY(SELECT k.document_id FROM kb_keywords k
          WHERE k.kb = %(kb)s AND k.document_id = ANY(%(ids)s) AND k.terms @@ q.query)
FROM q
"""


class PgKeywordIndex:
    """`KeywordIndex` of knowledge base `kb`, a view of its rows in the shared database."""

    def __init__(self, database: PostgresDatabase, kb: str) -> None:
        self._db = database
        self._kb = kb

    def __len__(self) -> int:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM kb_keywords WHERE kb = %s", (self._kb,)
            ).fetchone()
        return int(row[0]) if row else 0

    def resume(self, kept: Iterable[tuple[str, str]]) -> list[str] | None:
        """Nothing to take back: the rows are the store's own, written in the same
        transactions as the documents, so they are always complete."""
        return []

    def discard(self) -> None:
        """Nothing kept apart: the rows go with the knowledge base's."""
        return None

    def add(self, documents: Sequence[tuple[str, str]]) -> None:
        if not documents:
            return
        with self._db.transaction(), self._db.connection() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO kb_keywords (kb, document_id, terms) "
                "VALUES (%s, %s, to_tsvector(%s::regconfig, %s))",
                [(self._kb, doc_id, LANGUAGE, text) for doc_id, text in documents],
            )

    def remove(self, document_ids: Collection[str]) -> None:
        wanted = list(document_ids)
        if not wanted:
            return
        with self._db.connection() as conn:
            conn.execute(
                "DELETE FROM kb_keywords WHERE kb = %s AND document_id = ANY(%s)",
                (self._kb, wanted),
            )

    def search(
        self, text: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        if k <= 0 or (allowed is not None and not allowed):
            return []
        restrict = sql.SQL("") if allowed is None else sql.SQL("AND document_id = ANY(%s)")
        # Any word of the query, not all of them: plainto_tsquery joins its lexemes with &.
        statement = sql.SQL(
            "WITH q AS (SELECT replace(plainto_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')"
            "::tsquery AS query) "
            "SELECT document_id, ts_rank(terms, q.query, %s) AS score FROM kb_keywords, q "
            "WHERE kb = %s AND terms @@ q.query {restrict} "
            "ORDER BY score DESC, document_id LIMIT %s"
        ).format(restrict=restrict)
        params: list[object] = [LANGUAGE, text, LENGTH_NORMALISATION, self._kb]
        if allowed is not None:
            params.append(list(allowed))
        params.append(k)
        with self._db.connection() as conn:
            rows = conn.execute(statement, params).fetchall()
        return [(doc_id, float(score)) for doc_id, score in rows]

    def term_matches(self, text: str, document_ids: Collection[str]) -> TermMatches:
        params = {
            "language": LANGUAGE,
            "text": text,
            "limit": MAX_MATCHED_TERMS,
            "kb": self._kb,
            "ids": list(document_ids),
        }
        with self._db.connection() as conn:
            rows = conn.execute(TERM_MATCHES, params).fetchall()
            total = conn.execute(
                "SELECT count(*) FROM kb_keywords WHERE kb = %s", (self._kb,)
            ).fetchone()
        matched: dict[str, set[str]] = {}
        for lexeme, _, holders in rows:
            for doc_id in holders:
                matched.setdefault(doc_id, set()).add(lexeme)
        return TermMatches(
            int(total[0]) if total else 0,
            {lexeme: int(count) for lexeme, count, _ in rows},
            {doc_id: frozenset(terms) for doc_id, terms in matched.items()},
        )

"""Making a store look as an older kb-service wrote it: the columns later migrations added."""

from __future__ import annotations

import re


def columns_since(migrations: list[str], version: int) -> list[tuple[str, str]]:
    """(table, column) of every column the migrations from `version` on added: the ones a
    store from before that version lacks, whatever migrations came later."""
    return [
        (table, column)
        for step in migrations[version:]
        for table, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", step)
    ]


def undo_since(migrations: list[str], version: int) -> list[str]:
    """Statements that take a store back to `version`'s shape: drop the columns and the
    tables the later migrations added (last first)."""
    statements = [
        f"ALTER TABLE {table} DROP COLUMN {column}"
        for table, column in columns_since(migrations, version)
    ]
    for step in reversed(migrations[version:]):
        statements += [f"DROP TABLE {table}" for table in re.findall(r"CREATE TABLE (\w+)", step)]
    return statements

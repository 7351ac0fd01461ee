"""Metadata filters as SQL: each condition becomes a SQL/JSON path test over `metadata_jsonb`.

The path language gives the `memory` backend's semantics without hand-written type juggling:
in lax mode a path over an array tests each element (a list matches if any element does), and
comparing values of different types (a number with a string, a boolean with a number) is
"unknown", so it never matches, as in `domain.filters.matches`. Values travel as path variables,
never spliced into the SQL; keys are quoted as path string literals.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from domain.filters import Condition, Filter, Logical

COLUMN = sql.Identifier("metadata_jsonb")
PATH_OPERATORS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def where_sql(node: Filter) -> sql.Composable:
    """A boolean SQL expression, true for the rows whose metadata matches `node`."""
    if isinstance(node, Logical):
        parts = [where_sql(clause) for clause in node.clauses]
        if not parts:  # {} matches everything, as all([]) does; an empty $or nothing
            return sql.SQL("TRUE" if node.op == "$and" else "FALSE")
        if node.op == "$not":
            return sql.SQL("(NOT {})").format(parts[0])
        joiner = sql.SQL(" AND " if node.op == "$and" else " OR ")
        return sql.SQL("({})").format(joiner.join(parts))
    return _condition(node)


def _condition(node: Condition) -> sql.Composable:
    if node.op == "$exists":
        present = sql.SQL("({} ? {})").format(COLUMN, sql.Literal(node.field))
        return present if node.value else sql.SQL("(NOT {})").format(present)
    if node.op in ("$in", "$nin"):
        values: tuple[Any, ...] = node.value
        test = " || ".join(f"@ == $v{i}" for i in range(len(values)))
        found = _path_test(node.field, test, {f"v{i}": v for i, v in enumerate(values)})
        return found if node.op == "$in" else sql.SQL("(NOT {})").format(found)
    if node.op == "$ne":
        return sql.SQL("(NOT {})").format(_path_test(node.field, "@ == $v", {"v": node.value}))
    return _path_test(node.field, f"@ {PATH_OPERATORS[node.op]} $v", {"v": node.value})


def _path_test(field: str, test: str, variables: dict[str, Any]) -> sql.Composable:
    key = json.dumps(field, ensure_ascii=False)  # a valid path string literal
    path = f"lax $.{key} ? ({test})"
    return sql.SQL("jsonb_path_exists({}, {}::jsonpath, {})").format(
        COLUMN, sql.Literal(path), sql.Literal(Jsonb(variables))
    )

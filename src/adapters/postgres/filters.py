"""Metadata filters as SQL: each condition becomes a SQL/JSON path test over `metadata_jsonb`.

No port of its own: `PostgresDocumentRepository`'s filtered listing and chunk ids.

The path language gives the `memory` backend's semantics without hand-written type juggling:
in lax mode a path over an array tests each element (a list matches if any element does), and
comparing values of different types (a number with a string, a boolean with a number) is
"unknown", so it never matches, as in `domain.filters.matches`. Paths, keys and values travel
as query parameters, never spliced into the SQL text (where psycopg would also read any `%`).
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from domain.filters import Condition, Filter, Logical

COLUMN = sql.Identifier("metadata_jsonb")
PATH_OPERATORS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def where_sql(node: Filter) -> tuple[sql.Composable, list[Any]]:
    """A boolean SQL expression with `%s` placeholders, true for the rows whose metadata
    matches `node`, and the parameters for its placeholders, in order."""
    params: list[Any] = []
    return _node(node, params), params


def _node(node: Filter, params: list[Any]) -> sql.Composable:
    if isinstance(node, Logical):
        parts = [_node(clause, params) for clause in node.clauses]
        if not parts:  # {} matches everything, as all([]) does; an empty $or nothing
            return sql.SQL("TRUE" if node.op == "$and" else "FALSE")
        if node.op == "$not":
            return sql.SQL("(NOT {})").format(parts[0])
        joiner = sql.SQL(" AND " if node.op == "$and" else " OR ")
        return sql.SQL("({})").format(joiner.join(parts))
    return _condition(node, params)


def _condition(node: Condition, params: list[Any]) -> sql.Composable:
    if node.op == "$exists":
        params.append(node.field)
        present = sql.SQL("({} ? %s)").format(COLUMN)
        return present if node.value else sql.SQL("(NOT {})").format(present)
    if node.op in ("$in", "$nin"):
        # One jsonb[] parameter, not a path test per value: 10,000 `||` in one path expression
        # nest past PostgreSQL's stack depth. jsonb `=` is the path's `==` (1 = 1.0, 1 <> true,
        # 1 <> "1"), and `[*]` in lax mode yields each element of a list, or a scalar itself.
        params.extend([f"lax $.{_key_literal(node.field)}[*]", [Jsonb(v) for v in node.value]])
        found = sql.SQL(
            "EXISTS (SELECT FROM jsonb_path_query({}, %s::jsonpath) AS found(value) "
            "WHERE found.value = ANY(%s::jsonb[]))"
        ).format(COLUMN)
        return found if node.op == "$in" else sql.SQL("(NOT {})").format(found)
    if node.op == "$ne":
        equal = _path_test(node.field, "@ == $v", {"v": node.value}, params)
        return sql.SQL("(NOT {})").format(equal)
    return _path_test(node.field, f"@ {PATH_OPERATORS[node.op]} $v", {"v": node.value}, params)


def _path_test(
    field: str, test: str, variables: dict[str, Any], params: list[Any]
) -> sql.Composable:
    params.extend([f"lax $.{_key_literal(field)} ? ({test})", Jsonb(variables)])
    return sql.SQL("jsonb_path_exists({}, %s::jsonpath, %s)").format(COLUMN)


def _key_literal(field: str) -> str:
    return json.dumps(field, ensure_ascii=False)  # a valid path string literal

"""Mongo-style metadata filters, validated into a tree that repositories evaluate or translate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidInputError
from domain.model import is_scalar

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or", "$not")


@dataclass(frozen=True)
class Condition:
    """`field <op> value`; a list-valued field matches if any element does (as in MongoDB)."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Logical:
    """`$and` / `$or` over clauses, or `$not` over exactly one."""

    op: str
    clauses: tuple[Filter, ...]


Filter = Condition | Logical


def parse_filter(spec: Any, path: str = "filter") -> Filter:
    """Validate a filter document; InvalidInputError names the offending part by its path."""
    if not isinstance(spec, Mapping):
        _fail(path, "must be an object")
    clauses = [_clause(key, value, f"{path}.{key}") for key, value in spec.items()]
    return clauses[0] if len(clauses) == 1 else Logical("$and", tuple(clauses))


def _clause(key: Any, value: Any, path: str) -> Filter:
    if not isinstance(key, str) or not key or "\x00" in key:
        _fail(path, "keys must be non-empty strings without NUL")
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            _fail(path, f"{key} takes a non-empty list of filters")
        return Logical(key, tuple(parse_filter(v, f"{path}[{i}]") for i, v in enumerate(value)))
    if key == "$not":
        return Logical("$not", (parse_filter(value, path),))
    if key.startswith("$"):
        _fail(path, f"unknown operator {key}; use one of {', '.join(COMPARISONS + LOGICAL)}")
    if isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
        return _operators(key, value, path)
    return Condition(key, "$eq", _operand("$eq", value, path))


def _operators(field: str, spec: Mapping[str, Any], path: str) -> Filter:
    clauses: list[Filter] = []
    for op, value in spec.items():
        where = f"{path}.{op}"
        if op == "$not":
            if not isinstance(value, Mapping) or not value:
                _fail(where, '$not takes an operator object such as {"$gt": 3}')
            clauses.append(Logical("$not", (_operators(field, value, where),)))
        elif op in COMPARISONS:
            clauses.append(Condition(field, op, _operand(op, value, where)))
        else:
            _fail(where, f"unknown operator {op}; use one of {', '.join((*COMPARISONS, '$not'))}")
    return clauses[0] if len(clauses) == 1 else Logical("$and", tuple(clauses))


def _operand(op: str, value: Any, path: str) -> Any:
    if op == "$exists":
        if not isinstance(value, bool):
            _fail(path, "$exists takes true or false")
        return value
    if op in ("$in", "$nin"):
        if not isinstance(value, list) or not all(is_scalar(v) for v in value):
            _fail(path, f"{op} takes a list of strings, finite numbers or booleans")
        return tuple(value)
    if not is_scalar(value):
        _fail(path, f"{op} takes a string, a finite number or a boolean")
    if op in ("$gt", "$gte", "$lt", "$lte") and isinstance(value, bool):
        _fail(path, f"{op} takes a string or a number")
    return value


def _fail(path: str, message: str) -> None:
    raise InvalidInputError(f"invalid filter: {path}: {message}", errors={path: [message]})


def matches(node: Filter, metadata: Mapping[str, Any]) -> bool:
    """Evaluate a parsed filter against one document's metadata."""
    if isinstance(node, Logical):
        if node.op == "$and":
            return all(matches(clause, metadata) for clause in node.clauses)
        if node.op == "$or":
            return any(matches(clause, metadata) for clause in node.clauses)
        return not matches(node.clauses[0], metadata)
    present = node.field in metadata
    if node.op == "$exists":
        return present is node.value
    values = _values(metadata[node.field]) if present else []
    if node.op == "$ne":
        return not any(_equal(v, node.value) for v in values)
    if node.op == "$nin":
        return not any(_equal(v, w) for v in values for w in node.value)
    if node.op == "$in":
        return any(_equal(v, w) for v in values for w in node.value)
    if node.op == "$eq":
        return any(_equal(v, node.value) for v in values)
    return any(_compare(node.op, v, node.value) for v in values)


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _kind(value: Any) -> str:
    # Booleans are not numbers here, although Python says True == 1.
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "str"


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b) or _kind(a) == "bool":
        return False
    if op == "$gt":
        return bool(a > b)
    if op == "$gte":
        return bool(a >= b)
    if op == "$lt":
        return bool(a < b)
    return bool(a <= b)

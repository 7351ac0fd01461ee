"""Mongo-style metadata filters, validated into a tree that repositories evaluate or translate."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from domain.errors import InvalidInputError
from domain.model import is_scalar

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or", "$not")
# Generous for filters people write (Elasticsearch 7 nests bool queries 20 deep by default; a
# bulk delete takes 10,000 ids), yet far from Python's recursion limit and PostgreSQL's stack
# depth. The memory backend tests each document in Python: clauses cost, listed values do not.
MAX_FILTER_DEPTH = 32  # filter and operator objects nested in one another
MAX_FILTER_CLAUSES = 256  # conditions and $and/$or/$not operators (several keys: an $and)
MAX_FILTER_VALUES = 10_000  # values listed in $in and $nin, summed over the filter
_EQUALITY = ("$eq", "$ne", "$in", "$nin")
_KINDS = {bool: "bool", int: "number", float: "number", str: "str"}
_ORDER = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """`field <op> value`; a list-valued field matches if any element does (as in MongoDB)."""

    field: str
    op: str
    value: Any

    @cached_property
    def keys(self) -> frozenset[tuple[str, Any]]:
        """The values $eq/$ne/$in/$nin compare with, as `_key`s: one set lookup per test."""
        listed = self.value if self.op in ("$in", "$nin") else (self.value,)
        return frozenset(_key(v) for v in listed)

    @cached_property
    def test(self) -> Test:
        """`matches` for this node, built once: the memory backend calls it per document."""
        return _condition_test(self)


@dataclass(frozen=True)
class Logical:
    """`$and` / `$or` over clauses, or `$not` over exactly one."""

    op: str
    clauses: tuple[Filter, ...]

    @cached_property
    def test(self) -> Test:
        return _logical_test(self)


Filter = Condition | Logical
Test = Callable[[Mapping[str, Any]], bool]


class _Size:
    """What a filter being parsed holds so far, against the MAX_FILTER_* limits."""

    def __init__(self) -> None:
        self.clauses = 0
        self.values = 0

    def clause(self, path: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_FILTER_CLAUSES:
            _fail(path, f"too many clauses: MAX_FILTER_CLAUSES is {MAX_FILTER_CLAUSES}")

    def nested(self, depth: int, path: str) -> None:
        if depth > MAX_FILTER_DEPTH:
            _fail(path, f"nested too deep: MAX_FILTER_DEPTH is {MAX_FILTER_DEPTH}")

    def listed(self, count: int, path: str) -> None:
        self.values += count
        if self.values > MAX_FILTER_VALUES:
            _fail(path, f"too many listed values: MAX_FILTER_VALUES is {MAX_FILTER_VALUES}")


def parse_filter(spec: Any, path: str = "filter") -> Filter:
    """Validate a filter document; InvalidInputError names the offending part by its path.

    Refuses filters nested deeper than MAX_FILTER_DEPTH objects, or holding more than
    MAX_FILTER_CLAUSES clauses or MAX_FILTER_VALUES values in $in/$nin lists.
    """
    return _parse(spec, path, 1, _Size())


def _parse(spec: Any, path: str, depth: int, size: _Size) -> Filter:
    # Checked before descending: a filter nested 100,000 deep never reaches the recursion limit.
    size.nested(depth, path)
    if not isinstance(spec, Mapping):
        _fail(path, "must be an object")
    clauses = [_clause(key, value, f"{path}.{key}", depth, size) for key, value in spec.items()]
    return _all_of(clauses, path, size)


def _all_of(clauses: list[Filter], path: str, size: _Size) -> Filter:
    if len(clauses) == 1:
        return clauses[0]
    size.clause(path)  # an object with several keys (or none) is an $and of them
    return Logical("$and", tuple(clauses))


def _clause(key: Any, value: Any, path: str, depth: int, size: _Size) -> Filter:
    if not isinstance(key, str) or not key or "\x00" in key:
        _fail(path, "keys must be non-empty strings without NUL")
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            _fail(path, f"{key} takes a non-empty list of filters")
        size.clause(path)
        clauses = tuple(_parse(v, f"{path}[{i}]", depth + 1, size) for i, v in enumerate(value))
        return Logical(key, clauses)
    if key == "$not":
        size.clause(path)
        return Logical("$not", (_parse(value, path, depth + 1, size),))
    if key.startswith("$"):
        _fail(path, f"unknown operator {key}; use one of {', '.join(COMPARISONS + LOGICAL)}")
    if isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
        return _operators(key, value, path, depth + 1, size)
    size.clause(path)
    return Condition(key, "$eq", _operand("$eq", value, path, size))


def _operators(field: str, spec: Mapping[str, Any], path: str, depth: int, size: _Size) -> Filter:
    size.nested(depth, path)
    clauses: list[Filter] = []
    for op, value in spec.items():
        where = f"{path}.{op}"
        if op == "$not":
            if not isinstance(value, Mapping) or not value:
                _fail(where, '$not takes an operator object such as {"$gt": 3}')
            size.clause(where)
            clauses.append(Logical("$not", (_operators(field, value, where, depth + 1, size),)))
        elif op in COMPARISONS:
            size.clause(where)
            clauses.append(Condition(field, op, _operand(op, value, where, size)))
        else:
            _fail(where, f"unknown operator {op}; use one of {', '.join((*COMPARISONS, '$not'))}")
    return _all_of(clauses, path, size)


def _operand(op: str, value: Any, path: str, size: _Size) -> Any:
    if op == "$exists":
        if not isinstance(value, bool):
            _fail(path, "$exists takes true or false")
        return value
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            _fail(path, f"{op} takes a list of strings, finite numbers or booleans")
        size.listed(len(value), path)
        if not all(is_scalar(v) for v in value):
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
    return node.test(metadata)


def _logical_test(node: Logical) -> Test:
    if node.op == "$not":
        inner = node.clauses[0].test
        return lambda metadata: not inner(metadata)
    if node.op == "$and":
        tests = tuple(clause.test for clause in node.clauses)
        if len(tests) == 1:
            return tests[0]
        return lambda metadata: all(test(metadata) for test in tests)
    # An $or of $eq/$in conditions on one field is one set lookup, however many there are.
    keys: dict[str, set[tuple[str, Any]]] = {}
    others: list[Test] = []
    for clause in node.clauses:
        if isinstance(clause, Condition) and clause.op in ("$eq", "$in"):
            keys.setdefault(clause.field, set()).update(clause.keys)
        else:
            others.append(clause.test)
    tests = (*(_found(field, frozenset(k), True) for field, k in keys.items()), *others)
    if len(tests) == 1:
        return tests[0]
    return lambda metadata: any(test(metadata) for test in tests)


def _condition_test(node: Condition) -> Test:
    field, value = node.field, node.value
    if node.op == "$exists":
        return lambda metadata: (field in metadata) is value
    if node.op in _EQUALITY:
        return _found(field, node.keys, node.op in ("$eq", "$in"))
    kind, compare = _kind(value), _ORDER[node.op]
    if kind == "bool":  # booleans are not ordered
        return lambda metadata: False

    def test(metadata: Mapping[str, Any]) -> bool:
        held = metadata.get(field, _MISSING)
        if isinstance(held, list):
            return any(_kind(v) == kind and compare(v, value) for v in held)
        return held is not _MISSING and _kind(held) == kind and bool(compare(held, value))

    return test


def _found(field: str, keys: frozenset[tuple[str, Any]], wanted: bool) -> Test:
    """True when a value of `field` is (or, not `wanted`, none is) among `keys`."""

    def test(metadata: Mapping[str, Any]) -> bool:
        held = metadata.get(field, _MISSING)
        if held is _MISSING:
            return not wanted
        if isinstance(held, list):
            return any(_key(v) in keys for v in held) is wanted
        return (_key(held) in keys) is wanted

    return test


def _kind(value: Any) -> str:
    # Booleans are not numbers here, although Python says True == 1.
    kind = _KINDS.get(type(value))  # JSON's own types: one lookup
    if kind is not None:
        return kind
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "str"


def _key(value: Any) -> tuple[str, Any]:
    # Keys are equal when the values are equal and of one kind: 1 and 1.0 are, True and 1 not.
    return _kind(value), value

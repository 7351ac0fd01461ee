"""The stateful test's oracle: what the service must hold, in plain Python, and its rules.

Written apart from the service's own code on purpose: a rule that both got wrong the same
way would pass unseen. `valid_document_id` is the id rule decided for issue 15.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MAX_DOCUMENT_ID_LENGTH = 256
Metadata = dict[str, Any]


def valid_document_id(doc_id: str) -> bool:
    """1-256 characters; no control character (Cc) or lone surrogate; no outer whitespace;
    read as a '/'-separated path: no empty segment and no '.' or '..' segment."""
    if not 1 <= len(doc_id) <= MAX_DOCUMENT_ID_LENGTH or doc_id != doc_id.strip():
        return False
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in doc_id):
        return False
    return all(segment not in ("", ".", "..") for segment in doc_id.split("/"))


def addressable(doc_id: str) -> bool:
    """Whether the id can be written in a URL path at all (a lone surrogate has no UTF-8)."""
    return not any(unicodedata.category(char) == "Cs" for char in doc_id)


def valid_description(description: str) -> bool:
    return "\x00" not in description


def finite_filter(spec: Any) -> bool:
    """No NaN or infinity anywhere in a filter: JSON has neither, so both backends refuse them."""
    if isinstance(spec, float):
        return math.isfinite(spec)
    if isinstance(spec, dict):
        return all(finite_filter(value) for value in spec.values())
    if isinstance(spec, list):
        return all(finite_filter(value) for value in spec)
    return True


def matches(spec: dict[str, Any], metadata: Metadata) -> bool:
    """MongoDB's meaning of the filters the test sends: a list field matches if any item does,
    a missing field matches $ne, $nin and {"$exists": false}, and only values of one kind
    (string, number, boolean) compare."""
    return all(_clause(key, value, metadata) for key, value in spec.items())


def _clause(key: str, value: Any, metadata: Metadata) -> bool:
    if key == "$and":
        return all(matches(clause, metadata) for clause in value)
    if key == "$or":
        return any(matches(clause, metadata) for clause in value)
    if key == "$not":
        return not matches(value, metadata)
    ops = value if isinstance(value, dict) else {"$eq": value}
    present = key in metadata
    items = metadata.get(key)
    items = items if isinstance(items, list) else [items] if present else []
    return all(_operator(op, operand, present, items) for op, operand in ops.items())


def _operator(op: str, operand: Any, present: bool, items: list[Any]) -> bool:
    if op == "$exists":
        return present is operand
    if op == "$not":
        return not all(_operator(o, v, present, items) for o, v in operand.items())
    if op in ("$in", "$nin"):
        found = any(same(item, choice) for item in items for choice in operand)
        return found if op == "$in" else not found
    if op in ("$eq", "$ne"):
        found = any(same(item, operand) for item in items)
        return found if op == "$eq" else not found
    return any(_compare(op, item, operand) for item in items)


def _compare(op: str, a: Any, b: Any) -> bool:
    if kind(a) != kind(b) or kind(a) == "bool":
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "str"


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: 2 and 2.0 are one number, True is not 1."""
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            same(x, y) for x, y in zip(a, b)
        )  # fmt: skip
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            same(a[k], b[k]) for k in a
        )  # fmt: skip
    return kind(a) == kind(b) and a == b


@dataclass
class KnowledgeBaseModel:
    description: str
    documents: dict[str, tuple[str, Metadata]] = field(default_factory=dict)


@dataclass
class Model:
    """Knowledge bases by name, each with its documents: id -> (text, metadata)."""

    kbs: dict[str, KnowledgeBaseModel] = field(default_factory=dict)
    serial: int = 0

    def unique_text(self, words: str) -> str:
        """A text no other document has: the fake embedder scores only identical bags of words
        1.0, and a word used once (`t<serial>`) makes each bag different."""
        self.serial += 1
        return f"t{self.serial} {words}"

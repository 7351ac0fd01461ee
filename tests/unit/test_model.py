from datetime import UTC, datetime

import pytest

from domain.errors import InvalidInputError
from domain.model import KnowledgeBase, NewDocument, validate_metadata, validate_name

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["a", "kb-1", "my_kb.v2", "0abc", "x" * 64])
def test_valid_knowledge_base_names_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "has space", "-lead", ".lead", "x" * 65, "ü"])
def test_invalid_knowledge_base_names_are_refused(name):
    with pytest.raises(InvalidInputError):
        validate_name(name)


def test_flat_metadata_with_scalar_lists_is_accepted():
    value = {"s": "x", "i": 1, "f": 1.5, "b": True, "l": ["a", 2, False]}
    assert validate_metadata(value) == value


@pytest.mark.parametrize(
    "metadata", [{"nested": {"a": 1}}, {"l": [[1]]}, {"n": None}, {"": 1}, {"f": float("nan")}]
)
def test_nested_or_odd_metadata_is_refused(metadata):
    with pytest.raises(InvalidInputError):
        validate_metadata(metadata)


def test_naive_timestamps_are_refused():
    with pytest.raises(InvalidInputError):
        KnowledgeBase("kb", "m", 3, datetime(2026, 1, 1))


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_document_text_is_refused(text):
    with pytest.raises(InvalidInputError):
        NewDocument(text=text)


def test_knowledge_bases_are_frozen():
    kb = KnowledgeBase("kb", "m", 3, NOW)
    with pytest.raises(AttributeError):
        kb.name = "other"  # type: ignore[misc]

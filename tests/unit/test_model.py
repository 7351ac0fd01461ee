from datetime import UTC, datetime

import pytest

from domain.errors import InvalidInputError
from domain.model import (
    DOCUMENT_ID_RULE,
    NAME_RULE,
    KnowledgeBase,
    NewDocument,
    validate_description,
    validate_document_id,
    validate_metadata,
    validate_name,
)

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


VALID_IDS = [
    "a",
    "docs/intro.md",
    "a b",
    "100%",
    "é",
    "a?b#c",
    "notes/2024/a.md",
    "émoji 🎉",
    "delete",
    "...",
    ".hidden",
    "a..b",
    "a/.b/c.",
    "\uffff",
    "x" * 256,
]

INVALID_IDS = [
    "",
    "x" * 257,
    " padded",
    "padded ",
    "\u00a0nbsp",
    "/a",
    "a/",
    "a//b",
    "/",
    ".",
    "..",
    "./a",
    "a/.",
    "a/./b",
    "a/../b",
    "../a",
    "line\nbreak",
    "tab\tinside",
    "nul\x00",
    "del\x7f",
    "c1\x85control",
    "lone \ud800 surrogate",
    "\udfff",
]


@pytest.mark.parametrize("document_id", VALID_IDS)
def test_ids_every_route_can_address_are_valid(document_id):
    assert validate_document_id(document_id) == document_id
    assert NewDocument(text="t", id=document_id).id == document_id


@pytest.mark.parametrize("document_id", INVALID_IDS)
def test_an_id_no_route_could_address_exactly_is_refused_naming_the_rule(document_id):
    with pytest.raises(InvalidInputError) as raised:
        NewDocument(text="t", id=document_id)
    assert raised.value.errors == {"id": [DOCUMENT_ID_RULE]}
    assert DOCUMENT_ID_RULE in raised.value.message


def test_a_refused_huge_id_is_not_echoed_whole_in_the_message():
    with pytest.raises(InvalidInputError) as raised:
        validate_document_id("x" * 1_000_000)
    assert len(raised.value.message) < 1000


def test_an_invalid_name_gives_the_rule_once():
    with pytest.raises(InvalidInputError) as raised:
        validate_name("Not A Slug")
    assert raised.value.errors == {"name": [NAME_RULE]}
    assert raised.value.message.count(NAME_RULE) == 1


@pytest.mark.parametrize("description", ["a\x00b", 3])
def test_a_description_with_nul_or_not_a_string_is_refused(description):
    with pytest.raises(InvalidInputError) as raised:
        validate_description(description)
    assert "description" in raised.value.errors


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused_in_metadata(number):
    for metadata in ({"n": number}, {"n": [1, number]}):
        with pytest.raises(InvalidInputError):
            validate_metadata(metadata)

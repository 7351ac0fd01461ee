"""Limits: each refusal names the limit, its value and the field; no limit above the domain's."""

from __future__ import annotations

import pytest

from domain.errors import ConflictError, InvalidInputError
from domain.limits import Limit, Limits
from domain.search_request import MAX_TOP_K


def limits(**values: int) -> Limits:
    defaults = {
        "top_k": 5,
        "query_chars": 20,
        "batch_queries": 3,
        "batch_documents": 3,
        "text_chars": 50,
        "metadata_keys": 4,
        "metadata_bytes": 200,
        "knowledge_bases": 2,
    }
    defaults.update(values)
    return Limits(**{name: Limit(value, f"LIMIT_{name}") for name, value in defaults.items()})


def test_a_search_over_a_limit_is_refused_naming_the_limit_and_the_field_under_its_path():
    with pytest.raises(InvalidInputError) as refused:
        limits().check_search(6, "x", ("queries", "1"))
    assert refused.value.message == "top_k is 6: LIMIT_top_k is 5"
    assert refused.value.errors == {"queries": {"1": {"top_k": ["LIMIT_top_k is 5"]}}}
    with pytest.raises(InvalidInputError, match="LIMIT_query_chars is 20"):
        limits().check_search(5, "x" * 21)


def test_values_at_the_limits_pass_and_values_of_another_type_are_left_to_the_schema():
    limits().check_search(5, "x" * 20)
    limits().check_search(True, ["not", "text"])
    limits().check_metadata({f"k{i}": "v" for i in range(4)})
    limits().check_metadata("not an object")
    limits().check_documents(["x" * 50] * 3)
    limits().check_room(1)


def test_metadata_is_limited_in_keys_and_in_bytes_as_utf8_json():
    with pytest.raises(InvalidInputError, match="metadata has 5 keys: LIMIT_metadata_keys is 4"):
        limits().check_metadata({f"k{i}": "v" for i in range(5)})
    with pytest.raises(InvalidInputError, match="LIMIT_metadata_bytes is 200") as refused:
        limits().check_metadata({"k": "é" * 100}, ("documents", "0", "metadata"))
    assert refused.value.errors == {
        "documents": {"0": {"metadata": ["LIMIT_metadata_bytes is 200"]}}
    }


def test_a_batch_of_documents_is_limited_in_count_and_every_long_text_is_named():
    with pytest.raises(InvalidInputError, match="the batch has 4 documents"):
        limits().check_documents(["x"] * 4)
    with pytest.raises(InvalidInputError) as refused:
        limits().check_documents(["x" * 51, "x", "x" * 51])
    assert refused.value.errors == {
        "documents": {str(i): {"text": ["LIMIT_text_chars is 50"]} for i in (0, 2)}
    }


def test_the_last_knowledge_base_slot_is_a_conflict_once_taken():
    with pytest.raises(ConflictError, match="LIMIT_knowledge_bases is 2"):
        limits().check_room(2)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"top_k": MAX_TOP_K + 1}, f"LIMIT_top_k={MAX_TOP_K + 1}: at most {MAX_TOP_K}"),
        ({"metadata_keys": 0}, "LIMIT_metadata_keys must be at least 1"),
    ],
)
def test_no_limit_is_below_one_or_above_the_domain_ceiling(values, message):
    with pytest.raises(InvalidInputError, match=message):
        limits(**values)

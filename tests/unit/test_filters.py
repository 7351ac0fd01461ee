import pytest

from domain.errors import InvalidInputError
from domain.filters import (
    MAX_FILTER_CLAUSES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_VALUES,
    matches,
    parse_filter,
)

DOC = {"lang": "en", "year": 2021, "score": 4.5, "tags": ["ai", "db"], "draft": False}


def check(spec, metadata=DOC):
    return matches(parse_filter(spec), metadata)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"lang": "en"}, True),
        ({"lang": "fr"}, False),
        ({"lang": {"$eq": "en"}}, True),
        ({"lang": {"$ne": "en"}}, False),
        ({"missing": {"$ne": "x"}}, True),
        ({"year": {"$gt": 2020}}, True),
        ({"year": {"$gt": 2021}}, False),
        ({"year": {"$gte": 2021}}, True),
        ({"score": {"$lt": 4.5}}, False),
        ({"score": {"$lte": 4.5}}, True),
        ({"lang": {"$in": ["fr", "en"]}}, True),
        ({"lang": {"$nin": ["fr", "en"]}}, False),
        ({"missing": {"$nin": ["x"]}}, True),
        ({"lang": {"$exists": True}}, True),
        ({"missing": {"$exists": True}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"tags": "db"}, True),
        ({"tags": {"$in": ["x", "ai"]}}, True),
        ({"tags": {"$ne": "ai"}}, False),
        ({"tags": {"$nin": ["zz"]}}, True),
        ({"draft": False}, True),
        ({"draft": 0}, False),
        ({"year": "2021"}, False),
        ({"year": {"$gt": "2000"}}, False),
        ({"lang": {"$gt": "a"}}, True),
    ],
)
def test_each_operator_alone(spec, expected):
    assert check(spec) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"lang": "en", "year": 2021}, True),
        ({"$and": [{"lang": "en"}, {"year": {"$lt": 2000}}]}, False),
        ({"$or": [{"lang": "fr"}, {"year": {"$gte": 2021}}]}, True),
        ({"$or": [{"lang": "fr"}, {"tags": "zz"}]}, False),
        ({"$not": {"lang": "en"}}, False),
        ({"year": {"$not": {"$gt": 2030}}}, True),
        ({"year": {"$gte": 2000, "$lt": 2021}}, False),
        ({"$or": [{"$and": [{"lang": "en"}, {"draft": True}]}, {"tags": {"$in": ["db"]}}]}, True),
        ({"missing": {"$not": {"$gt": 1}}}, True),
    ],
)
def test_operators_combined(spec, expected):
    assert check(spec) is expected


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("lang", "filter"),
        ({"lang": {"$regex": "e.*"}}, "filter.lang.$regex"),
        ({"$nor": []}, "filter.$nor"),
        ({"$and": {"lang": "en"}}, "filter.$and"),
        ({"$or": []}, "filter.$or"),
        ({"$and": [{"a": 1}, {"b": {"$in": "x"}}]}, "filter.$and[1].b.$in"),
        ({"year": {"$gt": [1]}}, "filter.year.$gt"),
        ({"year": {"$gt": True}}, "filter.year.$gt"),
        ({"x": {"$exists": 1}}, "filter.x.$exists"),
        ({"x": {"nested": 1}}, "filter.x"),
        ({"x": {"$not": 3}}, "filter.x.$not"),
        ({"": 1}, "filter."),
        ({"n": float("-inf")}, "filter.n"),
        ({"n": {"$gt": float("inf")}}, "filter.n.$gt"),
        ({"n": {"$lte": float("nan")}}, "filter.n.$lte"),
        ({"n": {"$in": [1, float("inf")]}}, "filter.n.$in"),
        ({"$or": [{"n": {"$ne": float("-inf")}}]}, "filter.$or[0].n.$ne"),
    ],
)
def test_a_malformed_filter_names_the_part_that_is_wrong(spec, path):
    with pytest.raises(InvalidInputError) as raised:
        parse_filter(spec)
    assert path in raised.value.errors


# Bounds: a filter's depth and size are checked while it is parsed, before anything descends.


def nested(levels, inner=None, op="$and"):
    """A filter of `levels` filter objects, each the only clause of the one around it."""
    spec = inner if inner is not None else {"lang": "en"}
    for _ in range(levels - 1):
        spec = {op: [spec]} if op != "$not" else {"$not": spec}
    return spec


def field_nots(levels):
    """{"year": {"$not": {"$not": ... {"$gt": 2000}}}}: `levels` objects in all."""
    spec = {"$gt": 2000}
    for _ in range(levels - 2):
        spec = {"$not": spec}
    return {"year": spec}


@pytest.mark.parametrize("op", ["$and", "$or", "$not"])
def test_a_filter_nested_to_the_depth_limit_is_evaluated(op):
    spec = nested(MAX_FILTER_DEPTH, op=op)
    expected = op != "$not" or MAX_FILTER_DEPTH % 2 == 1
    assert check(spec) is expected


def test_field_level_nots_nested_to_the_depth_limit_are_evaluated():
    assert check(field_nots(MAX_FILTER_DEPTH)) is (MAX_FILTER_DEPTH % 2 == 0)


@pytest.mark.parametrize(
    "spec",
    [
        nested(MAX_FILTER_DEPTH + 1),
        nested(MAX_FILTER_DEPTH + 1, op="$or"),
        nested(MAX_FILTER_DEPTH + 1, op="$not"),
        field_nots(MAX_FILTER_DEPTH + 1),
        nested(MAX_FILTER_DEPTH, {"year": {"$gt": 2000}}),
    ],
    ids=["$and", "$or", "$not", "field $not", "operator object"],
)
def test_one_level_past_the_depth_limit_is_refused_naming_the_limit_and_the_path(spec):
    with pytest.raises(InvalidInputError) as raised:
        parse_filter(spec)
    assert f"MAX_FILTER_DEPTH is {MAX_FILTER_DEPTH}" in str(raised.value)
    (path,) = raised.value.errors
    assert path.startswith("filter.") and path in str(raised.value)


@pytest.mark.parametrize("op", ["$and", "$or", "$not"])
def test_a_filter_nested_100_000_deep_is_refused_without_recursing_into_it(op):
    spec = nested(100_000, op=op)
    with pytest.raises(InvalidInputError, match="MAX_FILTER_DEPTH"):
        parse_filter(spec)
    with pytest.raises(InvalidInputError, match="MAX_FILTER_DEPTH"):
        parse_filter(field_nots(100_000))


def test_a_filter_with_as_many_clauses_as_the_limit_is_evaluated():
    # The $or and its conditions: MAX_FILTER_CLAUSES clauses in all.
    spec = {"$or": [{"year": year} for year in range(MAX_FILTER_CLAUSES - 1)]}
    assert check(spec) is False
    assert check(spec, {"year": MAX_FILTER_CLAUSES - 2}) is True


@pytest.mark.parametrize(
    "spec",
    [
        {"$or": [{"year": year} for year in range(MAX_FILTER_CLAUSES)]},
        {"$or": [{} for _ in range(MAX_FILTER_CLAUSES)]},
        {f"k{i}": i for i in range(MAX_FILTER_CLAUSES + 1)},
    ],
    ids=["conditions", "empty objects", "keys"],
)
def test_one_clause_past_the_limit_is_refused_naming_the_limit(spec):
    with pytest.raises(InvalidInputError, match=f"MAX_FILTER_CLAUSES is {MAX_FILTER_CLAUSES}"):
        parse_filter(spec)


def test_in_and_nin_lists_may_hold_up_to_the_value_limit_summed_over_the_filter():
    half = MAX_FILTER_VALUES // 2
    spec = {
        "year": {"$in": list(range(half))},
        "lang": {"$nin": [str(i) for i in range(MAX_FILTER_VALUES - half)]},
    }
    assert check(spec, {"year": half - 1, "lang": "en"}) is True
    assert check(spec, {"year": half, "lang": "en"}) is False

    spec["lang"]["$nin"].append("one more")
    with pytest.raises(InvalidInputError) as raised:
        parse_filter(spec)
    assert f"MAX_FILTER_VALUES is {MAX_FILTER_VALUES}" in str(raised.value)
    assert "filter.lang.$nin" in raised.value.errors


@pytest.mark.parametrize(
    ("values", "metadata", "expected"),
    [
        ([1], {"n": 1.0}, True),
        ([1.0], {"n": 1}, True),
        ([True], {"n": 1}, False),
        ([1], {"n": True}, False),
        ([0], {"n": False}, False),
        (["1"], {"n": 1}, False),
        ([-0.0], {"n": 0}, True),
        ([2**53 + 1], {"n": 2**53 + 1}, True),
        ([2**53 + 1], {"n": float(2**53)}, False),
        (["a", 2], {"n": ["x", 2.0]}, True),
        ([], {"n": 1}, False),
    ],
)
def test_in_compares_like_eq_values_of_one_kind(values, metadata, expected):
    assert check({"n": {"$in": values}}, metadata) is expected
    assert check({"n": {"$nin": values}}, metadata) is not expected
    assert check({"$or": [{"n": v} for v in values] or [{"$not": {}}]}, metadata) is expected


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"n": 1.0}, True),
        ({"n": True}, False),
        ({"n": "2"}, True),
        ({"n": 2}, True),
        ({"n": [0, 7]}, True),
        ({"n": [False, "1"]}, False),
        ({"m": 1}, False),
        ({"m": True}, True),
        ({}, False),
    ],
)
def test_an_or_of_equalities_on_one_field_matches_as_each_of_them_would(metadata, expected):
    clauses = [{"n": 1}, {"n": {"$in": [2, "2"]}}, {"m": True}, {"n": {"$gt": 5}}]
    assert check({"$or": clauses}, metadata) is expected
    assert any(check(clause, metadata) for clause in clauses) is expected

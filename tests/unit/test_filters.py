import pytest

from domain.errors import InvalidInputError
from domain.filters import matches, parse_filter

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

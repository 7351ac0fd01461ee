"""Filters at their limits work on every route that takes one; past them, or nested in JSON
100,000 deep, they are a 422 naming the limit, never a 500 (issue 15 item 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from domain.filters import MAX_FILTER_CLAUSES, MAX_FILTER_DEPTH, MAX_FILTER_VALUES
from entrypoints.json_body import MAX_JSON_DEPTH

pytestmark = pytest.mark.both_backends

KB = "/v1/knowledge-bases/kb"
ONE_OR_TWO = {"n": {"$in": [1, 2]}}  # two filter objects deep


def wrapped(spec: dict[str, Any], objects: int) -> dict[str, Any]:
    """`spec` (two objects deep) in pairs of $not and in $or, `objects` objects deep in all."""
    levels = objects - 2
    for _ in range(levels // 3):
        spec = {"$or": [{"$not": {"$not": spec}}]}
    for _ in range(levels % 3):
        spec = {"$and": [spec]}
    return spec


def deepest(objects: int) -> dict[str, Any]:
    spec: dict[str, Any] = ONE_OR_TWO
    while objects > 2:
        spec = {("$and", "$or")[objects % 2]: [spec]}
        objects -= 1
    return spec


def clauses(count: int) -> dict[str, Any]:
    """An $or of count - 1 conditions: `count` clauses; selects n = 1 and n = 2."""
    return {"$or": [{"n": 1}, {"n": 2}, *({"n": -i} for i in range(1, count - 2))]}


def values(count: int) -> dict[str, Any]:
    return {"n": {"$in": [1, 2, *(-i for i in range(1, count - 1))]}}


def search(client, spec):
    return client.post(f"{KB}/search", json={"query": "x", "top_k": 10, "filter": spec})


def batch_search(client, spec):
    body = {"queries": [{"query": "y"}, {"query": "x", "top_k": 10, "filter": spec}]}
    return client.post(f"{KB}/search/batch", json=body)


def listing(client, spec):
    return client.get(f"{KB}/documents", query_string={"filter": json.dumps(spec)})


def dry_run(client, spec):
    return client.post(f"{KB}/documents/delete", json={"filter": spec, "dry_run": True})


def deletion(client, spec):
    return client.post(f"{KB}/documents/delete", json={"filter": spec})


def selected(response) -> list[str]:
    body = response.get_json()
    if "results" in body:
        return sorted(hit["id"] for hit in body["results"][1]["hits"])
    if "hits" in body:
        return sorted(hit["id"] for hit in body["hits"])
    if "items" in body:
        return sorted(item["id"] for item in body["items"])
    return sorted(body["deleted"])


ROUTES: dict[str, Callable[..., Any]] = {
    "search": search,
    "batch search": batch_search,
    "list": listing,
    "bulk delete dry run": dry_run,
    "bulk delete": deletion,
}
AT_LIMIT = {
    "depth": deepest(MAX_FILTER_DEPTH),
    "depth through $not": wrapped(ONE_OR_TWO, MAX_FILTER_DEPTH),
    "clauses": clauses(MAX_FILTER_CLAUSES),
    "values": values(MAX_FILTER_VALUES),
}
PAST_LIMIT = {
    "depth": (deepest(MAX_FILTER_DEPTH + 1), f"MAX_FILTER_DEPTH is {MAX_FILTER_DEPTH}"),
    "clauses": (clauses(MAX_FILTER_CLAUSES + 1), f"MAX_FILTER_CLAUSES is {MAX_FILTER_CLAUSES}"),
    "values": (values(MAX_FILTER_VALUES + 1), f"MAX_FILTER_VALUES is {MAX_FILTER_VALUES}"),
    # Once a 503 "stack depth limit exceeded" on PostgreSQL, which kb_client retried.
    "100,000 values": (values(100_000), f"MAX_FILTER_VALUES is {MAX_FILTER_VALUES}"),
}


@pytest.fixture
def client(app, kb, add_documents):
    add_documents(
        "kb",
        {"id": "a", "text": "x", "metadata": {"n": 1}},
        {"id": "b", "text": "x y", "metadata": {"n": [0, 2]}},
        {"id": "c", "text": "x z", "metadata": {"n": 3}},
    )
    return app.test_client()


def test_the_deepest_allowed_filter_fits_in_the_json_depth_limit():
    # The deepest filter as the query of a batch search: body, list, query, then the filter.
    depth, spec = 3, deepest(MAX_FILTER_DEPTH)
    while isinstance(spec, (dict, list)):
        depth += 1
        spec = next(iter(spec.values())) if isinstance(spec, dict) else spec[0]
    assert depth <= MAX_JSON_DEPTH


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("limit", AT_LIMIT)
def test_a_filter_at_a_limit_selects_the_same_documents_on_every_route(client, route, limit):
    response = ROUTES[route](client, AT_LIMIT[limit])
    assert response.status_code == 200, response.get_json()
    assert selected(response) == ["a", "b"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("limit", PAST_LIMIT)
def test_a_filter_past_a_limit_is_a_422_naming_the_limit_and_the_path(
    client, route, limit, expect_error
):
    spec, named = PAST_LIMIT[limit]
    body = expect_error(ROUTES[route](client, spec), 422)
    assert named in body["message"]
    ((path, reasons),) = body["errors"].items()
    assert path.startswith("filter") and path in body["message"] and named in reasons[0]
    assert len(client.get(f"{KB}/documents").get_json()["items"]) == 3


def nested_100_000(inner: str = '{"n": 1}') -> str:
    return '{"$and": [' * 100_000 + inner + "]}" * 100_000


def raw_post(client, path: str, body: str):
    return client.post(path, data=body, content_type="application/json")


DEEP = nested_100_000()
DEEP_VALUE = '{"a": ' * 100_000 + "1" + "}" * 100_000
DEEP_REQUESTS = {
    "search filter": lambda c: raw_post(c, f"{KB}/search", f'{{"query": "x", "filter": {DEEP}}}'),
    "batch filter": lambda c: raw_post(
        c, f"{KB}/search/batch", f'{{"queries": [{{"query": "x", "filter": {DEEP}}}]}}'
    ),
    "list filter": lambda c: c.get(f"{KB}/documents", query_string={"filter": DEEP}),
    "list filter value": lambda c: c.get(f"{KB}/documents", query_string={"filter": DEEP_VALUE}),
    "dry run filter": lambda c: raw_post(
        c, f"{KB}/documents/delete", f'{{"dry_run": true, "filter": {DEEP}}}'
    ),
    "delete filter": lambda c: raw_post(c, f"{KB}/documents/delete", f'{{"filter": {DEEP}}}'),
    "document metadata": lambda c: raw_post(
        c, f"{KB}/documents", f'{{"text": "x", "metadata": {DEEP_VALUE}}}'
    ),
    "knowledge base metadata": lambda c: c.patch(
        KB, data=f'{{"metadata": {DEEP_VALUE}}}', content_type="application/json"
    ),
    "unknown field": lambda c: raw_post(c, f"{KB}/search", f'{{"query": "x", "x": {DEEP_VALUE}}}'),
    "whole body": lambda c: raw_post(c, f"{KB}/search", "[" * 100_000 + "]" * 100_000),
}


@pytest.mark.parametrize("request_", DEEP_REQUESTS)
def test_json_nested_100_000_deep_anywhere_is_a_422_not_a_500(client, request_, expect_error):
    body = expect_error(DEEP_REQUESTS[request_](client), 422)
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in json.dumps(body)
    assert len(client.get(f"{KB}/documents").get_json()["items"]) == 3


def test_json_nested_just_past_the_depth_limit_is_a_422_naming_it(client, expect_error):
    body = '{"a": ' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH
    refusal = expect_error(raw_post(client, f"{KB}/search", f'{{"query": "x", "x": {body}}}'), 422)
    assert f"JSON nested deeper than {MAX_JSON_DEPTH} levels" in refusal["message"]

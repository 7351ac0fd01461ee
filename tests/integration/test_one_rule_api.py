"""One domain rule, one answer on both backends: NUL and non-finite numbers, and 409 bodies."""

from __future__ import annotations

import json

import pytest

from domain.model import NAME_RULE

pytestmark = pytest.mark.both_backends

KBS = "/v1/knowledge-bases"
DOCS = f"{KBS}/kb/documents"


@pytest.fixture
def seeded(kb, add_documents):
    add_documents(kb, {"id": "d1", "text": "the only document", "metadata": {"n": 1}})
    return kb


def raw(client, method, path, text):
    """Send `text` as a JSON body as it is (Python's json writes NaN and Infinity too)."""
    return getattr(client, method)(path, data=text, content_type="application/json")


def test_a_nul_in_a_description_is_422_on_create_and_on_update(client, kb, expect_error):
    expect_error(client.post(KBS, json={"name": "other", "description": "a\x00b"}), 422)
    expect_error(client.patch(f"{KBS}/kb", json={"description": "a\x00b"}), 422, "description")

    assert client.get(f"{KBS}/other").status_code == 404
    assert client.get(f"{KBS}/kb").get_json()["description"] == ""


@pytest.mark.parametrize("metadata", [{"k": "a\x00b"}, {"k\x00": 1}, {"k": ["\x00"]}])
def test_a_nul_in_knowledge_base_metadata_is_422_on_create_and_on_update(
    client, kb, expect_error, metadata
):
    expect_error(client.post(KBS, json={"name": "other", "metadata": metadata}), 422, "metadata")
    expect_error(client.patch(f"{KBS}/kb", json={"metadata": metadata}), 422, "metadata")

    assert client.get(f"{KBS}/other").status_code == 404
    assert client.get(f"{KBS}/kb").get_json()["metadata"] == {}


@pytest.mark.parametrize("number", ["-Infinity", "Infinity", "NaN"])
def test_a_non_finite_filter_value_is_422_wherever_filters_go(client, seeded, expect_error, number):
    for where in [
        f'{{"n": {number}}}',
        f'{{"n": {{"$gt": {number}}}}}',
        f'{{"n": {{"$in": [1, {number}]}}}}',
        f'{{"$or": [{{"n": {{"$lte": {number}}}}}]}}',
    ]:
        for method, path, body in [
            ("post", f"{KBS}/kb/search", f'{{"query": "only", "filter": {where}}}'),
            (
                "post",
                f"{KBS}/kb/search/batch",
                f'{{"queries": [{{"query": "o", "filter": {where}}}]}}',
            ),
            ("post", f"{DOCS}/delete", f'{{"filter": {where}, "dry_run": true}}'),
            ("post", f"{DOCS}/delete", f'{{"filter": {where}}}'),
        ]:
            response = raw(client, method, path, body)
            body = expect_error(response, 422)
            assert "filter" in json.dumps(body["errors"]), (path, where, body)
        response = client.get(DOCS, query_string={"filter": where})
        assert "filter" in json.dumps(expect_error(response, 422)["errors"]), where

    assert client.get(f"{DOCS}/d1").status_code == 200


@pytest.mark.parametrize("number", ["-Infinity", "Infinity", "NaN"])
def test_a_non_finite_metadata_value_is_422_everywhere_metadata_goes(
    client, seeded, expect_error, number
):
    for method, path, body in [
        ("post", KBS, f'{{"name": "other", "metadata": {{"n": {number}}}}}'),
        ("patch", f"{KBS}/kb", f'{{"metadata": {{"n": [{number}]}}}}'),
        ("post", DOCS, f'{{"id": "d2", "text": "x", "metadata": {{"n": {number}}}}}'),
        ("put", f"{DOCS}/d1", f'{{"text": "x", "metadata": {{"n": {number}}}}}'),
        ("patch", f"{DOCS}/d1", f'{{"metadata": {{"n": [1, {number}]}}}}'),
    ]:
        expect_error(raw(client, method, path, body), 422, "metadata")

    assert client.get(f"{DOCS}/d1").get_json()["metadata"] == {"n": 1}
    assert client.get(f"{DOCS}/d2").status_code == 404


def test_a_taken_knowledge_base_name_is_a_409_naming_the_field(client, kb, expect_error):
    body = expect_error(client.post(KBS, json={"name": "kb"}), 409, "name")

    assert body["errors"]["name"] and "kb" in body["message"]


def test_a_taken_document_id_is_a_409_listing_the_taken_ids(client, seeded, expect_error):
    body = expect_error(client.post(DOCS, json={"documents": [{"id": "d1", "text": "x"}]}), 409)

    assert body["errors"] == {"ids": ["d1"]}


def test_every_error_body_has_code_status_message_and_errors(client, seeded):
    responses = [
        client.get(f"{KBS}/nope"),
        client.get(f"{DOCS}/missing"),
        client.delete(DOCS),
        client.post(KBS, json={"name": "kb"}),
        client.post(DOCS, json={"id": "d1", "text": "x"}),
        client.post(KBS, json={"name": "Bad"}),
        client.get(f"{DOCS}/%FF"),
    ]

    for response in responses:
        body = response.get_json()
        assert response.status_code >= 400 and set(body) == {"code", "status", "message", "errors"}


def test_an_invalid_name_gives_the_rule_once(client, expect_error):
    body = expect_error(client.post(KBS, json={"name": "Not A Slug"}), 422, "name")

    assert json.dumps(body["errors"]).count(NAME_RULE) == 1

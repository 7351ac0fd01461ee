"""Unhappy paths over HTTP: one error body shape, 404/409/413/422, no half-applied batch, no 500."""

from __future__ import annotations

import pytest

KBS = "/v1/knowledge-bases"
DOCS = f"{KBS}/kb/documents"
SEARCH = f"{KBS}/kb/search"


@pytest.fixture
def seeded(kb, add_documents):
    """Knowledge base "kb" holding one document "d1"."""
    add_documents(kb, {"id": "d1", "text": "the only document"})
    return kb


def document_count(client, kb="kb"):
    return client.get(f"{KBS}/{kb}").get_json()["document_count"]


# 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", f"{KBS}/nope", None),
        ("patch", f"{KBS}/nope", {"description": "x"}),
        ("delete", f"{KBS}/nope", None),
        ("get", f"{KBS}/nope/documents", None),
        ("post", f"{KBS}/nope/documents", {"text": "x"}),
        ("get", f"{KBS}/nope/documents/d1", None),
        ("put", f"{KBS}/nope/documents/d1", {"text": "x"}),
        ("patch", f"{KBS}/nope/documents/d1", {"metadata": {}}),
        ("delete", f"{KBS}/nope/documents/d1", None),
        ("post", f"{KBS}/nope/documents/delete", {"ids": ["d1"]}),
        ("post", f"{KBS}/nope/search", {"query": "x"}),
    ],
)
def test_every_route_of_an_unknown_knowledge_base_is_404(
    client, expect_error, method, path, body
):
    response = getattr(client, method)(path, json=body)

    body = expect_error(response, 404)
    assert "nope" in body["message"]


def test_put_into_an_unknown_knowledge_base_does_not_create_it(client):
    client.put(f"{KBS}/nope/documents/d1", json={"text": "x"})

    assert client.get(f"{KBS}/nope").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", f"{DOCS}/missing", None),
        ("patch", f"{DOCS}/missing", {"metadata": {"a": 1}}),
        ("delete", f"{DOCS}/missing", None),
        ("post", SEARCH, {"document_id": "missing"}),
    ],
)
def test_an_unknown_document_is_404(client, seeded, expect_error, method, path, body):
    response = getattr(client, method)(path, json=body)

    body = expect_error(response, 404)
    assert "missing" in body["message"]


def test_patching_an_unknown_document_does_not_create_it(client, seeded):
    client.patch(f"{DOCS}/missing", json={"metadata": {"a": 1}})

    assert client.get(f"{DOCS}/missing").status_code == 404
    assert document_count(client) == 1


@pytest.mark.parametrize("path", ["/nowhere", "/v1/knowledge-bases/kb/nothing/here", "/v1"])
def test_an_unknown_route_is_404_in_the_same_shape(client, expect_error, path):
    expect_error(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", KBS), ("post", f"{KBS}/kb"), ("delete", DOCS), ("get", SEARCH), ("post", "/v1/info")],
)
def test_a_wrong_method_is_405_in_the_same_shape(client, kb, expect_error, method, path):
    expect_error(getattr(client, method)(path, json={}), 405)


# 409


def test_creating_an_existing_name_is_409_and_keeps_the_original(client, create_kb, expect_error):
    create_kb("taken", description="original")

    response = client.post(KBS, json={"name": "taken", "description": "impostor"})

    body = expect_error(response, 409)
    assert "taken" in body["message"]
    assert client.get(f"{KBS}/taken").get_json()["description"] == "original"


def test_adding_an_existing_id_is_409_and_keeps_the_original(client, seeded, expect_error):
    response = client.post(DOCS, json={"id": "d1", "text": "a replacement"})

    body = expect_error(response, 409)
    assert "d1" in body["message"]
    assert client.get(f"{DOCS}/d1").get_json()["text"] == "the only document"


def test_a_batch_with_one_taken_id_adds_nothing(client, seeded, expect_error, search):
    response = client.post(
        DOCS,
        json={"documents": [{"id": "new1", "text": "fresh"}, {"id": "d1", "text": "clash"},
                            {"text": "no id fresh"}]},
    )

    body = expect_error(response, 409)
    assert "d1" in body["message"]
    assert "new1" not in body["message"]
    assert client.get(f"{DOCS}/new1").status_code == 404
    assert document_count(client) == 1
    assert [hit["id"] for hit in search("kb", query="fresh clash", top_k=1000)] == ["d1"]


# 422: field-level messages


WRONG_POSTS = {
    "create a knowledge base": (
        KBS,
        [
            ({"name": 5}, "name"),
            ({"name": ["kb"]}, "name"),
            ({"description": "no name"}, "name"),
            ({"name": "ok", "description": 5}, "description"),
            ({"name": "ok", "metadata": "tags"}, "metadata"),
            ({"name": "ok", "metadata": [1, 2]}, "metadata"),
            ({"name": "ok", "chunking": "sideways"}, "chunking"),
            ({"name": "ok", "chunk_overlap": "2"}, "chunk_overlap"),
            ({"name": "ok", "chunk_overlap": -1}, "chunk_overlap"),
            ({"name": "ok", "chunk_overlap": 16}, "chunk_overlap"),
            ({"name": "ok", "colour": "blue"}, "colour"),
        ],
    ),
    "add documents": (
        DOCS,
        [
            ({"text": 5}, "text"),
            ({"text": None}, "text"),
            ({"metadata": {}}, "text"),
            ({"text": "x", "id": 5}, "id"),
            ({"text": "x", "id": ""}, "id"),
            ({"text": "x", "id": "x" * 257}, "id"),
            ({"text": "x", "metadata": "m"}, "metadata"),
            ({"documents": "x"}, "documents"),
            ({"documents": []}, "documents"),
            ({"documents": [5]}, "documents"),
        ],
    ),
    "bulk delete": (
        f"{DOCS}/delete",
        [({"ids": "d1"}, "ids"), ({"ids": []}, "ids"), ({"ids": [5]}, "ids"), ({}, "ids")],
    ),
    "search": (
        SEARCH,
        [
            ({"query": 5}, "query"),
            ({"query": "x", "top_k": "5"}, "top_k"),
            ({"query": "x", "top_k": 2.5}, "top_k"),
            ({"query": "x", "min_score": "high"}, "min_score"),
            ({"query": "x", "min_score": 1.5}, "min_score"),
            ({"query": "x", "min_score": -1.5}, "min_score"),
            ({"vector": "abc"}, "vector"),
            ({"vector": ["a"] * 32}, "vector"),
            ({"document_id": 5}, "document_id"),
        ],
    ),
}


@pytest.mark.parametrize("operation", WRONG_POSTS)
def test_a_wrongly_typed_post_is_422_naming_the_field_and_changes_nothing(
    client, seeded, expect_error, operation
):
    path, cases = WRONG_POSTS[operation]
    before = (client.get(KBS).get_json(), client.get(DOCS).get_json())

    for body, field in cases:
        expect_error(client.post(path, json=body), 422, field)

    assert (client.get(KBS).get_json(), client.get(DOCS).get_json()) == before


WRONG_UPDATES = [
    ("patch", f"{KBS}/kb", {"description": 5}, "description"),
    ("patch", f"{KBS}/kb", {"metadata": "m"}, "metadata"),
    ("patch", f"{KBS}/kb", {"name": "renamed"}, "name"),
    ("put", f"{DOCS}/d1", {"text": 5}, "text"),
    ("put", f"{DOCS}/d1", {}, "text"),
    ("put", f"{DOCS}/d1", {"text": "x", "metadata": 1}, "metadata"),
    ("put", f"{DOCS}/d1", {"text": "x", "id": "other"}, "id"),
    ("patch", f"{DOCS}/d1", {"metadata": "m"}, "metadata"),
    ("patch", f"{DOCS}/d1", {}, "metadata"),
    ("patch", f"{DOCS}/d1", {"text": "patched text"}, "text"),
]


def test_a_wrongly_typed_update_is_422_naming_the_field_and_changes_nothing(
    client, seeded, expect_error
):
    before = (client.get(f"{KBS}/kb").get_json(), client.get(f"{DOCS}/d1").get_json())

    for method, path, body, field in WRONG_UPDATES:
        expect_error(getattr(client, method)(path, json=body), 422, field)

    assert (client.get(f"{KBS}/kb").get_json(), client.get(f"{DOCS}/d1").get_json()) == before


@pytest.mark.parametrize(
    "query", [{"limit": "abc"}, {"limit": 0}, {"limit": 1001}, {"limit": -1}, {"cursor": "a"}]
)
@pytest.mark.parametrize("path", [KBS, DOCS])
def test_bad_paging_arguments_are_422_naming_the_argument(
    client, seeded, expect_error, path, query
):
    response = client.get(path, query_string=query)

    expect_error(response, 422, next(iter(query)))


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000\u00a0"])
def test_empty_or_whitespace_text_is_422_everywhere(
    client, seeded, expect_error, text
):
    responses = [
        client.post(DOCS, json={"text": text}),
        client.post(DOCS, json={"documents": [{"text": text}]}),
        client.put(f"{DOCS}/d1", json={"text": text}),
        client.put(f"{DOCS}/d2", json={"text": text}),
        client.post(SEARCH, json={"query": text}),
    ]

    for response, field in zip(responses, ["text", "text", "text", "text", "query"]):
        expect_error(response, 422, field)
    assert client.get(f"{DOCS}/d1").get_json()["text"] == "the only document"
    assert document_count(client) == 1


@pytest.mark.parametrize("top_k", [0, -1, 1001, 10**6])
def test_top_k_outside_1_to_1000_is_422(client, seeded, expect_error, top_k):
    response = client.post(SEARCH, json={"query": "document", "top_k": top_k})

    expect_error(response, 422, "top_k")


@pytest.mark.parametrize("top_k", [1, 1000])
def test_top_k_at_the_bounds_is_accepted(client, seeded, top_k):
    assert client.post(SEARCH, json={"query": "document", "top_k": top_k}).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "Upper",
        "has space",
        "a" * 65,
        "-leading",
        ".leading",
        "_leading",
        "",
        "slash/name",
        "ünïcode",
        "tab\tname",
        pytest.param(
            "trailing-newline\n",
            marks=pytest.mark.xfail(
                reason="BUG: NAME_PATTERN ends in '$', which also matches before a final "
                "newline, and it is applied with re.match (domain/model.py validate_name, "
                "entrypoints/schemas.py validate.Regexp): 'name\\n' is accepted with 201",
                strict=True,
            ),
        ),
    ],
)
def test_a_bad_knowledge_base_name_is_422_and_nothing_is_created(
    client, expect_error, name
):
    response = client.post(KBS, json={"name": name})

    body = expect_error(response, 422, "name")
    assert body["errors"]
    assert client.get(KBS).get_json()["items"] == []


@pytest.mark.parametrize(
    "metadata",
    [
        {"nested": {"a": 1}},
        {"objects": [{"a": 1}]},
        {"lists": [[1, 2]]},
        {"none": None},
        {"": "empty key"},
        {"k" * 129: "long key"},
    ],
)
def test_bad_metadata_is_422_everywhere_and_changes_nothing(
    client, seeded, expect_error, metadata
):
    before = (client.get(f"{KBS}/kb").get_json(), client.get(f"{DOCS}/d1").get_json())
    responses = [
        client.post(KBS, json={"name": "other", "metadata": metadata}),
        client.patch(f"{KBS}/kb", json={"metadata": metadata}),
        client.post(DOCS, json={"id": "d2", "text": "x", "metadata": metadata}),
        client.put(f"{DOCS}/d1", json={"text": "x", "metadata": metadata}),
        client.put(f"{DOCS}/d2", json={"text": "x", "metadata": metadata}),
        client.patch(f"{DOCS}/d1", json={"metadata": metadata}),
    ]

    for response in responses:
        expect_error(response, 422, "metadata")
    assert client.get(f"{KBS}/other").status_code == 404
    assert client.get(f"{DOCS}/d2").status_code == 404
    assert (client.get(f"{KBS}/kb").get_json(), client.get(f"{DOCS}/d1").get_json()) == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"text": "x",}', "application/json"),
        ("", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        ("text=hello", "application/x-www-form-urlencoded"),
        ("hello", "text/plain"),
        ("[]", "application/json"),
        ('"just a string"', "application/json"),
        ("42", "application/json"),
        ("null", "application/json"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", KBS),
        ("patch", f"{KBS}/kb"),
        ("post", DOCS),
        ("put", f"{DOCS}/d1"),
        ("patch", f"{DOCS}/d1"),
        ("post", f"{DOCS}/delete"),
        ("post", SEARCH),
    ],
)
def test_a_body_that_is_not_a_json_object_is_422(
    client, seeded, expect_error, method, path, data, content_type
):
    response = getattr(client, method)(path, data=data, content_type=content_type)

    if method == "patch" and path.endswith("/kb") and data in ("", "hello", "text=hello"):
        # Every field of a knowledge-base patch is optional: an absent body changes nothing.
        assert response.status_code in (200, 422)
    else:
        expect_error(response, 422)
    assert client.get(f"{DOCS}/d1").get_json()["text"] == "the only document"
    assert document_count(client) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"top_k": 3},
        {"query": "x", "document_id": "d1"},
        {"query": "x", "vector": [0.1] * 32},
        {"document_id": "d1", "vector": [0.1] * 32},
        {"query": "x", "document_id": "d1", "vector": [0.1] * 32},
    ],
)
def test_search_needs_exactly_one_of_query_document_id_and_vector(
    client, seeded, expect_error, body
):
    body = expect_error(client.post(SEARCH, json=body), 422)

    assert body.get("errors") or body.get("message")


@pytest.mark.parametrize("vector", [[0.1] * 31, [0.1] * 33, [0.1], [0.0] * 32])
def test_a_vector_of_the_wrong_length_or_no_direction_is_422(
    client, seeded, expect_error, vector
):
    response = client.post(SEARCH, json={"vector": vector})

    expect_error(response, 422, "vector")


# All or nothing


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "bad", "text": "   "},
        {"id": "bad", "text": 7},
        {"id": "bad", "text": "ok", "metadata": {"nested": {"a": 1}}},
        {"id": "bad"},
        {"id": " padded ", "text": "ok"},
        {"id": "ok1", "text": "same id twice"},
    ],
)
def test_a_batch_with_one_bad_document_changes_nothing(
    client, seeded, expect_error, search, bad
):
    batch = [{"id": "ok1", "text": "good one"}, bad, {"id": "ok2", "text": "good two"}]

    response = client.post(DOCS, json={"documents": batch})

    expect_error(response, 422)
    assert client.get(f"{DOCS}/ok1").status_code == 404
    assert client.get(f"{DOCS}/ok2").status_code == 404
    assert document_count(client) == 1
    hits = search("kb", query="good one good two", top_k=1000)
    assert [hit["id"] for hit in hits] == ["d1"]


def test_a_batch_over_the_document_limit_is_422_and_adds_nothing(
    make_app, expect_error, fake_embedder
):
    client = make_app(max_batch_documents=3).test_client()
    client.post(KBS, json={"name": "kb"})

    response = client.post(DOCS, json={"documents": [{"text": f"t{i}"} for i in range(4)]})

    expect_error(response, 422)
    assert document_count(client) == 0
    assert client.post(DOCS, json={"documents": [{"text": f"t{i}"} for i in range(3)]}).status_code == 201


def test_a_text_over_the_character_limit_is_422_and_adds_nothing(make_app, expect_error):
    client = make_app(max_text_chars=50).test_client()
    client.post(KBS, json={"name": "kb"})

    responses = [
        client.post(DOCS, json={"documents": [{"text": "fine"}, {"text": "x" * 51}]}),
        client.put(f"{DOCS}/d1", json={"text": "y" * 51}),
    ]

    for response in responses:
        expect_error(response, 422)
    assert document_count(client) == 0


# 413


def test_a_body_above_the_size_limit_is_413_and_stores_nothing(make_app, expect_error):
    client = make_app(max_body_bytes=2048).test_client()
    assert client.post(KBS, json={"name": "kb"}).status_code == 201

    responses = [
        client.post(DOCS, json={"id": "big", "text": "word " * 1000}),
        client.put(f"{DOCS}/big", json={"text": "word " * 1000}),
        client.post(KBS, json={"name": "huge", "description": "x" * 4000}),
        client.post(SEARCH, json={"query": "word " * 1000}),
    ]

    for response in responses:
        body = expect_error(response, 413)
        assert "2048" in body["message"]
    assert client.get(f"{DOCS}/big").status_code == 404
    assert client.get(f"{KBS}/huge").status_code == 404
    assert client.post(DOCS, json={"id": "small", "text": "word " * 100}).status_code == 201


# Never a 500


SURROGATE_BUG = pytest.mark.xfail(
    reason="BUG: a JSON string holding a lone UTF-16 surrogate ('\\ud800') passes validation "
    "and reaches the embedder (the real tokenizer raises TypeError, the fake UnicodeEncodeError) "
    "-> 500; entrypoints/schemas.py should reject text that is not valid Unicode",
    strict=True,
)
PARSER_BUG = pytest.mark.xfail(
    reason="BUG: JSON that Python's parser rejects with RecursionError (deep nesting) or "
    "ValueError (an integer over 4300 digits) escapes webargs' invalid-JSON handling and "
    "reaches entrypoints/errors.py's catch-all -> 500",
    strict=True,
)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", KBS, "{"),
        ("post", KBS, '{"name": null}'),
        ("post", KBS, '{"name": "ok", "metadata": {"n": NaN}}'),
        ("post", KBS, '{"name": "ok", "chunk_overlap": 1e400}'),
        ("post", KBS, '{"name": "ok", "chunk_overlap": 100000000000000000000000}'),
        ("patch", f"{KBS}/kb", '{"metadata": null}'),
        ("patch", f"{KBS}/kb", '{"description": null}'),
        ("post", DOCS, '{"text": "x", "metadata": {"n": Infinity}}'),
        ("post", DOCS, '{"text": "x", "metadata": {"n": [1, NaN]}}'),
        ("post", DOCS, '{"documents": [null]}'),
        ("post", DOCS, '{"documents": [{"text": "x"}], "text": "y"}'),
        ("post", DOCS, '{"documents": {"text": "x"}}'),
        ("post", DOCS, '{"id": "   ", "text": "x"}'),
        ("post", DOCS, '{"id": "d1", "text": "dupe"}'),
        pytest.param("post", DOCS, '{"text": "a \\ud800 b"}', marks=SURROGATE_BUG),
        pytest.param("put", f"{DOCS}/d9", '{"text": "\\udfff"}', marks=SURROGATE_BUG),
        pytest.param("post", SEARCH, '{"query": "\\ud800"}', marks=SURROGATE_BUG),
        pytest.param("post", DOCS, "[" * 50_000, marks=PARSER_BUG),
        pytest.param("post", DOCS, '{"text": "x", "metadata": {"n": 1' + "0" * 5000 + "}}",
                     marks=PARSER_BUG),
        ("put", f"{DOCS}/%20padded", '{"text": "x"}'),
        ("put", f"{DOCS}/{'x' * 257}", '{"text": "x"}'),
        ("patch", f"{DOCS}/d1", '{"metadata": {"a": {"b": 1}}}'),
        ("post", f"{DOCS}/delete", '{"ids": [null]}'),
        ("post", f"{DOCS}/delete", '{"ids": [""]}'),
        ("post", SEARCH, '{"query": "x", "top_k": 1e400}'),
        ("post", SEARCH, '{"query": "x", "top_k": true}'),
        ("post", SEARCH, '{"query": "x", "min_score": NaN}'),
        ("post", SEARCH, '{"vector": [Infinity, 0]}'),
        ("post", SEARCH, '{"vector": [' + ", ".join(["1e300"] * 32) + "]}"),
        ("post", SEARCH, '{"vector": [' + ", ".join(["1e-320"] * 32) + "]}"),
        ("post", SEARCH, '{"vector": [' + ", ".join(["0.1"] * 9000) + "]}"),
        ("post", SEARCH, '{"vector": []}'),
        ("post", SEARCH, '{"document_id": ""}'),
        ("post", SEARCH, '{"document_id": "' + "x" * 300 + '"}'),
        ("post", SEARCH, '{"query": "x", "filter": {"a": 1}}'),
        ("get", f"{DOCS}?cursor=_w", None),
        ("get", f"{KBS}?cursor=" + "A" * 2000, None),
        ("get", f"{KBS}?limit=1e3", None),
        ("delete", f"{KBS}/kb/documents/", None),
    ],
)
def test_malformed_requests_never_give_a_500(client, seeded, method, path, data):
    kwargs = {} if data is None else {"data": data, "content_type": "application/json"}

    response = getattr(client, method)(path, **kwargs)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    if response.status_code >= 400:
        assert {"code", "status"} <= set(response.get_json())


@pytest.mark.xfail(
    reason="BUG: a document id holding a lone surrogate is stored, then listing with a page "
    "boundary on it calls domain/services.py encode_cursor, whose key.encode() raises "
    "UnicodeEncodeError -> 500",
    strict=True,
)
def test_a_document_id_that_is_not_valid_unicode_is_refused(client, kb, expect_error):
    response = client.post(
        DOCS, data='{"id": "\\ud800", "text": "x"}', content_type="application/json"
    )

    expect_error(response, 422)

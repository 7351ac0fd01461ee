"""Unhappy paths over HTTP: one error body shape, 404/409/413/422, no half-applied batch, no 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.both_backends

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


def snapshot(client):
    """The knowledge base "kb" and its documents, to show that a request changed nothing."""
    return client.get(f"{KBS}/kb").get_json(), client.get(DOCS).get_json()


# 404


UNKNOWN_KB_ROUTES = [
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
]


def test_every_route_of_an_unknown_knowledge_base_is_404_and_creates_nothing(client, expect_error):
    for method, path, body in UNKNOWN_KB_ROUTES:
        error = expect_error(getattr(client, method)(path, json=body), 404)
        assert "nope" in error["message"], (method, path)

    assert client.get(KBS).get_json()["items"] == []


def test_an_unknown_document_is_404_and_is_not_created(client, seeded, expect_error):
    for method, path, body in [
        ("get", f"{DOCS}/missing", None),
        ("patch", f"{DOCS}/missing", {"metadata": {"a": 1}}),
        ("delete", f"{DOCS}/missing", None),
        ("post", SEARCH, {"document_id": "missing"}),
    ]:
        error = expect_error(getattr(client, method)(path, json=body), 404)
        assert "missing" in error["message"], (method, path)

    assert client.get(f"{DOCS}/missing").status_code == 404
    assert document_count(client) == 1


def test_an_unknown_route_or_method_gets_the_same_error_shape(client, kb, expect_error):
    for path in ["/nowhere", f"{KBS}/kb/nothing/here", "/v1"]:
        expect_error(client.get(path), 404)
    for method, path in [
        ("put", KBS),
        ("post", f"{KBS}/kb"),
        ("delete", DOCS),
        ("get", SEARCH),
        ("post", "/v1/info"),
    ]:
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
        json={
            "documents": [
                {"id": "new1", "text": "fresh"},
                {"id": "d1", "text": "clash"},
                {"text": "no id fresh"},
            ]
        },
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
        [({"ids": "d1"}, "ids"), ({"ids": []}, "ids"), ({"ids": [5]}, "ids"), ({}, "_schema")],
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


@pytest.mark.parametrize("path", [KBS, DOCS])
def test_bad_paging_arguments_are_422_naming_the_argument(client, seeded, expect_error, path):
    for query in [{"limit": "abc"}, {"limit": 0}, {"limit": 1001}, {"limit": -1}, {"cursor": "a"}]:
        response = client.get(path, query_string=query)

        expect_error(response, 422, *query)


def test_empty_or_whitespace_text_is_422_everywhere(client, seeded, expect_error):
    for text in ["", " ", "\n\t  ", "\u3000\u00a0"]:
        expect_error(client.post(DOCS, json={"text": text}), 422, "text")
        expect_error(client.post(DOCS, json={"documents": [{"text": text}]}), 422, "text")
        expect_error(client.put(f"{DOCS}/d1", json={"text": text}), 422, "text")
        expect_error(client.put(f"{DOCS}/d2", json={"text": text}), 422, "text")
        expect_error(client.post(SEARCH, json={"query": text}), 422, "query")

    assert client.get(f"{DOCS}/d1").get_json()["text"] == "the only document"
    assert document_count(client) == 1


def test_top_k_outside_1_to_1000_is_422_and_inside_is_accepted(client, seeded, expect_error):
    for top_k in [0, -1, 1001, 10**6]:
        response = client.post(SEARCH, json={"query": "document", "top_k": top_k})
        expect_error(response, 422, "top_k")

    for top_k in [1, 1000]:
        assert client.post(SEARCH, json={"query": "document", "top_k": top_k}).status_code == 200


OUT_OF_BOUNDS = [
    ({"top_k": 0}, "top_k must be between 1 and 1000"),
    ({"probes": 4097}, "probes must be between 1 and 4096"),
    ({"rrf_k": 1001}, "rrf_k must be between 1 and 1000"),
    ({"min_score": 1.5}, "min_score must be between -1 and 1"),
    ({"diversity": -0.5}, "diversity must be between 0 and 1"),
    ({"keyword_weight": 2}, "keyword_weight must be between 0 and 1"),
    ({"mode": "sparse"}, "mode must be 'dense' or 'hybrid'"),
]


@pytest.mark.parametrize(
    ("option", "message"), OUT_OF_BOUNDS, ids=[str(o) for o, _ in OUT_OF_BOUNDS]
)
def test_a_search_option_out_of_bounds_is_refused_by_the_domain_rule_alone(
    client, seeded, option, message, expect_error
):
    for body in ({"query": "document", **option}, {"queries": [{"query": "x", **option}]}):
        path = SEARCH + ("/batch" if "queries" in body else "")
        refusal = expect_error(client.post(path, json=body), 422, *option)
        assert refusal["message"] == message  # SearchRequest's words: no second check ran first


BAD_NAMES = [
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
    "trailing-space ",
]


def test_a_bad_knowledge_base_name_is_422_and_nothing_is_created(client, expect_error):
    for name in BAD_NAMES:
        expect_error(client.post(KBS, json={"name": name}), 422, "name")

    assert client.get(KBS).get_json()["items"] == []


def test_a_knowledge_base_name_ending_in_a_newline_is_422(client, expect_error):
    response = client.post(KBS, json={"name": "trailing-newline\n"})

    expect_error(response, 422, "name")
    assert client.get(KBS).get_json()["items"] == []


BAD_METADATA = [
    {"nested": {"a": 1}},
    {"objects": [{"a": 1}]},
    {"lists": [[1, 2]]},
    {"none": None},
    {"": "empty key"},
    {"k" * 129: "long key"},
]


def test_bad_metadata_is_422_everywhere_and_changes_nothing(client, seeded, expect_error):
    before = snapshot(client)

    for metadata in BAD_METADATA:
        for method, path, body in [
            ("post", KBS, {"name": "other", "metadata": metadata}),
            ("patch", f"{KBS}/kb", {"metadata": metadata}),
            ("post", DOCS, {"id": "d2", "text": "x", "metadata": metadata}),
            ("put", f"{DOCS}/d1", {"text": "x", "metadata": metadata}),
            ("put", f"{DOCS}/d2", {"text": "x", "metadata": metadata}),
            ("patch", f"{DOCS}/d1", {"metadata": metadata}),
        ]:
            expect_error(getattr(client, method)(path, json=body), 422, "metadata")

    assert client.get(f"{KBS}/other").status_code == 404
    assert snapshot(client) == before


NOT_JSON_OBJECTS = [
    "{not json",
    '{"text": "x",}',
    b"\xff\xfe\x00",
    "[]",
    '"just a string"',
    "42",
    "null",
]
NOT_SENT_AS_JSON = [
    ("text=hello", "application/x-www-form-urlencoded"),
    ("hello", "text/plain"),
    ('{"text": "x", "metadata": {}}', "text/plain"),
]
BODY_ROUTES = [
    ("post", KBS),
    ("patch", f"{KBS}/kb"),
    ("post", DOCS),
    ("put", f"{DOCS}/d1"),
    ("patch", f"{DOCS}/d1"),
    ("post", f"{DOCS}/delete"),
    ("post", SEARCH),
]


def test_a_json_body_that_is_not_a_json_object_is_422_and_changes_nothing(
    client, seeded, expect_error
):
    before = snapshot(client)

    for method, path in BODY_ROUTES:
        for data in NOT_JSON_OBJECTS:
            response = getattr(client, method)(path, data=data, content_type="application/json")
            expect_error(response, 422)

    assert snapshot(client) == before


def test_a_body_not_sent_as_json_is_refused_and_changes_nothing(client, seeded, expect_error):
    before = snapshot(client)

    for method, path in BODY_ROUTES:
        for data, content_type in NOT_SENT_AS_JSON:
            response = getattr(client, method)(path, data=data, content_type=content_type)
            # 415 names the cause (the Content-Type); 422 is the generic malformed-request status.
            assert response.status_code in (415, 422), (method, path, content_type)
            expect_error(response, response.status_code)

    assert snapshot(client) == before


def test_a_knowledge_base_patch_sent_as_plain_text_is_refused_not_ignored(client, kb):
    response = client.patch(
        f"{KBS}/kb", data='{"description": "changed"}', content_type="text/plain"
    )

    assert response.status_code in (415, 422)
    assert client.get(f"{KBS}/kb").get_json()["description"] == ""


def test_search_needs_exactly_one_of_query_document_id_and_vector(client, seeded, expect_error):
    vector = [0.1] * 32
    for body in [
        {},
        {"top_k": 3},
        {"query": "x", "document_id": "d1"},
        {"query": "x", "vector": vector},
        {"document_id": "d1", "vector": vector},
        {"query": "x", "document_id": "d1", "vector": vector},
    ]:
        error = expect_error(client.post(SEARCH, json=body), 422)
        assert error.get("errors"), body


def test_a_vector_of_the_wrong_length_or_without_direction_is_422(client, seeded, expect_error):
    for vector in [[0.1] * 31, [0.1] * 33, [0.1], [0.0] * 32]:
        expect_error(client.post(SEARCH, json={"vector": vector}), 422, "vector")


# All or nothing


BAD_BATCH_MEMBERS = [
    {"id": "bad", "text": "   "},
    {"id": "bad", "text": 7},
    {"id": "bad", "text": "ok", "metadata": {"nested": {"a": 1}}},
    {"id": "bad"},
    {"id": " padded ", "text": "ok"},
    {"id": "ok1", "text": "same id twice"},
]


def test_a_batch_with_one_bad_document_changes_nothing(client, seeded, expect_error, search):
    before = snapshot(client)

    for bad in BAD_BATCH_MEMBERS:
        batch = [{"id": "ok1", "text": "good one"}, bad, {"id": "ok2", "text": "good two"}]
        expect_error(client.post(DOCS, json={"documents": batch}), 422)

    assert snapshot(client) == before
    assert client.get(f"{DOCS}/ok1").status_code == 404
    hits = search("kb", query="good one good two", top_k=1000)
    assert [hit["id"] for hit in hits] == ["d1"]


def test_a_batch_over_the_document_limit_is_422_and_adds_nothing(make_app, expect_error):
    client = make_app(max_batch_documents=3).test_client()
    client.post(KBS, json={"name": "kb"})

    response = client.post(DOCS, json={"documents": [{"text": f"t{i}"} for i in range(4)]})

    expect_error(response, 422)
    assert document_count(client) == 0
    at_limit = client.post(DOCS, json={"documents": [{"text": f"t{i}"} for i in range(3)]})
    assert at_limit.status_code == 201


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


def case(label, method, path, data=None):
    return pytest.param(method, path, data, id=label)


MALFORMED = [
    case("truncated json", "post", KBS, "{"),
    case("null name", "post", KBS, '{"name": null}'),
    case("nan metadata", "post", KBS, '{"name": "ok", "metadata": {"n": NaN}}'),
    case("infinite overlap", "post", KBS, '{"name": "ok", "chunk_overlap": 1e400}'),
    case("huge overlap", "post", KBS, '{"name": "ok", "chunk_overlap": 100000000000000000000000}'),
    case("null kb metadata", "patch", f"{KBS}/kb", '{"metadata": null}'),
    case("null description", "patch", f"{KBS}/kb", '{"description": null}'),
    case("infinity metadata", "post", DOCS, '{"text": "x", "metadata": {"n": Infinity}}'),
    case("nan in metadata list", "post", DOCS, '{"text": "x", "metadata": {"n": [1, NaN]}}'),
    case("null document", "post", DOCS, '{"documents": [null]}'),
    case("documents and text", "post", DOCS, '{"documents": [{"text": "x"}], "text": "y"}'),
    case("documents not a list", "post", DOCS, '{"documents": {"text": "x"}}'),
    case("blank id", "post", DOCS, '{"id": "   ", "text": "x"}'),
    case("taken id", "post", DOCS, '{"id": "d1", "text": "dupe"}'),
    case("lone surrogate text", "post", DOCS, '{"text": "a \\ud800 b"}'),
    case("lone surrogate put", "put", f"{DOCS}/d9", '{"text": "\\udfff"}'),
    case("lone surrogate query", "post", SEARCH, '{"query": "\\ud800"}'),
    case("deeply nested json", "post", DOCS, "[" * 50_000),
    case(
        "5000-digit integer", "post", DOCS, '{"text": "x", "metadata": {"n": 1%s}}' % ("0" * 5000)
    ),
    case("padded id in url", "put", f"{DOCS}/%20padded", '{"text": "x"}'),
    case("257-char id in url", "put", f"{DOCS}/{'x' * 257}", '{"text": "x"}'),
    case("nested patch metadata", "patch", f"{DOCS}/d1", '{"metadata": {"a": {"b": 1}}}'),
    case("null id to delete", "post", f"{DOCS}/delete", '{"ids": [null]}'),
    case("empty id to delete", "post", f"{DOCS}/delete", '{"ids": [""]}'),
    case("infinite top_k", "post", SEARCH, '{"query": "x", "top_k": 1e400}'),
    case("boolean top_k", "post", SEARCH, '{"query": "x", "top_k": true}'),
    case("nan min_score", "post", SEARCH, '{"query": "x", "min_score": NaN}'),
    case("infinite vector", "post", SEARCH, '{"vector": [Infinity, 0]}'),
    case("subnormal vector", "post", SEARCH, '{"vector": [' + ", ".join(["1e-320"] * 32) + "]}"),
    case("9000-long vector", "post", SEARCH, '{"vector": [' + ", ".join(["0.1"] * 9000) + "]}"),
    case("empty vector", "post", SEARCH, '{"vector": []}'),
    case("empty document_id", "post", SEARCH, '{"document_id": ""}'),
    case("300-char document_id", "post", SEARCH, '{"document_id": "' + "x" * 300 + '"}'),
    case("unsupported filter", "post", SEARCH, '{"query": "x", "filter": {"a": 1}}'),
    case("cursor of bad utf-8", "get", f"{DOCS}?cursor=_w"),
    case("2000-char cursor", "get", f"{KBS}?cursor=" + "A" * 2000),
    case("float limit", "get", f"{KBS}?limit=1e3"),
    case("empty document id", "delete", f"{KBS}/kb/documents/"),
]


@pytest.mark.parametrize(("method", "path", "data"), MALFORMED)
def test_malformed_requests_never_give_a_500(client, seeded, method, path, data):
    kwargs = {} if data is None else {"data": data, "content_type": "application/json"}

    response = getattr(client, method)(path, **kwargs)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    if response.status_code >= 400:
        assert {"code", "status"} <= set(response.get_json())


def test_paging_through_documents_never_fails_whatever_ids_were_sent(client, kb):
    client.post(
        DOCS,
        data='{"documents": [{"id": "\\ud800", "text": "x"}, {"id": "\\uffff", "text": "y"}]}',
        content_type="application/json",
    )

    response = client.get(DOCS, query_string={"limit": 1})

    assert response.status_code < 500, response.get_data(as_text=True)

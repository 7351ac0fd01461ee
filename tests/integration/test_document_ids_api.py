"""Every per-document route addresses exactly the id it names: no redirect, no alias, one rule."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from domain.model import DOCUMENT_ID_RULE, NAME_RULE

pytestmark = pytest.mark.both_backends

KBS = "/v1/knowledge-bases"
DOCS = f"{KBS}/kb/documents"

ODD_VALID_IDS = [
    "docs/intro.md",
    "a/b/c",
    "a b",
    "100%",
    "50%25",
    "é",
    "émoji 🎉",
    "a?b#c",
    "a+b&c=d",
    "delete",
    "...",
    ".hidden",
    "a..b",
    "\uffff",
    "x" * 256,
    "🎉" * 256,  # the longest id in characters, 1 KiB of UTF-8
    "a/" * 127 + "ab",
]


def path_of(document_id: str) -> str:
    """The document's URL with its id escaped as one segment, as kb_client sends it."""
    return f"{DOCS}/{quote(document_id, safe='')}"


@pytest.fixture
def ab(kb, add_documents):
    """Knowledge base "kb" holding documents "a" and "b"."""
    add_documents(kb, {"id": "a", "text": "alpha"}, {"id": "b", "text": "bravo"})
    return kb


def texts(list_all):
    return {doc["id"]: (doc["text"], doc["metadata"]) for doc in list_all(DOCS)}


def test_an_id_beginning_with_a_slash_is_refused_and_never_touches_the_id_without_it(
    client, ab, list_all, expect_error
):
    before = texts(list_all)

    error = expect_error(client.post(DOCS, json={"id": "/a", "text": "impostor"}), 422, "id")
    assert DOCUMENT_ID_RULE in str(error["errors"])
    for method, body in [
        ("get", None),
        ("put", {"text": "overwritten"}),
        ("patch", {"metadata": {"touched": True}}),
        ("delete", None),
    ]:
        response = getattr(client, method)(f"{DOCS}/%2Fa", json=body)
        expect_error(response, 422, "id")
        assert DOCUMENT_ID_RULE in response.get_json()["message"]

    assert texts(list_all) == before


def test_putting_a_double_slashed_id_does_not_overwrite_the_id_without_slashes(
    client, ab, list_all, expect_error
):
    before = texts(list_all)

    expect_error(client.put(f"{DOCS}/%2F%2Fb", json={"text": "overwritten"}), 422, "id")
    expect_error(client.put(f"{DOCS}//b", json={"text": "overwritten"}), 422, "id")

    assert texts(list_all) == before


@pytest.mark.parametrize(
    "document_id", ["line\nbreak", "tab\tinside", "trailing\n", "a/", "a//b", "a/./b", "..", "\x85"]
)
def test_an_id_no_route_can_address_is_refused_when_added_or_upserted(
    client, kb, list_all, expect_error, document_id
):
    expect_error(client.post(DOCS, json={"id": document_id, "text": "x"}), 422, "id")
    expect_error(
        client.post(DOCS, json={"documents": [{"id": "fine", "text": "x"}, {"id": document_id}]}),
        422,
    )
    expect_error(client.put(path_of(document_id), json={"text": "x"}), 422, "id")

    assert list_all(DOCS) == []


def test_bulk_delete_and_more_like_this_refuse_an_id_against_the_rule(client, ab, expect_error):
    expect_error(client.post(f"{DOCS}/delete", json={"ids": ["a", "/a"]}), 422, "ids")
    expect_error(client.post(f"{KBS}/kb/search", json={"document_id": "a\n"}), 422, "document_id")

    assert client.get(f"{DOCS}/a").status_code == 200


@pytest.mark.parametrize("raw", ["%FF", "%FE", "a%C3", "%C3%28", "%ED%A0%80"])
def test_a_path_that_is_not_utf8_after_percent_decoding_is_400(client, ab, expect_error, raw):
    for method, body in [("get", None), ("put", {"text": "x"}), ("delete", None)]:
        response = getattr(client, method)(f"{DOCS}/{raw}", json=body)
        body = expect_error(response, 400)
        assert "UTF-8" in body["message"]
    expect_error(client.get(f"{KBS}/{raw}"), 400)

    assert client.get(f"{KBS}/kb").get_json()["document_count"] == 2


def test_a_replacement_character_is_an_id_of_its_own(client, kb, add_documents):
    add_documents(kb, {"id": "\ufffd", "text": "the replacement character itself"})

    assert client.get(path_of("\ufffd")).get_json()["id"] == "\ufffd"
    assert client.get(f"{DOCS}/%FF").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        f"{KBS}//kb",
        f"{KBS}/kb/",
        f"{KBS}//kb/documents",
        f"{KBS}/kb//documents",
        f"{DOCS}/",
        f"{DOCS}//",
        f"{DOCS}//a",
        f"{DOCS}/a/",
        f"{DOCS}/a//",
        f"{DOCS}/./a",
        f"{DOCS}/a/..",
        f"{DOCS}//delete",
        f"{KBS}/kb//search",
        f"{KBS}/",
        "/v1//knowledge-bases",
        "//v1/knowledge-bases",
    ],
)
def test_no_v1_path_is_ever_redirected(client, ab, list_all, path):
    before = texts(list_all)
    for method in ("get", "put", "patch", "delete", "post"):
        response = getattr(client, method)(path, json={"text": "x", "metadata": {}})
        assert not 300 <= response.status_code < 400, (method, path, response.status_code)
        assert "Location" not in response.headers
        assert response.is_json
    assert texts(list_all) == before


@pytest.mark.parametrize("document_id", ODD_VALID_IDS)
def test_an_odd_valid_id_round_trips_through_every_per_document_route(
    client, kb, add_documents, list_all, document_id
):
    add_documents(kb, {"id": document_id, "text": "first text"}, {"id": "other", "text": "o"})
    path = path_of(document_id)

    assert client.get(path).get_json()["id"] == document_id
    replaced = client.put(path, json={"text": "second text"})
    assert replaced.status_code == 200 and replaced.get_json()["id"] == document_id
    patched = client.patch(path, json={"metadata": {"n": 1}})
    assert patched.get_json()["metadata"] == {"n": 1}
    assert texts(list_all) == {document_id: ("second text", {"n": 1}), "other": ("o", {})}
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    created = client.put(path, json={"text": "third text"})
    assert created.status_code == 201 and created.get_json()["id"] == document_id
    assert texts(list_all) == {document_id: ("third text", {}), "other": ("o", {})}


def test_an_id_with_slashes_is_reachable_unescaped_too(client, kb, add_documents):
    add_documents(kb, {"id": "docs/intro.md", "text": "intro"})

    assert client.get(f"{DOCS}/docs/intro.md").get_json()["id"] == "docs/intro.md"
    assert client.get(f"{DOCS}/docs%2Fintro.md").get_json()["id"] == "docs/intro.md"


def test_a_document_named_delete_is_read_written_and_removed_by_its_own_routes(
    client, kb, add_documents, list_all, expect_error
):
    add_documents(kb, {"id": "delete", "text": "named delete"}, {"id": "keep", "text": "kept"})

    assert client.get(f"{DOCS}/delete").get_json()["id"] == "delete"
    assert client.put(f"{DOCS}/delete", json={"text": "still delete"}).status_code == 200
    assert client.patch(f"{DOCS}/delete", json={"metadata": {"n": 1}}).status_code == 200
    assert texts(list_all)["delete"] == ("still delete", {"n": 1})
    # POST on that path is the bulk delete: a document-shaped body is refused, nothing changes.
    expect_error(client.post(f"{DOCS}/delete", json={"text": "x"}), 422)
    assert set(texts(list_all)) == {"delete", "keep"}
    assert client.delete(f"{DOCS}/delete").status_code == 204
    assert set(texts(list_all)) == {"keep"}


@pytest.mark.parametrize(
    "name", ["%2E", "%2E%2E", "kb%20", "%20kb", "KB", "kb%0A", "k%C3%A9", "kb%00"]
)
def test_a_knowledge_base_path_no_knowledge_base_can_have_is_refused_by_the_name_rule(
    client, kb, name, expect_error
):
    for method, suffix, body in [
        ("get", "", None),
        ("patch", "", {"description": "x"}),
        ("delete", "", None),
        ("get", "/documents", None),
        ("post", "/documents", {"text": "x"}),
        ("get", "/documents/a", None),
        ("put", "/documents/a", {"text": "x"}),
        ("patch", "/documents/a", {"metadata": {}}),
        ("delete", "/documents/a", None),
        ("post", "/documents/delete", {"ids": ["a"]}),
        ("post", "/search", {"query": "x"}),
    ]:
        response = getattr(client, method)(f"{KBS}/{name}{suffix}", json=body)
        assert NAME_RULE in expect_error(response, 422, "name")["message"], (method, suffix)

    assert client.get(f"{KBS}/kb").status_code == 200

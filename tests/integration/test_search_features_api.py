"""Filters, diversity, batch search and bulk delete over HTTP, on the FAISS + SQLite stack."""

import json

import pytest

pytestmark = pytest.mark.both_backends


@pytest.fixture
def app(make_app, tmp_path):
    return make_app(data_dir=str(tmp_path / "data"))


@pytest.fixture
def shop(client, create_kb, add_documents):
    create_kb("shop")
    products = [
        {
            "id": f"p{i:02}",
            "text": f"a sturdy product number {i}",
            "metadata": {"price": i, "tags": ["a"] if i % 3 else ["b"]},
        }
        for i in range(40)
    ]
    add_documents("shop", *products)
    return "shop"


def search(client, kb, **body):
    response = client.post(f"/v1/knowledge-bases/{kb}/search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["hits"]


def test_search_with_a_filter_returns_only_matching_documents(client, shop):
    hits = search(client, shop, query="sturdy product", top_k=5, filter={"price": {"$gte": 35}})
    assert len(hits) == 5
    assert all(hit["metadata"]["price"] >= 35 for hit in hits)


def test_a_malformed_filter_is_a_422_saying_which_part(client, shop):
    response = client.post(
        f"/v1/knowledge-bases/{shop}/search",
        json={"query": "x", "filter": {"$or": [{"price": {"$gt": "x", "$oops": 1}}]}},
    )
    assert response.status_code == 422
    assert "filter.$or[0].price.$oops" in response.get_json()["errors"]


def test_listing_documents_takes_a_json_filter(client, shop):
    query = json.dumps({"tags": "b", "price": {"$lt": 10}})
    response = client.get(f"/v1/knowledge-bases/{shop}/documents", query_string={"filter": query})
    assert [d["id"] for d in response.get_json()["items"]] == ["p00", "p03", "p06", "p09"]
    bad = client.get(f"/v1/knowledge-bases/{shop}/documents", query_string={"filter": "{nope"})
    assert bad.status_code == 422


def test_bulk_delete_by_filter_with_dry_run_then_for_real(client, shop):
    path = f"/v1/knowledge-bases/{shop}/documents/delete"
    dry = client.post(path, json={"filter": {"price": {"$lt": 3}}, "dry_run": True}).get_json()
    assert dry == {"deleted": ["p00", "p01", "p02"], "count": 3, "dry_run": True}
    assert client.get(f"/v1/knowledge-bases/{shop}").get_json()["document_count"] == 40
    real = client.post(path, json={"filter": {"price": {"$lt": 3}}}).get_json()
    assert real["deleted"] == ["p00", "p01", "p02"]
    assert (
        search(client, shop, query="product number 1", top_k=40, filter={"price": {"$lt": 3}}) == []
    )


def test_batch_search_answers_each_query_like_a_single_search(client, shop):
    queries = [
        {"query": "product number 7", "top_k": 3},
        {"document_id": "p05", "top_k": 2, "filter": {"tags": "a"}},
        {"query": "sturdy", "top_k": 4, "diversity": 0.3},
    ]
    response = client.post(f"/v1/knowledge-bases/{shop}/search/batch", json={"queries": queries})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["hits"] for r in results] == [search(client, shop, **q) for q in queries]


def test_a_batch_of_65_searches_is_a_422(client, shop):
    response = client.post(
        f"/v1/knowledge-bases/{shop}/search/batch", json={"queries": [{"query": "x"}] * 65}
    )
    assert response.status_code == 422


def test_diversity_out_of_range_is_a_422(client, shop):
    response = client.post(
        f"/v1/knowledge-bases/{shop}/search", json={"query": "x", "diversity": 2}
    )
    assert response.status_code == 422


def test_hybrid_search_over_http_reports_fusion_scores_and_finds_the_keyword(client, shop):
    add = client.post(
        f"/v1/knowledge-bases/{shop}/documents", json={"id": "sku", "text": "XK-4471"}
    )
    assert add.status_code == 201
    hits = search(client, shop, query="sturdy product XK-4471", mode="hybrid", top_k=3)
    assert "sku" in [hit["id"] for hit in hits]
    assert all("fusion_score" in hit for hit in hits)
    assert [h["fusion_score"] for h in hits] == sorted(
        (h["fusion_score"] for h in hits), reverse=True
    )
    dense = search(client, shop, query="sturdy product XK-4471", top_k=3)
    assert all("fusion_score" not in hit for hit in dense)


def test_hybrid_explain_over_http_gives_each_hit_its_dense_keyword_and_fused_rank(client, shop):
    add = client.post(
        f"/v1/knowledge-bases/{shop}/documents",
        json={"id": "sku", "text": "spare part XK4471 for a drill"},
    )
    assert add.status_code == 201
    query = "where is XK4471"
    hits = search(client, shop, query=query, mode="hybrid", top_k=5, explain=True)
    assert hits[0]["id"] == "sku"
    dense = [h["id"] for h in search(client, shop, query=query, top_k=50)]
    for hit in hits:
        explain = hit["explain"]
        assert set(explain) == {"dense", "keyword", "fused"}
        assert explain["fused"] == hit["fusion_score"]
        assert explain["dense"]["score"] == pytest.approx(hit["score"])
        assert dense[explain["dense"]["rank"] - 1] == hit["id"]
    assert hits[0]["explain"]["keyword"]["rank"] == 1
    assert hits[0]["explain"]["keyword"]["coverage"] == pytest.approx(1.0)
    assert all(hit["explain"]["keyword"] is None for hit in hits[1:])  # no word but stop words
    fused = [hit["fusion_score"] for hit in hits]
    assert fused == sorted(fused, reverse=True)
    rrf = search(client, shop, query=query, mode="hybrid", fusion="rrf", rrf_k=1, explain=True)
    assert rrf[0]["explain"]["fused"] == pytest.approx(
        0.5 / (1 + rrf[0]["explain"]["dense"]["rank"]) + 0.5 / 2
    )
    plain = search(client, shop, query=query, top_k=2, explain=True)
    assert [set(hit["explain"]) for hit in plain] == [{"dense"}, {"dense"}]
    assert [hit["explain"]["dense"]["rank"] for hit in plain] == [1, 2]
    assert "explain" not in search(client, shop, query=query, top_k=1)[0]


def test_a_stop_word_question_gets_no_keyword_pull(client, shop):
    hits = search(client, shop, query="where can I", mode="hybrid", top_k=5, explain=True)
    assert all(hit["explain"]["keyword"] is None for hit in hits)


def test_an_unknown_fusion_is_a_422(client, shop):
    response = client.post(
        f"/v1/knowledge-bases/{shop}/search", json={"query": "x", "fusion": "max"}
    )
    assert response.status_code == 422 and "fusion" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "extra", [{"exact": True, "probes": 4}, {"exact": "maybe"}, {"exact": [True]}]
)
def test_exact_with_probes_or_not_a_boolean_is_a_422(client, shop, extra):
    response = client.post(f"/v1/knowledge-bases/{shop}/search", json={"query": "x", **extra})
    assert response.status_code == 422, response.get_json()


def test_exact_search_on_an_approximate_index_scores_and_ranks_every_document(
    make_app, fake_embedder, tmp_path
):
    # Past 2 chunks both backends build an approximate index in the background: IVF (memory)
    # or HNSW (postgres); whichever answers, `exact` must give every document's true score.
    app = make_app(data_dir=str(tmp_path / "approximate"), ann_threshold=2, exact_search_limit=2)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "big"}).status_code == 201
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    texts = [
        " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(i % 5 + 2)) + f" n{i}"
        for i in range(80)
    ]
    documents = [{"id": f"d{i:02}", "text": text} for i, text in enumerate(texts)]
    response = client.post("/v1/knowledge-bases/big/documents", json={"documents": documents})
    assert response.status_code == 201, response.get_json()
    query = "gamma delta iota"
    scores = fake_embedder.embed(texts) @ fake_embedder.embed([query])[0]
    truth = sorted((round(float(score), 4) for score in scores), reverse=True)
    hits = search(client, "big", query=query, top_k=80, exact=True)
    assert [round(hit["score"], 4) for hit in hits] == truth  # all 80, each scored exactly
    by_id = {f"d{i:02}": round(float(score), 4) for i, score in enumerate(scores)}
    assert all(by_id[hit["id"]] == round(hit["score"], 4) for hit in hits)

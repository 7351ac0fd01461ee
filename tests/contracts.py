"""Contract test classes: every adapter and fake of a port must pass its port's class.

Subclass one in a test module and provide its fixture (`make_index`, `make_repository`,
`make_keywords`, `make_job_store` or `embedder`).
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest

from domain.chunking import chunk_spans
from domain.digests import content_hash
from domain.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    JobNotFoundError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
)
from domain.filters import parse_filter
from domain.jobs import Job, JobStatus
from domain.model import Chunk, Document, KnowledgeBase, Layout, Span

DIM = 8
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def unit_rows(count: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def labels(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


class VectorIndexContract:
    @pytest.fixture
    def index(self, make_index):
        return make_index(DIM)

    def test_search_returns_the_stored_vector_first_with_score_one(self, index):
        rows = unit_rows(5)
        index.add(labels(10, 20, 30, 40, 50), rows)
        found = index.search(rows[2], 3)
        assert found[0][0] == 30
        assert found[0][1] == pytest.approx(1.0, abs=1e-6)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)

    def test_scores_are_inner_products(self, index):
        rows = unit_rows(6, seed=1)
        index.add(labels(*range(6)), rows)
        query = unit_rows(1, seed=2)[0]
        expected = sorted(((i, float(rows[i] @ query)) for i in range(6)), key=lambda p: -p[1])
        found = index.search(query, 6)
        assert [label for label, _ in found] == [label for label, _ in expected]
        assert np.allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)

    def test_removed_labels_never_come_back(self, index):
        rows = unit_rows(4)
        index.add(labels(1, 2, 3, 4), rows)
        assert index.remove([2, 99]) == 1
        assert len(index) == 3
        assert 2 not in [label for label, _ in index.search(rows[1], 10)]

    def test_search_asks_for_more_than_held_returns_what_is_held(self, index):
        index.add(labels(7, 8), unit_rows(2))
        assert len(index.search(unit_rows(1, seed=3)[0], 50)) == 2

    def test_empty_index_returns_nothing(self, index):
        assert index.search(unit_rows(1)[0], 5) == []

    def test_allowed_restricts_the_candidates(self, index):
        rows = unit_rows(10)
        index.add(labels(*range(10)), rows)
        found = index.search(rows[0], 5, allowed={3, 5, 7})
        assert {label for label, _ in found} == {3, 5, 7}

    def test_get_returns_stored_vectors_in_order(self, index):
        rows = unit_rows(3)
        index.add(labels(5, 6, 7), rows)
        assert np.allclose(index.get([7, 5]), rows[[2, 0]])
        with pytest.raises(KeyError):
            index.get([8])

    def test_a_label_cannot_be_added_twice(self, index):
        index.add(labels(1), unit_rows(1))
        with pytest.raises(ValueError):
            index.add(labels(1), unit_rows(1, seed=5))

    def test_describe_names_the_kind_and_memory_grows_with_the_vectors(self, index):
        empty = index.describe()
        index.add(labels(*range(1, 101)), unit_rows(100))
        full = index.describe()
        assert full.kind and full.memory_bytes >= empty.memory_bytes + 100 * DIM * 4

    def test_probes_are_accepted_and_exact_results_do_not_change(self, index):
        rows = unit_rows(20)
        index.add(labels(*range(20)), rows)
        assert index.search(rows[3], 5, probes=1)[0][0] == 3

    def test_exact_search_returns_the_true_top_k_with_or_without_allowed(self, index):
        rows = unit_rows(300, seed=11)
        index.add(np.arange(1, 301, dtype=np.int64), rows)
        allowed = set(range(1, 301, 3))
        for query in unit_rows(8, seed=12):
            scores = rows @ query
            order = [int(i) + 1 for i in np.argsort(-scores, kind="stable")]
            kept = [label for label in order if label in allowed]
            for chosen, truth in ((None, order[:10]), (allowed, kept[:10])):
                found = index.search(query, 10, allowed=chosen, exact=True)
                assert [label for label, _ in found] == truth
                assert np.allclose([s for _, s in found], scores[np.array(truth) - 1], atol=1e-5)

    def test_labels_stay_attached_to_their_vectors_after_many_adds_and_removes(self, index):
        rng = random.Random(7)
        live: dict[int, np.ndarray] = {}
        next_label = 1
        for step in range(60):
            if live and rng.random() < 0.4:
                gone = rng.sample(sorted(live), k=min(len(live), rng.randint(1, 4)))
                index.remove(gone)
                for label in gone:
                    del live[label]
            else:
                count = rng.randint(1, 5)
                rows = unit_rows(count, seed=step)
                new = list(range(next_label, next_label + count))
                next_label += count
                index.add(np.array(new, dtype=np.int64), rows)
                live.update(zip(new, rows))
        assert len(index) == len(live)
        for label, row in live.items():
            best_label, best_score = index.search(row, 1)[0]
            assert best_label == label
            assert best_score == pytest.approx(1.0, abs=1e-5)


def make_kb(name: str = "kb", dimension: int = DIM) -> KnowledgeBase:
    return KnowledgeBase(name=name, model="fake-model", dimension=dimension, created_at=T0)


def make_doc(doc_id: str, chunk_ids: list[int], text: str | None = None, **metadata) -> Document:
    text = text or f"text of {doc_id} " * len(chunk_ids)
    step = max(1, len(text) // len(chunk_ids))
    spans = [Span(i * step, min(len(text), (i + 1) * step)) for i in range(len(chunk_ids))]
    chunks = tuple(Chunk(cid, span) for cid, span in zip(chunk_ids, spans))
    return Document(doc_id, text, metadata, T0, T0 + timedelta(seconds=1), chunks)


class DocumentRepositoryContract:
    @pytest.fixture
    def repo(self, make_repository):
        repository = make_repository()
        repository.add_knowledge_base(make_kb())
        return repository

    def add(self, repo, *docs: Document, kb: str = "kb") -> None:
        count = sum(len(d.chunks) for d in docs)
        repo.add_documents(kb, list(docs), unit_rows(count, seed=count))

    def test_a_knowledge_base_name_is_unique(self, repo):
        with pytest.raises(KnowledgeBaseExistsError):
            repo.add_knowledge_base(make_kb())

    def test_unknown_knowledge_bases_are_not_found(self, repo):
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.get_knowledge_base("nope")
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.add_documents("nope", [make_doc("a", [1])], unit_rows(1))
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.list_documents("nope", 10)
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.remove_knowledge_base("nope")

    def test_knowledge_bases_list_by_name_a_page_at_a_time(self, repo):
        for name in ["c", "a", "b"]:
            repo.add_knowledge_base(make_kb(name))
        assert [kb.name for kb in repo.list_knowledge_bases(2)] == ["a", "b"]
        assert [kb.name for kb in repo.list_knowledge_bases(10, after="b")] == ["c", "kb"]

    def test_update_knowledge_base_keeps_the_new_description(self, repo):
        kb = repo.get_knowledge_base("kb")
        repo.update_knowledge_base(KnowledgeBase(**{**kb.__dict__, "description": "new"}))
        assert repo.get_knowledge_base("kb").description == "new"

    def test_the_model_fingerprint_is_kept_and_an_update_records_another_model(self, repo):
        kb = repo.get_knowledge_base("kb")
        repo.add_knowledge_base(KnowledgeBase(**{**kb.__dict__, "name": "fp", "fingerprint": "a1"}))
        assert repo.get_knowledge_base("fp").fingerprint == "a1"
        assert kb.fingerprint == ""  # a knowledge base from before fingerprints
        adopted = KnowledgeBase(**{**kb.__dict__, "model": "minilm", "fingerprint": "b2"})
        repo.update_knowledge_base(adopted)
        assert repo.get_knowledge_base("kb") == adopted
        assert repo.list_knowledge_bases(10)[1] == adopted

    def test_documents_round_trip_with_chunks_and_metadata(self, repo):
        doc = make_doc("a", [1, 2], tag="x", n=3, flags=[True, False])
        self.add(repo, doc)
        assert repo.get_document("kb", "a") == doc
        assert repo.stats("kb").document_count == 1
        assert repo.stats("kb").chunk_count == 2

    def test_adding_a_taken_id_adds_nothing_from_the_batch(self, repo):
        self.add(repo, make_doc("a", [1]))
        with pytest.raises(DocumentExistsError) as raised:
            self.add(repo, make_doc("b", [2]), make_doc("a", [3]))
        assert raised.value.document_ids == ["a"]
        assert repo.existing_ids("kb", ["a", "b"]) == ["a"]
        assert repo.documents_for_chunks("kb", [2, 3]) == {}

    def test_a_document_stored_under_an_id_the_rule_now_refuses_stays_readable(self, repo):
        # Older versions accepted ids such as "/a": their documents must still list, read and go.
        legacy = object.__new__(Document)
        legacy.__dict__.update({**make_doc("x", [1]).__dict__, "id": "/a\nb"})
        self.add(repo, legacy, make_doc("b", [2]))
        assert [d.id for d in repo.list_documents("kb", 10)] == ["/a\nb", "b"]
        assert repo.get_document("kb", "/a\nb") == legacy
        assert [d.id for d in repo.remove_documents("kb", ["/a\nb"])] == ["/a\nb"]

    def test_missing_documents_are_not_found(self, repo):
        with pytest.raises(DocumentNotFoundError):
            repo.get_document("kb", "zzz")
        with pytest.raises(DocumentNotFoundError):
            repo.update_metadata("kb", "zzz", {}, T0)

    def test_documents_list_by_id_a_page_at_a_time(self, repo):
        self.add(repo, *(make_doc(i, [n]) for n, i in enumerate(["d", "b", "a", "c"], start=1)))
        first = repo.list_documents("kb", 2)
        assert [d.id for d in first] == ["a", "b"]
        assert [d.id for d in repo.list_documents("kb", 5, after="b")] == ["c", "d"]

    def test_chunks_map_back_to_their_documents(self, repo):
        a, b = make_doc("a", [1, 2]), make_doc("b", [3])
        self.add(repo, a, b)
        assert repo.documents_for_chunks("kb", [2, 3, 99]) == {2: a, 3: b}

    def test_remove_documents_returns_what_went_and_ignores_the_rest(self, repo):
        self.add(repo, make_doc("a", [1]), make_doc("b", [2, 3]))
        removed = repo.remove_documents("kb", ["b", "zzz"])
        assert [d.id for d in removed] == ["b"]
        assert repo.documents_for_chunks("kb", [2, 3]) == {}
        assert repo.stats("kb").chunk_count == 1

    def test_replace_document_returns_the_previous_and_swaps_the_chunks(self, repo):
        old = make_doc("a", [1, 2])
        self.add(repo, old)
        new = make_doc("a", [5], text="fresh text")
        assert repo.replace_document("kb", new, unit_rows(1)) == old
        assert repo.get_document("kb", "a") == new
        assert repo.documents_for_chunks("kb", [1, 2, 5]) == {5: new}
        assert repo.replace_document("kb", make_doc("z", [6]), unit_rows(1)) is None

    def test_update_metadata_keeps_text_and_chunks(self, repo):
        doc = make_doc("a", [1], tag="old")
        self.add(repo, doc)
        later = T0 + timedelta(days=1)
        updated = repo.update_metadata("kb", "a", {"tag": "new"}, later)
        assert updated.metadata == {"tag": "new"}
        assert (updated.created_at, updated.updated_at) == (doc.created_at, later)
        assert updated.chunks == doc.chunks
        assert repo.get_document("kb", "a") == updated

    def test_a_layout_is_kept_by_every_read_and_write(self, repo):
        layout = Layout(sections=(0, 4, 9), pages=(7, 7, 12))
        doc = replace(make_doc("a", [1, 2], tag="x"), layout=layout)
        plain = make_doc("b", [3])
        self.add(repo, doc, plain)
        assert repo.get_document("kb", "a") == doc and repo.get_document("kb", "b") == plain
        assert repo.list_documents("kb", 10) == [doc, plain]
        assert repo.documents_for_chunks("kb", [2, 3]) == {2: doc, 3: plain}
        where = parse_filter({"tag": "x"})
        assert repo.list_documents("kb", 10, where=where) == [doc]
        assert [(d.id, d.content_hash, d.metadata) for d in repo.list_digests("kb", 10)] == [
            (d.id, d.content_hash, d.metadata) for d in (doc, plain)
        ]  # the metadata found past the layout's offsets
        updated = repo.update_metadata("kb", "a", {"tag": "y"}, T0 + timedelta(days=1))
        assert updated.layout == layout == repo.get_document("kb", "a").layout
        fresh = replace(make_doc("a", [5]), layout=Layout(pages=(3,)))
        assert repo.replace_document("kb", fresh, unit_rows(1)).layout == layout
        assert repo.get_document("kb", "a") == fresh
        assert repo.remove_documents("kb", ["a"]) == [fresh]

    def test_removing_a_knowledge_base_removes_its_documents(self, repo):
        self.add(repo, make_doc("a", [1]))
        repo.remove_knowledge_base("kb")
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.get_document("kb", "a")
        repo.add_knowledge_base(make_kb())
        assert repo.stats("kb").document_count == 0

    def test_chunk_ids_are_never_handed_out_twice(self, repo):
        first, second = repo.allocate_chunk_ids(3), repo.allocate_chunk_ids(2)
        assert len(set(first) | set(second)) == 5

    def test_kept_vectors_belong_to_live_chunks_only(self, repo):
        self.add(repo, make_doc("a", [1, 2]), make_doc("b", [3]))
        repo.remove_documents("kb", ["a"])
        labels = repo.chunk_labels("kb")
        if labels is None:
            return  # the store's own indexes hold the vectors: nothing to load
        assert set(labels.tolist()) <= {3}
        kept_labels, kept_vectors = kept_vectors_of(repo, "kb")
        assert kept_labels.tolist() == labels.tolist()
        assert kept_vectors.shape == (len(kept_labels), DIM)

    def test_kept_vectors_load_in_batches_and_by_label(self, repo):
        docs = [make_doc(f"d{i}", [10 + i]) for i in range(5)]
        self.add(repo, *docs)
        labels = repo.chunk_labels("kb")
        if labels is None or not len(labels):
            return  # nothing kept (shared or volatile stores)
        assert labels.tolist() == [10, 11, 12, 13, 14]
        whole = kept_vectors_of(repo, "kb")
        some = kept_vectors_of(repo, "kb", np.array([14, 11, 99], dtype=np.int64))
        assert some[0].tolist() == [11, 14]  # ascending; 99 is not kept
        assert np.array_equal(some[1], whole[1][[1, 4]])

    def test_list_documents_with_a_filter_returns_matching_pages(self, repo):
        docs = [make_doc(f"d{i}", [i + 1], n=i, even=i % 2 == 0) for i in range(6)]
        self.add(repo, *docs)
        where = parse_filter({"even": True})
        assert [d.id for d in repo.list_documents("kb", 2, where=where)] == ["d0", "d2"]
        assert [d.id for d in repo.list_documents("kb", 5, after="d2", where=where)] == ["d4"]

    def test_content_hashes_list_ids_and_hashes_by_page(self, repo):
        docs = [make_doc(f"d{i}", [i + 1], text=f"body {i}", n=i) for i in range(5)]
        self.add(repo, *docs)
        assert repo.content_hashes("kb", 2) == [(d.id, content_hash(d.text)) for d in docs[:2]]
        assert [i for i, _ in repo.content_hashes("kb", 10, after="d2")] == ["d3", "d4"]
        assert repo.content_hashes("kb", 10, after="d4") == []

    def test_digests_list_ids_hashes_and_metadata_by_page_and_filter(self, repo):
        docs = [
            make_doc(f"d{i}", [i + 1], text=f"body {i}", n=i, even=i % 2 == 0) for i in range(5)
        ]
        self.add(repo, *docs)
        first = repo.list_digests("kb", 2)
        assert [(d.id, d.metadata) for d in first] == [(x.id, x.metadata) for x in docs[:2]]
        expected = "sha256:" + hashlib.sha256(b"body 0").hexdigest()
        assert first[0].content_hash == expected == docs[0].content_hash
        assert [d.id for d in repo.list_digests("kb", 10, after="d1")] == ["d2", "d3", "d4"]
        where = parse_filter({"even": True})
        assert [d.id for d in repo.list_digests("kb", 2, after="d0", where=where)] == ["d2", "d4"]
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.list_digests("nope", 10)

    def test_a_replaced_documents_hash_is_its_new_texts_and_a_metadata_update_keeps_it(self, repo):
        self.add(repo, make_doc("a", [1], text="old text"))
        repo.replace_document("kb", make_doc("a", [2], text="new text"), unit_rows(1))
        repo.update_metadata("kb", "a", {"tag": "x"}, T0)
        (digest,) = repo.list_digests("kb", 10)
        assert digest.content_hash == "sha256:" + hashlib.sha256(b"new text").hexdigest()
        assert digest.metadata == {"tag": "x"}
        assert repo.get_document("kb", "a").content_hash == digest.content_hash
        assert repo.list_documents("kb", 10)[0].content_hash == digest.content_hash

    def test_an_unpublished_knowledge_base_takes_documents_but_no_read_finds_it(self, repo):
        repo.add_knowledge_base(make_kb("new"), building="job-1")
        self.add(repo, make_doc("a", [1, 2]), kb="new")
        assert [kb.name for kb in repo.list_knowledge_bases(10)] == ["kb"]
        assert repo.unpublished_knowledge_bases() == [("new", "job-1")]
        for read in (
            lambda: repo.get_knowledge_base("new"),
            lambda: repo.stats("new"),
            lambda: repo.get_document("new", "a"),
            lambda: repo.list_documents("new", 10),
            lambda: repo.update_knowledge_base(make_kb("new")),
            lambda: repo.remove_knowledge_base("new"),
        ):
            with pytest.raises(KnowledgeBaseNotFoundError):
                read()
        with pytest.raises(KnowledgeBaseExistsError):
            repo.add_knowledge_base(make_kb("new"))

    def test_publishing_shows_the_knowledge_base_whole(self, repo):
        repo.add_knowledge_base(make_kb("new"), building="job-1")
        doc = make_doc("a", [1, 2])
        self.add(repo, doc, kb="new")
        repo.publish_knowledge_base("new")
        assert repo.get_knowledge_base("new") == make_kb("new")
        assert repo.get_document("new", "a") == doc
        assert repo.stats("new").chunk_count == 2
        assert repo.unpublished_knowledge_bases() == []
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.publish_knowledge_base("new")  # published already
        with pytest.raises(KnowledgeBaseNotFoundError):
            repo.publish_knowledge_base("kb")  # never was unpublished

    def test_removing_an_unpublished_knowledge_base_leaves_no_row_and_frees_the_name(self, repo):
        repo.add_knowledge_base(make_kb("new"), building="job-1")
        self.add(repo, make_doc("a", [1, 2]), kb="new")
        assert repo.remove_unpublished("new") is True
        assert repo.remove_unpublished("new") is False
        assert repo.remove_unpublished("kb") is False  # a published one is never touched
        assert repo.get_knowledge_base("kb") == make_kb()
        assert repo.unpublished_knowledge_bases() == []
        repo.add_knowledge_base(make_kb("new"))
        self.add(repo, make_doc("a", [3]), kb="new")  # no document of the removed one is left
        assert repo.stats("new").document_count == 1

    def test_chunk_ids_matching_a_filter_cover_every_chunk_of_matching_documents(self, repo):
        self.add(repo, make_doc("a", [1, 2], lang="en"), make_doc("b", [3], lang="fr"))
        assert sorted(repo.chunk_ids_matching("kb", parse_filter({"lang": "en"}))) == [1, 2]
        assert repo.chunk_ids_matching("kb", parse_filter({"lang": "de"})) == []


class KeywordIndexContract:
    @pytest.fixture
    def keywords(self, make_keywords):
        index = make_keywords()
        index.add(
            [
                ("a", "The quick brown fox jumps over the lazy dog"),
                ("b", "A database index speeds up queries"),
                ("c", "Foxes and dogs are not friends"),
                ("d", "Error code E1234 in the parser"),
            ]
        )
        return index

    def test_a_rare_word_finds_its_document_first(self, keywords):
        assert keywords.search("what is E1234", 2)[0][0] == "d"

    def test_scores_are_best_first_and_only_matching_documents_come_back(self, keywords):
        found = keywords.search("database queries", 10)
        assert [doc_id for doc_id, _ in found] == ["b"]
        many = keywords.search("fox dog database", 10)
        assert [s for _, s in many] == sorted((s for _, s in many), reverse=True)

    def test_removed_documents_never_come_back(self, keywords):
        keywords.remove(["d", "zzz"])
        assert keywords.search("E1234", 5) == []
        assert len(keywords) == 3

    def test_a_removed_document_may_come_back_with_new_words_and_others_stay(self, keywords):
        keywords.remove(["b"])
        keywords.add([("b", "A lighthouse on the rocky coast")])
        keywords.remove(["a"])
        assert [d for d, _ in keywords.search("lighthouse database", 5)] == ["b"]
        assert [d for d, _ in keywords.search("E1234", 5)] == ["d"]
        assert len(keywords) == 3

    def test_allowed_restricts_the_candidates(self, keywords):
        assert [d for d, _ in keywords.search("fox foxes dog", 5, allowed={"c"})] == ["c"]

    def test_stop_words_are_not_looked_up(self, keywords):
        # Every document holds "the", "a", "in" or "and": none of them is a keyword match.
        assert keywords.search("where can I find the and a in", 5) == []
        assert [d for d, _ in keywords.search("where is the parser", 5)] == ["d"]

    def test_term_matches_give_frequencies_and_which_documents_hold_which_terms(self, keywords):
        # Terms are spelled as the index keeps them (PostgreSQL stems "lazy" to "lazi").
        found = keywords.term_matches("the lazy parser and the database", ["a", "b", "zzz"])
        assert found.documents == 4
        assert list(found.terms.values()) == [1, 1, 1]
        assert set(found.matched) == {"a", "b"}
        lazy, _parser, database = found.terms
        assert found.matched["a"] == {lazy} and found.matched["b"] == {database}
        assert keywords.term_matches("the and", ["a"]).matched == {}

    def test_queries_without_words_or_with_quotes_are_harmless(self, keywords):
        assert keywords.search("", 5) == []
        assert keywords.search('"); DROP TABLE words; --', 5) == []
        assert keywords.term_matches("'); DROP TABLE words; -- \\ '' \"", ["a"]).matched == {}
        odd = "see https://x.org/a:b?c=d&e, C:\\dir\\f.txt it's ___ x_y a|b !c (d) fox's"
        assert keywords.term_matches(odd, ["a", "c"]).documents == 4

    # Taking back a kept copy at start. `make_kept_keywords()` opens a new index over the one
    # copy (each call is one run of the service); KEEPS_A_COPY is False for an index that is
    # the store's own table, always complete, whose resume has nothing to take back.
    KEEPS_A_COPY = True

    def test_a_new_index_with_nothing_kept_asks_for_every_document(self, make_kept_keywords):
        lacking = make_kept_keywords().resume(_digests(KEPT_DOCS))
        assert lacking == (None if self.KEEPS_A_COPY else [])

    def test_a_reopened_index_takes_back_its_copy_and_answers_as_before(self, make_kept_keywords):
        first = _first_run(make_kept_keywords, KEPT_DOCS)
        before = _answers(first)
        second = make_kept_keywords()
        assert second.resume(_digests(KEPT_DOCS)) == []
        assert len(second) == len(KEPT_DOCS)
        assert _answers(second) == before

    def test_documents_changed_while_down_are_forgotten_and_asked_for(
        self, make_kept_keywords, make_keywords
    ):
        _first_run(make_kept_keywords, KEPT_DOCS)
        now = {**KEPT_DOCS, "b": "A lighthouse on the rocky coast", "e": "Zebras on the plain"}
        del now["c"]
        second = make_kept_keywords()
        lacking = second.resume(_digests(now))
        if not self.KEEPS_A_COPY:
            assert lacking == []  # its rows changed with the store's
            return
        assert lacking == ["b", "e"]
        assert len(second) == 2
        second.add([(doc_id, now[doc_id]) for doc_id in lacking])
        fresh = make_keywords()
        fresh.add(sorted(now.items()))
        assert _answers(second) == _answers(fresh)
        assert [d for d, _ in second.search("friends lighthouse", 5)] == ["b"]

    def test_discard_deletes_the_copy_and_later_calls_never_bring_it_back(self, make_kept_keywords):
        first = _first_run(make_kept_keywords, KEPT_DOCS)
        first.discard()
        first.add([("z", "A zebra crossing")])
        first.remove(["a"])
        first.search("zebra", 5)
        lacking = make_kept_keywords().resume(_digests(KEPT_DOCS))
        assert lacking == (None if self.KEEPS_A_COPY else [])

    def test_odd_ids_are_matched_in_the_order_the_store_lists_them(self, make_kept_keywords):
        # Code point order, which is UTF-8 byte order: U+FFFF before U+10000 (UTF-16 differs).
        ids = ["a", "a b", "a/b", "a/b/c", "Z", "é", "ß", "中文", "\uffff", "\U00010000", "😀"]
        ids += ["x" * 256, 'q"uote', "it's", "%2F", "a\u00a0b"]
        docs = {doc_id: f"shared word{n}" for n, doc_id in enumerate(ids)}
        _first_run(make_kept_keywords, docs)
        now = {**docs, "\U00010000": "shared changed", "x" * 256: "shared other"}
        now["\ufffd"] = "shared new"
        del now["中文"]
        second = make_kept_keywords()
        lacking = second.resume(_digests(now))
        if not self.KEEPS_A_COPY:
            assert lacking == []
            return
        assert lacking == sorted(["\U00010000", "\ufffd", "x" * 256])
        second.add([(doc_id, now[doc_id]) for doc_id in lacking])
        assert len(second) == len(now)
        for n, doc_id in enumerate(ids):
            expected = [] if doc_id not in now or now[doc_id] != docs[doc_id] else [doc_id]
            assert [d for d, _ in second.search(f"word{n}", 5)] == expected
        assert {d for d, _ in second.search("shared", 50)} == set(now)

    def test_ids_out_of_order_are_refused(self, make_kept_keywords):
        _first_run(make_kept_keywords, KEPT_DOCS)
        shuffled = iter(sorted(_digests(KEPT_DOCS), reverse=True))
        if not self.KEEPS_A_COPY:
            assert make_kept_keywords().resume(shuffled) == []
            return
        with pytest.raises(ValueError, match="order"):
            make_kept_keywords().resume(shuffled)


KEPT_DOCS = {
    "a": "The quick brown fox jumps over the lazy dog",
    "b": "A database index speeds up queries",
    "c": "Foxes and dogs are not friends",
    "d": "Error code E1234 in the parser",
}
KEPT_QUERIES = ["fox", "dog database", "E1234 parser", "lighthouse zebras", "foxes friends"]


def _digests(docs):
    """(id, content hash) in ascending id order, as the store streams them at start."""
    return iter(sorted((doc_id, content_hash(text)) for doc_id, text in docs.items()))


def _first_run(make_kept_keywords, docs):
    """A run that starts with nothing kept and adds `docs` as writes do; its index."""
    index = make_kept_keywords()
    index.resume(iter([]))
    index.add(sorted(docs.items()))
    return index


def _answers(index):
    """Every query's hits as (id, score rounded), ties in id order."""
    return [
        sorted((doc_id, round(score, 9)) for doc_id, score in index.search(query, 50))
        for query in KEPT_QUERIES
    ]


PARAGRAPH = (
    "The committee reviewed the quarterly budget figures in detail, and noted that spending "
    "on maintenance had risen for the third year running while income from rents had fallen. "
)
SAMPLES = [
    "This is an example sentence",
    "Penguins huddle together to survive the Antarctic winter.",
    "The stock market fell sharply on Monday.",
    "Naïve café-owners   don't panic.",
    "",
    PARAGRAPH * 3,
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


class EmbedderContract:
    """What the `Embedder` port promises; provide an `embedder` fixture (build it once)."""

    def test_rows_are_unit_float32_vectors_of_the_dimension_one_per_text(self, embedder):
        vectors = embedder.embed(SAMPLES)
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(SAMPLES), embedder.dimension)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_an_empty_list_gives_no_rows(self, embedder):
        vectors = embedder.embed([])
        assert vectors.shape == (0, embedder.dimension)

    def test_rows_come_in_the_order_of_the_texts(self, embedder):
        together = embedder.embed(SAMPLES)
        alone = np.concatenate([embedder.embed([text]) for text in SAMPLES])
        assert cosines(together, alone).min() >= 0.9999
        reversed_rows = embedder.embed(SAMPLES[::-1])[::-1]
        assert cosines(together, reversed_rows).min() >= 0.9999

    def test_identical_texts_give_identical_vectors_and_different_texts_do_not(self, embedder):
        first, other, again = embedder.embed([SAMPLES[1], SAMPLES[2], SAMPLES[1]])
        assert np.allclose(first, again, atol=1e-6)
        assert np.allclose(embedder.embed([SAMPLES[1]])[0], first, atol=1e-5)
        assert float(first @ other) < 0.99

    def test_the_model_has_a_name_and_a_window_inside_its_sequence_length(self, embedder):
        assert isinstance(embedder.model_name, str) and embedder.model_name
        assert embedder.dimension > 0
        assert embedder.max_seq_length > 0
        assert 1 <= embedder.window < embedder.max_seq_length

    def test_the_name_is_readable_not_a_path_and_the_fingerprint_a_sha256(self, embedder):
        name = embedder.model_name
        assert name and not name.startswith(("/", ".", "~")) and name.count("/") <= 1
        assert re.fullmatch(r"[0-9a-f]{64}", embedder.fingerprint)

    def test_the_fingerprint_is_stable_across_instances_and_differs_for_another_model(
        self, embedder, same_model, other_model
    ):
        """`same_model`: another instance of the model; `other_model`: another model."""
        assert same_model.fingerprint == embedder.fingerprint
        assert other_model.fingerprint != embedder.fingerprint

    def test_token_offsets_are_ordered_spans_inside_the_text_covering_every_word(self, embedder):
        text = "Naïve café-owners   don't panic. Pi is 3.14, e-mail me!"
        offsets = embedder.token_offsets(text)
        assert offsets and offsets[0][0] == 0 and offsets[-1][1] == len(text)
        assert all(0 <= start < end <= len(text) for start, end in offsets)
        assert all(a[1] <= b[0] for a, b in pairwise(offsets))
        covered = {i for start, end in offsets for i in range(start, end)}
        assert covered == {i for i, char in enumerate(text) if not char.isspace()}
        assert embedder.token_offsets("") == []

    def test_the_model_sees_exactly_the_window_and_cuts_the_rest(self, embedder):
        window = embedder.window
        text = "word " * (window - 1) + "penguins survive the Antarctic winter " * 4
        offsets = embedder.token_offsets(text)
        assert len(offsets) > window
        full, within, short = embedder.embed(
            [text, text[: offsets[window - 1][1]], text[: offsets[window - 2][1]]]
        )
        assert float(full @ within) >= 0.9999  # pieces past the window are cut
        assert float(within @ short) < 0.9999  # the window's last piece still counts

    def test_chunk_spans_cover_the_text_and_each_fits_the_window(self, embedder):
        text = PARAGRAPH * 12
        offsets = embedder.token_offsets(text)
        window = embedder.window
        spans, truncated = chunk_spans(offsets, len(text), window, window // 4)
        assert not truncated and len(spans) > 1
        assert spans[0].start == 0 and spans[-1].end == len(text)
        assert all(0 <= s.start < s.end <= len(text) for s in spans)
        assert all(b.start <= a.end for a, b in pairwise(spans))  # no gap
        for span in spans:
            inside = [o for o in offsets if span.start <= o[0] and o[1] <= span.end]
            assert len(inside) <= window

    def test_threads_embedding_at_once_each_get_their_own_rows(self, embedder):
        batches = [[f"{word} number {i}" for i in range(3)] for word in ("apple", "river", "tax")]
        batches += [[PARAGRAPH * 2, "penguins"], SAMPLES]
        expected = [embedder.embed(batch) for batch in batches]
        start = threading.Barrier(len(batches))

        def embed(batch: list[str]) -> np.ndarray:
            start.wait()
            vectors: np.ndarray = embedder.embed(batch)
            return vectors

        with ThreadPoolExecutor(len(batches)) as pool:
            results = list(pool.map(embed, batches * 3))
        for got, want in zip(results, expected * 3):
            assert got.shape == want.shape
            assert cosines(got, want).min() >= 0.9999


def make_job(job_id: str = "job-1", status: str = "queued", minutes: int = 0, **fields) -> Job:
    at = T0 + timedelta(minutes=minutes)
    fields.setdefault("knowledge_base", "kb")
    return Job(job_id, "restore", status=JobStatus(status), created_at=at, updated_at=at, **fields)


class JobStoreContract:
    @pytest.fixture
    def store(self, make_job_store):
        return make_job_store()

    def test_a_job_round_trips_with_every_field(self, store):
        job = make_job(done=3, total=10, error=None)
        store.add(job)
        assert store.get(job.id) == job
        nameless = make_job("job-2", knowledge_base=None)
        store.add(nameless)
        assert store.get("job-2").knowledge_base is None

    def test_an_unknown_job_is_not_found(self, store):
        with pytest.raises(JobNotFoundError):
            store.get("nope")
        with pytest.raises(JobNotFoundError):
            store.request_cancel("nope", T0)

    def test_update_records_progress_and_status_until_the_job_ends(self, store):
        store.add(make_job())
        later = T0 + timedelta(seconds=5)
        running = replace(make_job(), status=JobStatus.RUNNING, done=4, total=9, updated_at=later)
        assert store.update(running) == running
        failed = replace(running, status=JobStatus.FAILED, error="broken archive")
        assert store.update(failed) == failed
        assert store.update(replace(running, done=9)) == failed  # an ended job stays as it ended
        assert store.get("job-1") == failed

    def test_cancelling_a_queued_job_ends_it_and_a_running_one_is_flagged(self, store):
        store.add(make_job("queued"))
        store.add(make_job("running", "running"))
        later = T0 + timedelta(seconds=1)
        cancelled = store.request_cancel("queued", later)
        assert (cancelled.status, cancelled.updated_at) == (JobStatus.CANCELLED, later)
        flagged = store.request_cancel("running", later)
        assert (flagged.status, flagged.cancel_requested) == (JobStatus.RUNNING, True)
        # The runner's next write keeps the flag it did not know of, and the runner sees it.
        progressed = store.update(replace(make_job("running", "running"), done=2))
        assert progressed.cancel_requested and progressed.done == 2

    def test_cancelling_a_finished_job_leaves_it_as_it_is(self, store):
        store.add(make_job("done", "succeeded", done=5, total=5))
        assert store.request_cancel("done", T0 + timedelta(seconds=1)) == store.get("done")
        assert store.get("done") == make_job("done", "succeeded", done=5, total=5)

    def test_unfinished_jobs_last_updated_before_a_moment_fail_with_the_reason(self, store):
        store.add(make_job("old-queued", "queued", minutes=0))
        store.add(make_job("old-running", "running", minutes=1))
        store.add(make_job("fresh-running", "running", minutes=10))
        store.add(make_job("old-succeeded", "succeeded", minutes=0))
        now = T0 + timedelta(minutes=11)
        assert store.fail_unfinished("stopped", T0 + timedelta(minutes=5), now) == 2
        for job_id in ("old-queued", "old-running"):
            job = store.get(job_id)
            assert (job.status, job.error, job.updated_at) == (JobStatus.FAILED, "stopped", now)
        assert store.get("fresh-running").status is JobStatus.RUNNING
        assert store.get("old-succeeded").status is JobStatus.SUCCEEDED

    def test_old_finished_jobs_are_removed_and_unfinished_ones_kept(self, store):
        store.add(make_job("old-failed", "failed", minutes=0, error="x"))
        store.add(make_job("old-running", "running", minutes=0))
        store.add(make_job("new-failed", "failed", minutes=10, error="x"))
        assert store.remove_finished(T0 + timedelta(minutes=5)) == 1
        with pytest.raises(JobNotFoundError):
            store.get("old-failed")
        assert {job.id for job in store.list(10)} == {"old-running", "new-failed"}

    def test_jobs_list_newest_first_up_to_the_limit(self, store):
        for minute in (3, 1, 2):
            store.add(make_job(f"job-{minute}", minutes=minute))
        assert [job.id for job in store.list(2)] == ["job-3", "job-2"]

    def test_concurrent_writers_never_undo_an_end(self, store):
        store.add(make_job("job", "running"))
        ended = replace(make_job("job", "running"), status=JobStatus.CANCELLED)

        def write(step: int) -> None:
            if step == 50:
                store.update(ended)
            else:
                store.update(replace(make_job("job", "running"), done=step))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(100)))
        assert store.get("job").status is JobStatus.CANCELLED


def kept_vectors_of(repo, kb, labels=None):
    """Every batch of `repo.load_vectors` in one (labels, vectors) pair."""
    batches = list(repo.load_vectors(kb, labels))
    if not batches:
        return np.zeros(0, np.int64), np.zeros((0, DIM), np.float32)
    return np.concatenate([b[0] for b in batches]), np.vstack([b[1] for b in batches])

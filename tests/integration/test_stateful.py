"""Random sequences of operations and restarts against a model of what the service must hold.

Hypothesis drives the real `kb` process (gunicorn, the fake embedder) through HTTP on each
backend: knowledge bases created, left empty and deleted; documents added, upserted, patched
and deleted one by one, by ids and by filter; filtered searches; and restarts by SIGTERM,
SIGINT and SIGKILL. After every step the service must agree with `stateful_model.Model`.
A failure prints the shrunk steps (`state.add_documents(...)`) and a blob for
`@reproduce_failure`. KB_STATEFUL_EXAMPLES and KB_STATEFUL_STEPS run it longer.
"""

from __future__ import annotations

import math
import os
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stateful_model import (
    KnowledgeBaseModel,
    Model,
    addressable,
    finite_filter,
    matches,
    same,
    valid_description,
    valid_document_id,
)
from stateful_service import STOPS, Answer, Service, document_path, expect
from stateful_strategies import (
    DESCRIPTIONS,
    DOCUMENT_IDS,
    FILTERS,
    KB_NAMES,
    METADATA,
    NEW_DOCUMENTS,
    TARGETS,
    WORDS,
)

pytestmark = pytest.mark.server

SETTINGS = settings(
    max_examples=int(os.environ.get("KB_STATEFUL_EXAMPLES", "15")),
    stateful_step_count=int(os.environ.get("KB_STATEFUL_STEPS", "40")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class KnowledgeBaseMachine(RuleBasedStateMachine):
    """Rules change the service and the model alike; the invariant compares the two."""

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.service = service
        self.model = Model()
        self.stored_at_restart = repr(self.model.kbs)
        service.fresh()

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return self.service.call(method, path, body)

    def resolve(self, name: str, target: str | int) -> str:
        """An id, or a number: the id of that stored document (modulo how many there are)."""
        if isinstance(target, str):
            return target
        ids = sorted(self.model.kbs[name].documents) if name in self.model.kbs else []
        doc_id = ids[target % len(ids)] if ids else "a"
        note(f"document {target} of {name!r} is {doc_id!r}")
        return doc_id

    def refusal(self, name: str, doc_id: str) -> tuple[int, ...]:
        """The statuses a per-document route may answer before it reaches the document."""
        missing = (404,) if name not in self.model.kbs else ()
        if not addressable(doc_id):  # undecodable bytes in the path
            return (400, 422, *missing)
        if not valid_document_id(doc_id):
            return (422, *missing)
        return missing

    @initialize(description=DESCRIPTIONS.filter(valid_description))
    def start_with_a_knowledge_base(self, description: str) -> None:
        """Most steps then find a knowledge base to work on (the others meet a 404)."""
        self.create_knowledge_base("kb-a", description)

    @rule(name=KB_NAMES, description=DESCRIPTIONS)
    def create_knowledge_base(self, name: str, description: str) -> None:
        answer = self.call(
            "POST", "/v1/knowledge-bases", {"name": name, "description": description}
        )
        if not valid_description(description):
            expect(answer, 422)
        elif name in self.model.kbs:
            expect(answer, 409)
        else:
            expect(answer, 201)
            self.model.kbs[name] = KnowledgeBaseModel(description)

    @rule(name=KB_NAMES)
    def delete_knowledge_base(self, name: str) -> None:
        answer = self.call("DELETE", f"/v1/knowledge-bases/{name}")
        expect(answer, 204 if self.model.kbs.pop(name, None) else 404)

    @rule(name=KB_NAMES, documents=NEW_DOCUMENTS)
    def add_documents(self, name: str, documents: list[Any]) -> None:
        sent = [self.new_document(*document) for document in documents]
        self.add(name, sent, {"documents": sent})

    @rule(name=KB_NAMES, document=NEW_DOCUMENTS.map(lambda documents: documents[0]))
    def add_one_document(self, name: str, document: Any) -> None:
        """The body without the "documents" list."""
        sent = self.new_document(*document)
        self.add(name, [sent], sent)

    def new_document(self, doc_id: str | None, words: str, metadata: Any) -> dict[str, Any]:
        sent = {"text": self.model.unique_text(words), "metadata": metadata}
        return sent if doc_id is None else sent | {"id": doc_id}

    def add(self, name: str, sent: list[dict[str, Any]], body: dict[str, Any]) -> None:
        answer = self.call("POST", f"/v1/knowledge-bases/{name}/documents", body)
        ids = [doc["id"] for doc in sent if "id" in doc]
        kb = self.model.kbs.get(name)
        if not all(valid_document_id(doc_id) for doc_id in ids):
            expect(answer, 422, *([404] if kb is None else []))
        elif kb is None:
            expect(answer, 404)
        elif set(ids) & kb.documents.keys():
            expect(answer, 409)
        else:
            items = expect(answer, 201)["items"]
            for doc, item in zip(sent, items, strict=True):
                assert item["id"] == doc.get("id", item["id"]), item
                assert valid_document_id(item["id"]) and item["id"] not in kb.documents, item
                kb.documents[item["id"]] = (doc["text"], doc["metadata"])

    @rule(name=KB_NAMES, doc_id=TARGETS, words=WORDS, metadata=METADATA, same_text=st.booleans())
    def upsert_document(
        self, name: str, doc_id: str | int, words: str, metadata: dict[str, Any], same_text: bool
    ) -> None:
        doc_id = self.resolve(name, doc_id)
        kb = self.model.kbs.get(name)
        old = kb.documents.get(doc_id) if kb else None
        text = old[0] if old and same_text else self.model.unique_text(words)
        body = {"text": text, "metadata": metadata}
        answer = self.call("PUT", document_path(name, doc_id), body)
        if refused := self.refusal(name, doc_id):
            expect(answer, *refused)
            return
        assert kb is not None
        stored = expect(answer, 200 if old else 201)
        assert (stored["id"], stored["text"]) == (doc_id, text), stored
        kb.documents[doc_id] = (text, metadata)

    @rule(name=KB_NAMES, doc_id=TARGETS, metadata=METADATA)
    def patch_metadata(self, name: str, doc_id: str | int, metadata: dict[str, Any]) -> None:
        doc_id = self.resolve(name, doc_id)
        answer = self.call("PATCH", document_path(name, doc_id), {"metadata": metadata})
        if refused := self.refusal(name, doc_id):
            expect(answer, *refused)
            return
        documents = self.model.kbs[name].documents
        if doc_id not in documents:
            expect(answer, 404)
            return
        assert same(expect(answer, 200)["metadata"], metadata)
        documents[doc_id] = (documents[doc_id][0], metadata)

    @rule(name=KB_NAMES, doc_id=TARGETS)
    def read_document(self, name: str, doc_id: str | int) -> None:
        doc_id = self.resolve(name, doc_id)
        answer = self.call("GET", document_path(name, doc_id))
        if refused := self.refusal(name, doc_id):
            expect(answer, *refused)
        elif stored := self.model.kbs[name].documents.get(doc_id):
            body = expect(answer, 200)
            assert same([body["id"], body["text"], body["metadata"]], [doc_id, *stored]), body
        else:
            expect(answer, 404)

    @rule(name=KB_NAMES, doc_id=TARGETS)
    def delete_document(self, name: str, doc_id: str | int) -> None:
        doc_id = self.resolve(name, doc_id)
        answer = self.call("DELETE", document_path(name, doc_id))
        if refused := self.refusal(name, doc_id):
            expect(answer, *refused)
            return
        expect(answer, 204 if self.model.kbs[name].documents.pop(doc_id, None) else 404)

    @rule(name=KB_NAMES)
    def delete_every_document_one_by_one(self, name: str) -> None:
        for doc_id in sorted(self.model.kbs[name].documents if name in self.model.kbs else []):
            expect(self.call("DELETE", document_path(name, doc_id)), 204)
            del self.model.kbs[name].documents[doc_id]

    @rule(name=KB_NAMES, where=FILTERS | FILTERS | st.just({}), dry_run=st.booleans())
    def delete_by_filter(self, name: str, where: dict[str, Any], dry_run: bool) -> None:
        body = {"filter": where, "dry_run": dry_run}
        answer = self.call("POST", f"/v1/knowledge-bases/{name}/documents/delete", body)
        kb = self.model.kbs.get(name)
        if not finite_filter(where):
            expect(answer, 422, *([404] if kb is None else []))
            return
        if kb is None:
            expect(answer, 404)
            return
        doomed = sorted(i for i, (_, meta) in kb.documents.items() if matches(where, meta))
        assert sorted(expect(answer, 200)["deleted"]) == doomed
        for doc_id in [] if dry_run else doomed:
            del kb.documents[doc_id]

    @rule(name=KB_NAMES, ids=st.lists(DOCUMENT_IDS, min_size=1, max_size=3, unique=True))
    def delete_by_ids(self, name: str, ids: list[str]) -> None:
        answer = self.call("POST", f"/v1/knowledge-bases/{name}/documents/delete", {"ids": ids})
        kb = self.model.kbs.get(name)
        if not all(valid_document_id(doc_id) for doc_id in ids):
            expect(answer, 422, *([404] if kb is None else []))
            return
        if kb is None:
            expect(answer, 404)
            return
        doomed = sorted(doc_id for doc_id in ids if doc_id in kb.documents)
        assert sorted(expect(answer, 200)["deleted"]) == doomed
        for doc_id in doomed:
            del kb.documents[doc_id]

    @rule(
        name=KB_NAMES,
        pick=st.integers(0, 99),
        where=st.none() | FILTERS,
        top_k=st.integers(1, 4),
    )
    def search(self, name: str, pick: int, where: dict[str, Any] | None, top_k: int) -> None:
        kb = self.model.kbs.get(name)
        ids = sorted(kb.documents) if kb else []
        target = ids[pick % len(ids)] if ids else None
        query = kb.documents[target][0] if kb and target else "nothing like it"
        body = {"query": query, "top_k": top_k} | ({} if where is None else {"filter": where})
        answer = self.call("POST", f"/v1/knowledge-bases/{name}/search", body)
        if where is not None and not finite_filter(where):
            expect(answer, 422, *([404] if kb is None else []))
            return
        if kb is None:
            expect(answer, 404)
            return
        hits = expect(answer, 200)["hits"]
        wanted = [i for i in ids if where is None or matches(where, kb.documents[i][1])]
        assert len(hits) == min(top_k, len(wanted)), (hits, wanted)
        for hit in hits:
            assert hit["id"] in wanted, (hit, wanted)
            assert same([hit["text"], hit["metadata"]], [*kb.documents[hit["id"]]]), hit
        if target in wanted:
            assert hits[0]["id"] == target and math.isclose(hits[0]["score"], 1, abs_tol=1e-4)

    # Only when there is something to lose: restarts stay a minority of the steps (each costs
    # about two seconds), and a shrunk example restarts right after what it stored.
    @precondition(lambda self: repr(self.model.kbs) != self.stored_at_restart)
    @rule(how=st.sampled_from(STOPS))
    def restart_the_service(self, how: str) -> None:
        self.service.restart(how)
        self.stored_at_restart = repr(self.model.kbs)

    @invariant()
    def the_service_agrees_with_the_model(self) -> None:
        listed = self.service.walk("/v1/knowledge-bases", 2)
        assert [(kb["name"], kb["description"], kb["document_count"]) for kb in listed] == [
            (name, kb.description, len(kb.documents)) for name, kb in sorted(self.model.kbs.items())
        ]
        for name, kb in self.model.kbs.items():
            listed = self.service.walk(f"/v1/knowledge-bases/{name}/documents", 3)
            assert [doc["id"] for doc in listed] == sorted(kb.documents), name
            for doc in listed:
                assert same([doc["text"], doc["metadata"]], [*kb.documents[doc["id"]]]), doc
            for doc_id, (text, metadata) in kb.documents.items():
                stored = expect(self.call("GET", document_path(name, doc_id)), 200)
                assert (stored["id"], stored["text"]) == (doc_id, text), stored
                assert same(stored["metadata"], metadata), stored
            self.each_text_finds_its_document_first(name, kb)

    def each_text_finds_its_document_first(self, name: str, kb: KnowledgeBaseModel) -> None:
        ids = sorted(kb.documents)
        for start in range(0, len(ids), 64):
            batch = ids[start : start + 64]
            queries = [{"query": kb.documents[doc_id][0], "top_k": 1} for doc_id in batch]
            answer = self.call(
                "POST", f"/v1/knowledge-bases/{name}/search/batch", {"queries": queries}
            )
            for doc_id, result in zip(batch, expect(answer, 200)["results"], strict=True):
                (hit,) = result["hits"]
                assert hit["id"] == doc_id and math.isclose(hit["score"], 1, abs_tol=1e-4), hit


@pytest.mark.both_backends
def test_the_service_agrees_with_a_model_of_it_through_random_operations_and_restarts(
    backend: str, tmp_path: Any
) -> None:
    service = Service(backend, tmp_path)
    try:
        run_state_machine_as_test(lambda: KnowledgeBaseMachine(service), settings=SETTINGS)
    finally:
        service.close()
    assert not service.killed_on_stop, (
        "the worker did not exit on these stops: gunicorn killed it at its graceful timeout",
        service.killed_on_stop,
    )


# IVF past 2 chunks and SQ8 codes past 4: every rebuild, compression and start goes through
# the FAISS copy kept in KB_DATA_DIR/indexes, taken back after SIGTERM, SIGINT and SIGKILL.
TINY_THRESHOLDS = {"KB_ANN_THRESHOLD": "2", "KB_COMPRESS_THRESHOLD": "4"}


def test_kept_index_copies_agree_with_the_model_through_random_operations_and_restarts(
    tmp_path: Any,
) -> None:
    service = Service("memory", tmp_path, TINY_THRESHOLDS)
    try:
        run_state_machine_as_test(lambda: KnowledgeBaseMachine(service), settings=SETTINGS)
    finally:
        service.close()
    assert not service.killed_on_stop, service.killed_on_stop

"""`kb serve` restarted on the same data folder: what was left there, even nothing, starts again."""

import pytest

from model_folder import l6_folder
from server import Server

pytestmark = pytest.mark.server


def test_a_served_empty_knowledge_base_survives_a_sigterm_and_a_restart(tmp_path):
    data = str(tmp_path / "data")
    first = Server(tmp_path / "first.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data)
    try:
        first.wait_ready()
        for name in ("notes", "emptied"):
            assert first.call("POST", "/v1/knowledge-bases", {"name": name})[0] == 201
        added = {"id": "only", "text": "the one note, soon gone"}
        assert first.call("POST", "/v1/knowledge-bases/emptied/documents", added)[0] == 201
        assert first.call("DELETE", "/v1/knowledge-bases/emptied/documents/only")[0] == 204
    finally:
        first.stop()  # SIGTERM, as `kb serve &` then `kill` would

    again = Server(tmp_path / "second.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data)
    try:
        again.wait_ready()
        for name in ("notes", "emptied"):
            status, kb = again.call("GET", f"/v1/knowledge-bases/{name}")
            assert (status, kb["document_count"]) == (200, 0)
        note = {"id": "first", "text": "a note after the restart"}
        assert again.call("POST", "/v1/knowledge-bases/notes/documents", note)[0] == 201
        query = {"query": "a note after the restart", "top_k": 1}
        status, found = again.call("POST", "/v1/knowledge-bases/notes/search", query)
        assert (status, found["hits"][0]["id"]) == (200, "first")
    finally:
        again.stop()
    assert "Traceback" not in (tmp_path / "second.log").read_text()

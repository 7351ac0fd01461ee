"""The keyword index of a service built without one: nothing to take back at start."""

from domain.digests import content_hash
from domain.keywords import NoKeywordIndex


def test_it_asks_for_no_document_at_start_and_keeps_nothing():
    index = NoKeywordIndex()
    # [] and not None: None would have the catalog read every text only to drop it.
    assert index.resume(iter([("a", content_hash("some text"))])) == []
    index.discard()
    assert len(index) == 0

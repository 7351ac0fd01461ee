"""What the stateful test sends: names, ids, texts, metadata and filters, valid and not."""

from __future__ import annotations

import math

import hypothesis.strategies as st

from stateful_model import valid_document_id

# Mostly the knowledge base that the first step creates, sometimes another (often missing).
KB_NAMES = st.sampled_from(["kb-a", "kb-a", "kb-a", "kb-b"])
ID_CHARS = ["a", "b", "/", ".", "%", " ", "é", "字", "😀", "\n", "\t", "\x00", "\udc80", "?", "#"]
# Ids a careless client or an attacker would try: the oracle says which are valid.
VALID_IDS = [
    "a", "b", "a/b", "a.b", "..a", "%2F", "100%", "a b", "é/字", "😀", "delete", "a?b#c",
    "x" * 256, "é" * 256, "😀" * 256, "a/" * 127 + "ab",
]  # fmt: skip
INVALID_IDS = [
    "x" * 257, "a/" * 128, "/a", "//b", "a/", "a//b", ".", "..", "./a", "a/./b", "a/../b",
    " a", "a ", "\u3000a", "a\nb", "\n", "a\tb", "\x00", "a\x00", "\udc80", "a\x85",
]  # fmt: skip
# Four in five are valid ids (so that documents pile up), often the same few (so that steps
# meet the documents that earlier steps stored).
DOCUMENT_IDS = st.one_of(
    st.sampled_from(VALID_IDS),
    st.sampled_from(VALID_IDS[:4]),
    st.sampled_from(VALID_IDS[:4]),
    st.text(ID_CHARS, min_size=1, max_size=4).filter(valid_document_id),
    st.sampled_from(INVALID_IDS) | st.text(ID_CHARS, min_size=1, max_size=4),
)
WORDS = st.text(["a", "b", "é", "字", "😀", " ", "\n", "\t", ".", "/", "%"], max_size=10)
DESCRIPTIONS = st.one_of(
    *[st.text(["a", " ", "é", "\n"], max_size=4)] * 3, st.sampled_from(["\x00", "a\x00b"])
)
SCALARS = st.one_of(
    st.sampled_from(["x", "y", "é", "Z", ""]),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.booleans(),
)
KEYS = st.sampled_from(["group", "n", "tags", "é/k"])
METADATA = st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=3)
BOUNDS = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, -1.5, "x", "é", -math.inf, math.inf, math.nan])
)
LEAF_FILTERS = st.one_of(
    st.builds(lambda key, value: {key: value}, KEYS, SCALARS),
    st.builds(lambda k, op, v: {k: {op: v}}, KEYS, st.sampled_from(["$gt", "$lte"]), BOUNDS),
    st.builds(lambda k, op, v: {k: {op: v}}, KEYS, st.sampled_from(["$ne", "$eq"]), SCALARS),
    st.builds(
        lambda k, op, v: {k: {op: v}},
        KEYS,
        st.sampled_from(["$in", "$nin"]),
        st.lists(SCALARS, min_size=1, max_size=3),
    ),
    st.builds(lambda key, value: {key: {"$exists": value}}, KEYS, st.booleans()),
)
FILTERS = st.recursive(
    LEAF_FILTERS,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=3,
)
NEW_DOCUMENTS = st.lists(
    st.tuples(st.none() | st.sampled_from(VALID_IDS) | DOCUMENT_IDS, WORDS, METADATA),
    min_size=1,
    max_size=3,
    unique_by=lambda doc: doc[0],
)
# A document to read, replace, patch or delete: any id, or (a number) one that is stored.
TARGETS = st.one_of(st.integers(0, 99), DOCUMENT_IDS)

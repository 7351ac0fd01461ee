"""The embedding cache: one model call per distinct text, within its memory bound, per model."""

import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from adapters.embedding.caching import KEY_BYTES, CachingEmbedder
from adapters.embedding.vector_cache import ENTRY_OVERHEAD, VectorCache
from fakes import FakeEmbedder

DIM = 32
ENTRY = KEY_BYTES + 4 * DIM + ENTRY_OVERHEAD  # what one cached vector is charged


def cached(capacity: int = 2**20, embedder: FakeEmbedder | None = None, **kwargs):
    model = embedder or FakeEmbedder(dimension=DIM)
    return CachingEmbedder(model, VectorCache(capacity), **kwargs), model


def embedded(model: FakeEmbedder) -> list[str]:
    return [text for call in model.calls for text in call]


def test_a_text_seen_before_is_not_embedded_again_and_returns_the_same_bits():
    embedder, model = cached()
    first = embedder.embed(["apples and pears", "rivers"])
    again = embedder.embed(["rivers", "apples and pears", "tax law"])
    assert embedded(model) == ["apples and pears", "rivers", "tax law"]
    assert again[0].tobytes() == first[1].tobytes()
    assert again[1].tobytes() == first[0].tobytes()
    assert np.array_equal(
        again, FakeEmbedder(dimension=DIM).embed(["rivers", "apples and pears", "tax law"])
    )
    assert again.dtype == np.float32 and again.flags.writeable


def test_repeats_within_one_call_are_embedded_once_and_rows_keep_their_order():
    embedder, model = cached()
    texts = ["a b", "c d", "a b", "e", "c d", "a b"]
    vectors = embedder.embed(texts)
    assert model.calls == [["a b", "c d", "e"]]
    assert np.array_equal(vectors, FakeEmbedder(dimension=DIM).embed(texts))
    stats = embedder.stats()
    assert (stats.hits, stats.misses, stats.entries) == (3, 3, 3)


def test_no_texts_give_no_rows_and_no_model_call():
    embedder, model = cached()
    assert embedder.embed([]).shape == (0, DIM)
    assert model.calls == []


def test_the_bound_is_never_exceeded_and_the_least_recently_used_go_first():
    embedder, model = cached(capacity=3 * ENTRY)
    embedder.embed(["one", "two", "three"])
    embedder.embed(["one"])  # now the most recently used
    embedder.embed(["four"])  # evicts "two", the least recently used
    stats = embedder.stats()
    assert (stats.entries, stats.size_bytes, stats.evictions) == (3, 3 * ENTRY, 1)
    model.calls.clear()
    embedder.embed(["one", "three", "four"])
    assert model.calls == []
    embedder.embed(["two"])
    assert model.calls == [["two"]]
    for count in range(50):
        embedder.embed([f"text {count}", f"other {count}"])
        assert embedder.stats().size_bytes <= 3 * ENTRY


def test_an_entry_larger_than_the_whole_cache_is_not_kept():
    embedder, model = cached(capacity=ENTRY - 1)
    embedder.embed(["alone"])
    embedder.embed(["alone"])
    assert model.calls == [["alone"], ["alone"]]
    assert embedder.stats().entries == 0


def test_the_memory_really_held_stays_close_to_the_bound():
    capacity = 4 * 2**20
    embedder, _ = cached(capacity=capacity, embedder=FakeEmbedder(dimension=384))
    texts = [f"t{n}" for n in range(4000)]
    embedder.embed(texts[:10])  # the cache's own objects exist before measuring
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(texts), 500):
            embedder.embed(texts[start : start + 500])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert embedder.stats().evictions > 0
    assert embedder.stats().size_bytes <= capacity
    assert held < capacity * 1.1


class RolledEmbedder(FakeEmbedder):
    """Another model of the same dimension: the fake's vectors, their entries rotated by one."""

    def embed(self, texts):
        return np.roll(super().embed(texts), 1, axis=1)


def test_a_different_model_never_gets_another_models_vector():
    shared = VectorCache(2**20)
    small = FakeEmbedder(dimension=DIM, model_name="small")
    other = RolledEmbedder(dimension=DIM, model_name="other")
    same_weights = FakeEmbedder(dimension=DIM, model_name="copy", fingerprint=small.fingerprint)
    first = CachingEmbedder(small, shared).embed(["a shared text"])
    second = CachingEmbedder(other, shared).embed(["a shared text"])
    assert other.calls == [["a shared text"]]
    assert np.array_equal(second, other.embed(["a shared text"]))
    assert not np.array_equal(first, second)
    # The same fingerprint is the same model: its vector is reused wherever the model lies.
    assert np.array_equal(CachingEmbedder(same_weights, shared).embed(["a shared text"]), first)
    assert same_weights.calls == []


def test_any_python_string_has_a_key_of_its_own():
    embedder, _ = cached()
    texts = ["lone \ud800 surrogate", "lone \udc00 surrogate", "", "é", "e\u0301"]
    assert len({embedder.key(text) for text in texts}) == len(texts)
    assert all(len(embedder.key(text)) == KEY_BYTES for text in texts)


class SlowEmbedder(FakeEmbedder):
    """Takes its time, so that concurrent callers overlap; can be told to fail once."""

    def __init__(self, *args, fail: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail = fail

    def embed(self, texts):
        time.sleep(0.02)
        if self.fail:
            self.fail = False
            raise RuntimeError("the model fell over")
        return super().embed(texts)


def test_many_threads_at_once_get_their_own_rows_and_each_text_is_embedded_once():
    model = SlowEmbedder(dimension=DIM)
    embedder = CachingEmbedder(model, VectorCache(2**20))
    reference = FakeEmbedder(dimension=DIM)
    batches = [[f"text {(start + n) % 40}" for n in range(12)] for start in range(0, 64, 2)]
    start = threading.Barrier(len(batches))

    def embed(batch):
        start.wait()
        return embedder.embed(batch)

    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(embed, batches))
    for batch, vectors in zip(batches, results):
        assert np.array_equal(vectors, reference.embed(batch))
    assert sorted(embedded(model)) == sorted({text for batch in batches for text in batch})
    stats = embedder.stats()
    assert stats.misses == 40 and stats.hits + stats.misses == 12 * len(batches)


def test_callers_waiting_for_a_failed_embedding_embed_the_text_themselves():
    model = SlowEmbedder(dimension=DIM, fail=True)
    embedder = CachingEmbedder(model, VectorCache(2**20))
    outcomes: dict[str, object] = {}

    def first():
        try:
            embedder.embed(["shared text"])
        except RuntimeError as error:
            outcomes["first"] = error

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.005)  # the first caller has claimed the text and is in the model
    outcomes["second"] = embedder.embed(["shared text"])
    thread.join()
    assert isinstance(outcomes["first"], RuntimeError)
    assert np.array_equal(outcomes["second"], FakeEmbedder(dimension=DIM).embed(["shared text"]))
    model.calls.clear()
    embedder.embed(["shared text"])  # the failed claim was given up, the later vector kept
    assert model.calls in ([], [["shared text"]])
    assert embedder.embed(["shared text"]).shape == (1, DIM)


def test_a_failed_embedding_leaves_nothing_claimed():
    model = SlowEmbedder(dimension=DIM, fail=True)
    embedder = CachingEmbedder(model, VectorCache(2**20))
    with pytest.raises(RuntimeError):
        embedder.embed(["x", "y"])
    assert np.array_equal(embedder.embed(["x", "y"]), FakeEmbedder(dimension=DIM).embed(["x", "y"]))
    assert model.calls == [["x", "y"]]  # the failed call recorded nothing: this one ran


def test_the_observer_is_told_each_calls_hits_misses_and_evictions_and_the_size():
    told: list[dict[str, int]] = []
    embedder, _ = cached(capacity=2 * ENTRY, observer=lambda **usage: told.append(usage))
    embedder.embed(["a", "b"])
    embedder.embed(["a", "c"])
    assert told == [
        {"hits": 0, "misses": 2, "evictions": 0, "entries": 2, "size_bytes": 2 * ENTRY},
        {"hits": 1, "misses": 1, "evictions": 1, "entries": 2, "size_bytes": 2 * ENTRY},
    ]


def test_a_cache_needs_room_for_something():
    with pytest.raises(ValueError):
        VectorCache(0)

"""The coalescer: shared model batches, each caller's own rows in order, no waiting when alone."""

import threading
import time

import numpy as np
import pytest

from adapters.coalescer import Coalescer
from fakes import FakeEmbedder

FAKE = FakeEmbedder(dimension=8)


class RecordingEncoder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.running = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, texts):
        self.calls.append(list(texts))
        self.running.set()
        self.release.wait(5)
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model failed")
        return FAKE.embed(texts)


def test_a_lone_caller_runs_its_own_texts_at_once_in_one_call():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8)
    started = time.perf_counter()
    vectors = coalescer(["b text", "a"])
    assert time.perf_counter() - started < 0.05
    assert np.allclose(vectors, FAKE.embed(["b text", "a"]))
    assert sorted(encoder.calls[0]) == ["a", "b text"] and len(encoder.calls) == 1


def test_concurrent_callers_each_get_their_own_vectors_in_order():
    coalescer = Coalescer(RecordingEncoder(delay=0.002), 8, max_texts=16)
    requests = {
        n: [f"caller {n} text {i} " + "word " * (i * n % 7) for i in range(n % 5 + 1)]
        for n in range(40)
    }
    results: dict[int, np.ndarray] = {}

    def call(n):
        results[n] = coalescer(requests[n])

    threads = [threading.Thread(target=call, args=(n,)) for n in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for n, texts in requests.items():
        assert np.allclose(results[n], FAKE.embed(texts)), f"caller {n} got someone else's rows"
    assert coalescer.batches_run < len(requests)


def test_texts_arriving_during_a_batch_share_the_next_one():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=64)
    encoder.release.clear()
    first = threading.Thread(target=coalescer, args=(["first"],))
    first.start()
    assert encoder.running.wait(5)
    waiting = [threading.Thread(target=coalescer, args=([f"t{i}"],)) for i in range(10)]
    for thread in waiting:
        thread.start()
    time.sleep(0.1)  # all ten are queued behind the running batch
    encoder.release.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert len(encoder.calls) == 2
    assert sorted(encoder.calls[1]) == sorted(f"t{i}" for i in range(10))


def test_batches_are_sorted_by_length_and_kept_within_the_token_budget():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=100, token_budget=40, size=len)
    texts = ["x" * n for n in (9, 1, 5, 10, 2, 8, 3)]
    vectors = coalescer(texts)
    assert np.allclose(vectors, FAKE.embed(texts))
    flat = [len(t) for call in encoder.calls for t in call]
    assert flat == sorted(flat)
    for call in encoder.calls:
        assert len(call) * max(len(t) for t in call) <= 40 or len(call) == 1


def test_a_large_request_is_served_in_rounds_so_others_are_not_stuck_behind_it():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=8)
    vectors = coalescer([f"text {i}" for i in range(30)])
    assert vectors.shape == (30, 8)
    assert len(encoder.calls) == 4 and max(len(c) for c in encoder.calls) == 8


def test_a_model_failure_reaches_the_callers_in_that_batch_and_the_next_caller_still_works():
    encoder = RecordingEncoder(fail_on="poison")
    coalescer = Coalescer(encoder, 8)
    with pytest.raises(RuntimeError, match="model failed"):
        coalescer(["fine", "poison"])
    assert np.allclose(coalescer(["fine"]), FAKE.embed(["fine"]))


def test_no_texts_means_no_model_call():
    encoder = RecordingEncoder()
    assert Coalescer(encoder, 8)([]).shape == (0, 8)
    assert encoder.calls == []

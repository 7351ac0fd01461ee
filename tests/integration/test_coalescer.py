"""The coalescer: shared model batches, each caller's own rows in order, no waiting when alone."""

import threading
import time

import numpy as np
import pytest

from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.coalescer import Coalescer
from fakes import FakeEmbedder, FakeEncoder

FAKE = FakeEmbedder(dimension=8)


class RecordingEncoder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.threads: list[threading.Thread] = []
        self.delay = delay
        self.fail_on = fail_on
        self.running = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, texts):
        self.calls.append(list(texts))
        self.threads.append(threading.current_thread())
        self.running.set()
        self.release.wait(5)
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model failed")
        return FAKE.embed(texts)


def call_concurrently(coalescer, requests):
    """Each request's texts from a thread of its own, all at once; each caller's result."""
    results: dict[int, np.ndarray] = {}

    def call(n):
        results[n] = coalescer(requests[n])

    threads = [threading.Thread(target=call, args=(n,)) for n in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_a_lone_caller_runs_its_own_texts_at_once_in_one_call():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_wait=10.0)  # a lone caller must not wait for it
    started = time.monotonic()
    vectors = coalescer(["b text", "a"])
    assert time.monotonic() - started < 5.0
    assert np.allclose(vectors, FAKE.embed(["b text", "a"]))
    assert sorted(encoder.calls[0]) == ["a", "b text"] and len(encoder.calls) == 1


def test_every_model_call_runs_on_the_same_model_thread_whoever_calls():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8)
    callers = [threading.Thread(target=coalescer, args=([f"text {n}"],)) for n in range(5)]
    for thread in callers:
        thread.start()
        thread.join(5)
    coalescer(["from the test's own thread"])
    assert len(encoder.calls) == 6
    assert len(set(encoder.threads)) == 1
    assert encoder.threads[0] not in {threading.current_thread(), *callers}


def test_the_model_thread_ends_when_idle_and_a_new_one_serves_the_next_caller():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, idle_exit=0.05)
    coalescer(["one"])
    (first,) = coalescer._workers
    first.join(5)
    assert not first.is_alive() and coalescer._workers == []
    assert np.allclose(coalescer(["two"]), FAKE.embed(["two"]))
    assert encoder.threads[0] is first and encoder.threads[1] is not first


def test_a_failure_outside_the_model_reaches_every_waiting_caller(monkeypatch):
    coalescer = Coalescer(RecordingEncoder(), 8)

    def broken(self):
        raise RuntimeError("planning failed")

    monkeypatch.setattr(Coalescer, "_take", broken)
    with pytest.raises(RuntimeError, match="planning failed"):
        coalescer(["text"])
    monkeypatch.undo()
    assert np.allclose(coalescer(["again"]), FAKE.embed(["again"]))


def test_concurrent_callers_each_get_their_own_vectors_in_order():
    coalescer = Coalescer(RecordingEncoder(delay=0.002), 8, max_texts=16)
    requests = {
        n: [f"caller {n} text {i} " + "word " * (i * n % 7) for i in range(n % 5 + 1)]
        for n in range(40)
    }
    results = call_concurrently(coalescer, requests)
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
    wait_until(lambda: len(coalescer._pending) == 11)  # all ten are queued behind the running batch
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


def test_with_a_call_overhead_a_few_long_texts_do_not_pad_many_short_ones():
    texts = ["a" * 2, "x" * 100, "b" * 2, "c" * 2, "y" * 100, "d" * 2]
    filled, split = RecordingEncoder(), RecordingEncoder()
    Coalescer(filled, 8, max_texts=8, size=len)(texts)
    vectors = Coalescer(split, 8, max_texts=8, size=len, call_overhead=10)(texts)
    assert np.allclose(vectors, FAKE.embed(texts))
    assert [len(call) for call in filled.calls] == [6]  # 6 x 100 padded word pieces
    assert [sorted(call) for call in split.calls] == [
        ["a" * 2, "b" * 2, "c" * 2, "d" * 2],
        ["x" * 100, "y" * 100],
    ]


def test_with_a_call_overhead_texts_of_like_length_still_fill_whole_batches():
    encoder = RecordingEncoder()
    texts = [f"{i:02}" + "w" * (8 + i % 2) for i in range(40)]  # lengths 10 and 11
    vectors = Coalescer(encoder, 8, max_texts=8, size=len, call_overhead=10)(texts)
    assert np.allclose(vectors, FAKE.embed(texts))
    sizes = sorted(len(call) for call in encoder.calls)
    assert len(sizes) <= 6 and sizes[-4:] == [8] * 4  # 5 calls at the least; at most one more


def test_a_large_request_is_served_in_rounds_so_others_are_not_stuck_behind_it():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=8)
    vectors = coalescer([f"text {i}" for i in range(30)])
    assert vectors.shape == (30, 8)
    assert len(encoder.calls) == 4 and max(len(c) for c in encoder.calls) == 8


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def queued_behind_a_running_call(coalescer, encoder, jobs):
    """Start a call that blocks, queue `jobs` behind it one by one, then let everything run."""
    encoder.release.clear()
    first = threading.Thread(target=coalescer, args=(["first"],))
    first.start()
    assert encoder.running.wait(5)
    results: dict[int, np.ndarray] = {}
    threads = []
    for n, texts in enumerate(jobs):

        def call(n=n, texts=texts):
            results[n] = coalescer(texts)

        threads.append(threading.Thread(target=call))
        threads[-1].start()
        queued = n + 2  # arrival order is the list's order
        wait_until(lambda queued=queued: len(coalescer._pending) == queued)
    encoder.release.set()
    for thread in [first, *threads]:
        thread.join(5)
    for n, texts in enumerate(jobs):
        assert np.allclose(results[n], FAKE.embed(texts)), f"job {n} got someone else's rows"
    return encoder.calls[1:]


def test_all_pending_texts_are_sorted_together_before_batches_are_cut():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=4, size=len)
    odd, even = ["x" * n for n in (7, 1, 5, 3)], ["y" * n for n in (4, 8, 2, 6)]
    calls = queued_behind_a_running_call(coalescer, encoder, [odd, even])
    assert [[len(t) for t in call] for call in calls] == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_a_query_arriving_behind_a_large_add_goes_in_the_next_model_call():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=8)
    large = [f"document {i} " + "word " * (i % 9) for i in range(100)]
    calls = queued_behind_a_running_call(coalescer, encoder, [large, ["the query"]])
    assert "the query" in calls[0]
    assert len(calls) == 1 + 100 // 8  # the query rode along: no extra call for it
    assert all(len(call) <= 8 for call in calls)


def test_a_large_add_is_not_starved_by_a_stream_of_single_texts():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_texts=2, size=len)
    large = ["L" * 50 + str(i) for i in range(6)]
    singles = [[f"s{i}"] for i in range(30)]
    calls = queued_behind_a_running_call(coalescer, encoder, [large, *singles])
    finished = max(i for i, call in enumerate(calls) if any(t.startswith("L") for t in call))
    assert finished < len(calls) - 1  # the large add ended before the singles ran out


def served_together(coalescer, encoder, texts):
    """One model call for callers of `texts`: afterwards the coalescer expects them back."""
    encoder.release.clear()
    threads = [threading.Thread(target=coalescer, args=([text],)) for text in ["first", *texts]]
    threads[0].start()
    assert encoder.running.wait(5)
    for n, thread in enumerate(threads[1:], start=2):
        thread.start()
        wait_until(lambda n=n: len(coalescer._pending) == n)
    encoder.release.set()
    for thread in threads:
        thread.join(5)


def test_callers_just_served_together_are_gathered_again_into_one_call():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_wait=1.0)
    served_together(coalescer, encoder, ["a", "b", "c"])
    assert sorted(encoder.calls[-1]) == ["a", "b", "c"]
    before = len(encoder.calls)
    again = [threading.Thread(target=coalescer, args=([t],)) for t in ("a2", "b2", "c2")]
    for thread in again:
        thread.start()
    for thread in again:
        thread.join(5)
    assert len(encoder.calls) == before + 1 and sorted(encoder.calls[-1]) == ["a2", "b2", "c2"]


def test_a_caller_whose_companions_do_not_come_back_runs_alone_after_the_budget():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_wait=0.05)
    served_together(coalescer, encoder, ["a", "b", "c"])
    alone = threading.Thread(target=coalescer, args=(["a2"],))
    alone.start()
    alone.join(5)
    assert not alone.is_alive() and encoder.calls[-1] == ["a2"]


def test_with_a_call_overhead_texts_worth_a_call_do_not_wait_for_companions():
    encoder = RecordingEncoder()
    coalescer = Coalescer(encoder, 8, max_wait=10.0, size=len, call_overhead=2)
    served_together(coalescer, encoder, ["a", "b", "c"])  # now it expects four callers back
    started = time.monotonic()
    coalescer(["long enough text"])  # 16 word pieces: at least 4 x the overhead
    assert time.monotonic() - started < 5.0


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


class OverlapEncoder(RecordingEncoder):
    """Records how many calls ran at the same moment."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.lock = threading.Lock()
        self.running_now = 0
        self.most_at_once = 0

    def __call__(self, texts):
        with self.lock:
            self.running_now += 1
            self.most_at_once = max(self.most_at_once, self.running_now)
        try:
            return super().__call__(texts)
        finally:
            with self.lock:
                self.running_now -= 1


def test_with_two_model_threads_one_large_add_runs_on_both_at_once():
    encoder = OverlapEncoder(delay=0.05)
    coalescer = Coalescer(encoder, 8, max_texts=4, parallel=2)
    texts = [f"text number {n}" for n in range(16)]
    assert np.allclose(coalescer(texts), FAKE.embed(texts))
    assert len(encoder.calls) == 4 and sorted(
        text for call in encoder.calls for text in call
    ) == sorted(texts)
    assert encoder.most_at_once == 2 and len(set(encoder.threads)) == 2


def test_with_two_model_threads_a_lone_text_runs_in_one_call_without_waiting():
    encoder = OverlapEncoder(delay=0.0)
    coalescer = Coalescer(encoder, 8, max_wait=10.0, parallel=2)
    started = time.monotonic()
    assert np.allclose(coalescer(["alone"]), FAKE.embed(["alone"]))
    assert time.monotonic() - started < 5.0 and encoder.calls == [["alone"]]


def test_with_two_model_threads_concurrent_callers_each_get_their_own_vectors_in_order():
    encoder = OverlapEncoder(delay=0.01)
    coalescer = Coalescer(encoder, 8, max_texts=3, parallel=2, call_overhead=6)
    inputs = {
        n: [f"caller {n} text {k}" + "x" * (n * k % 17) for k in range(n % 5 + 1)]
        for n in range(24)
    }
    results = call_concurrently(coalescer, inputs)
    assert sorted(results) == sorted(inputs)
    for n, texts in inputs.items():
        assert np.allclose(results[n], FAKE.embed(texts))
    assert encoder.most_at_once == 2 and len(set(encoder.threads)) == 2


def test_with_two_model_threads_both_end_when_idle_and_come_back_for_the_next_caller():
    coalescer = Coalescer(RecordingEncoder(), 8, idle_exit=0.05, parallel=2)
    coalescer(["one"])
    first = list(coalescer._workers)
    assert len(first) == 2
    for worker in first:
        worker.join(5)
    assert coalescer._workers == []
    assert np.allclose(coalescer(["two"]), FAKE.embed(["two"]))
    assert len(coalescer._workers) == 2 and not set(coalescer._workers) & set(first)


class IdleRecorder:
    """An on_idle hook that notes how many calls had ended and how many were running."""

    def __init__(self, encoder: OverlapEncoder, fail: bool = False) -> None:
        self.encoder = encoder
        self.fail = fail
        self.seen: list[tuple[int, int]] = []
        self.ran = threading.Event()

    def __call__(self) -> None:
        self.seen.append((len(self.encoder.calls), self.encoder.running_now))
        self.ran.set()
        if self.fail:
            raise RuntimeError("on_idle failed")


def test_the_idle_hook_runs_once_after_a_large_add_and_never_while_a_call_runs():
    encoder = OverlapEncoder(delay=0.02)
    idle = IdleRecorder(encoder)
    coalescer = Coalescer(encoder, 8, max_texts=4, parallel=2, on_idle=idle)
    texts = [f"text number {n}" for n in range(16)]
    assert np.allclose(coalescer(texts), FAKE.embed(texts))
    assert idle.ran.wait(5)
    assert idle.seen == [(4, 0)]


def test_a_failing_idle_hook_is_logged_and_the_next_caller_is_served(caplog):
    encoder = OverlapEncoder(delay=0.0)
    idle = IdleRecorder(encoder, fail=True)
    coalescer = Coalescer(encoder, 8, on_idle=idle)
    coalescer(["first"])
    assert idle.ran.wait(5)
    assert np.allclose(coalescer(["second"]), FAKE.embed(["second"]))
    assert "on_idle" in caplog.text


def test_the_wrapper_keeps_calls_within_the_batch_size_and_lets_the_encoder_release_memory():
    encoder = FakeEncoder(dimension=8, concurrent_calls=2)
    embedder = CoalescingEmbedder(encoder, batch_size=4)
    texts = [f"text number {n}" for n in range(16)]
    assert np.allclose(embedder.embed(texts), FAKE.embed(texts))
    assert max(map(len, encoder.calls)) <= 4 and sum(map(len, encoder.calls)) == 16
    wait_until(lambda: encoder.releases == 1)
    assert embedder.encoder is encoder and embedder.window == encoder.window

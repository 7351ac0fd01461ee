"""KB_EMBEDDING_RUNTIME: auto is ONNX Runtime where it can run the model, torch otherwise."""

import logging
import os

import numpy as np
import pytest

from adapters.embedding.batching import CoalescingEmbedder
from adapters.embedding.caching import CachingEmbedder
from domain.errors import ModelUnavailableError
from entrypoints import container
from fakes import FakeEncoder


class Recorder:
    """Stands in for an encoder class: records how it was built, or refuses like the real one."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse
        self.encoder = FakeEncoder(dimension=8)

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.refuse is not None:
            raise ModelUnavailableError(self.refuse)
        return self.encoder


@pytest.fixture
def runtimes(monkeypatch):
    onnx, torch = Recorder(), Recorder()
    monkeypatch.setattr(container, "OnnxEncoder", onnx)
    monkeypatch.setattr(container, "SentenceTransformerEncoder", torch)
    return onnx, torch


def test_on_the_cpu_onnx_runtime_runs_the_model(runtimes):
    onnx, torch = runtimes
    assert container.make_encoder("auto", "some/model", "cpu") is onnx.encoder
    assert onnx.calls == [(("some/model",), {"precision": "float32"})] and torch.calls == []


def test_int8_is_asked_of_onnx_runtime_and_never_falls_back_to_torch(runtimes):
    onnx, torch = runtimes
    assert container.make_encoder("auto", "some/model", "cpu", "int8") is onnx.encoder
    assert onnx.calls == [(("some/model",), {"precision": "int8"})]
    onnx.refuse = "cannot quantise KB_EMBEDDING_MODEL='odd/model' to int8"
    with pytest.raises(ModelUnavailableError, match="to int8"):
        container.make_encoder("auto", "odd/model", "cpu", "int8")
    assert torch.calls == []


def test_a_model_onnx_cannot_run_falls_back_to_torch_saying_why(runtimes, caplog):
    onnx, torch = runtimes
    onnx.refuse = "cannot export KB_EMBEDDING_MODEL='odd/model' to ONNX: unsupported operator"
    with caplog.at_level(logging.WARNING, logger="entrypoints.container"):
        assert container.make_encoder("auto", "odd/model", "cpu") is torch.encoder
    assert torch.calls == [(("odd/model",), {"device": "cpu"})]
    assert "unsupported operator" in caplog.text and "torch" in caplog.text


def test_another_device_goes_to_torch_without_trying_onnx(runtimes):
    onnx, torch = runtimes
    assert container.make_encoder("auto", "some/model", "cuda") is torch.encoder
    assert onnx.calls == [] and torch.calls[0][1]["device"] == "cuda"


def test_an_explicit_runtime_is_used_as_asked_and_its_failure_is_not_hidden(runtimes):
    onnx, torch = runtimes
    assert container.make_encoder("torch", "some/model", "cpu") is torch.encoder
    assert onnx.calls == []
    assert container.make_encoder("onnx", "some/model", "cpu") is onnx.encoder
    onnx.refuse = "no export"
    with pytest.raises(ModelUnavailableError, match="no export"):
        container.make_embedder("onnx", "some/model", "cpu", 32, None)
    assert len(torch.calls) == 1


def test_the_chosen_encoder_is_batched_in_calls_of_the_batch_size_told_to_the_observer(runtimes):
    onnx, _ = runtimes
    seen: list[int] = []
    embedder = container.make_embedder("onnx", "some/model", "cpu", 3, lambda n, _: seen.append(n))
    assert isinstance(embedder, CoalescingEmbedder) and embedder.encoder is onnx.encoder
    texts = [f"text {n}" for n in range(7)]
    assert np.array_equal(embedder.embed(texts), FakeEncoder(dimension=8).embed(texts))
    assert seen == [len(call) for call in onnx.encoder.calls]
    assert sum(seen) == 7 and max(seen) == 3


def test_model_calls_at_once_follow_the_cpus_and_a_cgroup_quota(tmp_path):
    from adapters.embedding.onnx_encoder import usable_cpus

    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cpus(tmp_path / "absent") == affinity
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == affinity
    cpu_max.write_text("50000 100000\n")  # docker --cpus 0.5: still one call at a time
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text(f"{150000 * affinity} 100000\n")  # a quota above the affinity
    assert usable_cpus(cpu_max) == affinity


def test_a_cache_bound_puts_a_cache_of_that_size_in_front_and_0_leaves_it_out(runtimes):
    onnx, _ = runtimes
    told: list[dict[str, int]] = []
    embedder = container.make_embedder(
        "onnx", "some/model", "cpu", 8, None, cache_mb=3, cache_observer=lambda **u: told.append(u)
    )
    assert isinstance(embedder, CachingEmbedder)
    assert isinstance(embedder.inner, CoalescingEmbedder) and embedder.inner.encoder is onnx.encoder
    assert embedder.stats().capacity_bytes == 3 * 2**20
    embedder.embed(["once", "once"])
    embedder.embed(["once"])
    assert onnx.encoder.calls == [["once"]]
    assert [(u["hits"], u["misses"]) for u in told] == [(1, 1), (1, 0)]
    plain = container.make_embedder("onnx", "some/model", "cpu", 8, None, cache_mb=0)
    assert isinstance(plain, CoalescingEmbedder)

"""KB_EMBEDDING_RUNTIME: auto is ONNX Runtime where it can run the model, torch otherwise."""

import logging

import pytest

from domain.errors import ModelUnavailableError
from entrypoints import container


class Recorder:
    """Stands in for an embedder class: records how it was built, or refuses like the real one."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.refuse is not None:
            raise ModelUnavailableError(self.refuse)
        return self


@pytest.fixture
def runtimes(monkeypatch):
    onnx, torch = Recorder(), Recorder()
    monkeypatch.setattr(container, "OnnxEmbedder", onnx)
    monkeypatch.setattr(container, "SentenceTransformerEmbedder", torch)
    return onnx, torch


def test_on_the_cpu_onnx_runtime_runs_the_model(runtimes):
    onnx, torch = runtimes
    assert container.make_embedder("auto", "some/model", "cpu", 32, None) is onnx
    assert onnx.calls == [(("some/model", 32), {"observer": None})] and torch.calls == []


def test_a_model_onnx_cannot_run_falls_back_to_torch_saying_why(runtimes, caplog):
    onnx, torch = runtimes
    onnx.refuse = "cannot export KB_EMBEDDING_MODEL='odd/model' to ONNX: unsupported operator"
    with caplog.at_level(logging.WARNING, logger="entrypoints.container"):
        assert container.make_embedder("auto", "odd/model", "cpu", 16, None) is torch
    assert torch.calls == [(("odd/model",), {"device": "cpu", "batch_size": 16, "observer": None})]
    assert "unsupported operator" in caplog.text and "torch" in caplog.text


def test_another_device_goes_to_torch_without_trying_onnx(runtimes):
    onnx, torch = runtimes
    assert container.make_embedder("auto", "some/model", "cuda", 32, None) is torch
    assert onnx.calls == [] and torch.calls[0][1]["device"] == "cuda"


def test_an_explicit_runtime_is_used_as_asked_and_its_failure_is_not_hidden(runtimes):
    onnx, torch = runtimes
    assert container.make_embedder("torch", "some/model", "cpu", 32, None) is torch
    assert onnx.calls == []
    assert container.make_embedder("onnx", "some/model", "cpu", 32, None) is onnx
    onnx.refuse = "no export"
    with pytest.raises(ModelUnavailableError, match="no export"):
        container.make_embedder("onnx", "some/model", "cpu", 32, None)
    assert len(torch.calls) == 1

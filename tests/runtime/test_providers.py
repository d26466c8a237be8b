import logging

import pytest

from cnnport.runtime import Engine, ProviderError, providers
from cnnport.runtime.providers import CPU, CUDA, ProviderChoice, resolve_providers, verify_providers

HAS_CUDA = CUDA in providers.available_providers()


def test_cpu_maps_to_onnxruntime_name():
    choice = resolve_providers("cpu")
    assert choice.providers == [(CPU, {})]


def test_unknown_provider_lists_known_and_suggests():
    with pytest.raises(
        ProviderError, match=r"Did you mean 'cuda'.*Known: cpu, cuda, openvino, openvino-bf16, tensorrt.*auto"
    ):
        resolve_providers("cdua")


def test_cuda_options_are_sensible():
    choice = providers.PROVIDERS.get("cuda")(device_id=1)
    name, options = choice.providers[0]
    assert name == CUDA
    assert options["device_id"] == 1
    assert options["cudnn_conv_algo_search"] == "HEURISTIC"


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has the CUDA provider")
@pytest.mark.parametrize("name", ["cuda", "tensorrt"])
def test_explicit_gpu_provider_without_cuda_is_a_clear_error(tiny_model, name):
    with pytest.raises(ProviderError, match=f"{name!r} was requested but is not available.*onnxruntime-gpu"):
        Engine(tiny_model.path, providers=name)


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has the CUDA provider")
def test_auto_without_cuda_chooses_cpu_and_says_so(tiny_model, caplog):
    with caplog.at_level(logging.INFO, logger="cnnport.runtime.providers"):
        engine = Engine(tiny_model.path, providers="auto")
    assert engine.providers[0] == CPU
    assert "provider auto: using CPUExecutionProvider" in caplog.text


def test_silent_fallback_is_refused():
    # What onnxruntime does when the CUDA libraries are missing: the session just
    # runs on CPU. An explicit request must turn that into an error with a reason.
    choice = ProviderChoice("cuda", [(CUDA, {}), (CPU, {})], CUDA)
    with pytest.raises(ProviderError, match="session runs on CPUExecutionProvider"):
        verify_providers(choice, [CPU])


def test_auto_fallback_is_logged_not_silent(caplog):
    choice = ProviderChoice("auto", [(CUDA, {}), (CPU, {})], CUDA)
    with caplog.at_level(logging.WARNING):
        assert verify_providers(choice, [CPU]) == [CPU]
    assert "did not load" in caplog.text


def test_two_onnxruntime_packages_are_diagnosed(monkeypatch):
    monkeypatch.setattr(
        providers, "onnxruntime_distributions", lambda: ["onnxruntime 1.31", "onnxruntime-gpu 1.31"]
    )
    assert "several onnxruntime packages" in providers.diagnose_cuda()


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu with a working CUDA provider")
def test_cuda_engine_matches_cpu(tiny_model):
    import numpy as np

    batch = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    cpu = Engine(tiny_model.path, providers="cpu").run(batch)
    gpu = Engine(tiny_model.path, providers="cuda")
    assert gpu.providers[0] == CUDA
    assert gpu.io_binding
    np.testing.assert_allclose(gpu.run(batch), cpu, atol=1e-5)

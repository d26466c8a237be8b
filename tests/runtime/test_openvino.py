"""The Engine's openvino providers (runtime/ovsession.py).

openvino is in the dev extra, so CI runs these; where it is missing the tests that need
it skip, and the ones that prove its absence is a clear error run everywhere.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from cnnport.runtime import Engine, ModelLoadError, ProviderError, resolve_providers
from cnnport.runtime.modelfile import read_metadata
from cnnport.runtime.ovsession import MAX_SHAPES, openvino_name
from cnnport.runtime.providers import CPU, CUDA

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(
    not HAS_OPENVINO, reason='needs openvino (pip install "cnnport[openvino]")'
)


def _has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _batch(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)


@needs_openvino
def test_openvino_engine_matches_onnxruntime_at_fp32_tolerance(tiny_model):
    cpu = Engine(tiny_model.path, providers="cpu")
    engine = Engine(tiny_model.path, providers="openvino", threads=1)
    assert engine.providers == (openvino_name("f32"),)
    assert not engine.io_binding
    # More batch sizes than MAX_SHAPES: the first are compiled static, the rest run dynamic.
    for count in (1, 3, *range(4, 5 + MAX_SHAPES)):
        batch = _batch(count, seed=count)
        np.testing.assert_allclose(engine.run(batch), cpu.run(batch), atol=1e-5)
    np.testing.assert_allclose(engine.run(_batch(2)), tiny_model.reference(_batch(2)), atol=1e-5)


@needs_openvino
def test_openvino_engine_predicts_like_the_cpu_one(tiny_model):
    frame = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cpu = Engine(tiny_model.path, providers="cpu").predict(frame)
    answer = Engine(tiny_model.path, providers="openvino").predict(frame)
    assert answer.label == cpu.label
    assert answer.score == pytest.approx(cpu.score, abs=1e-5)


@needs_openvino
def test_openvino_bf16_is_reduced_precision_or_a_clear_error(tiny_model):
    if not _has_bf16():
        with pytest.raises(ProviderError, match=r"'openvino-bf16' was requested.*compiled .* in f32"):
            Engine(tiny_model.path, providers="openvino-bf16")
        return
    engine = Engine(tiny_model.path, providers="openvino-bf16")
    assert engine.providers == (openvino_name("bf16"),)
    batch = _batch(16)
    reference = tiny_model.reference(batch)
    scores = engine.run(batch)
    # bf16 keeps 8 mantissa bits: close, not fp32-close.
    assert np.abs(scores - reference).max() < 0.05


@needs_openvino
def test_openvino_refuses_an_ort_format_file_and_io_binding(tiny_model, tmp_path):
    fake = tmp_path / "model.ort"
    fake.write_bytes(b"\x00\x00\x00\x00ORTM" + b"\x00" * 32)
    with pytest.raises(ModelLoadError, match=r"OpenVINO reads \.onnx files"):
        Engine(fake, providers="openvino")
    with pytest.raises(ProviderError, match="io_binding is onnxruntime's"):
        Engine(tiny_model.path, providers="openvino", io_binding=True)


@needs_openvino
def test_openvino_reports_a_missing_file_as_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        Engine(tmp_path / "missing.onnx", providers="openvino")


def test_openvino_missing_is_a_provider_error_with_the_install_command(tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ModuleNotFoundError
    for name in ("openvino", "openvino-bf16"):
        with pytest.raises(
            ProviderError, match=rf"{name!r} was requested but openvino is not installed.*cnnport\[openvino\]"
        ):
            Engine(tiny_model.path, providers=name)


def test_auto_never_picks_openvino():
    assert resolve_providers("auto").required in (CPU, CUDA)
    assert resolve_providers("openvino").providers == []  # not an onnxruntime provider list


def test_metadata_is_read_without_a_runtime(tiny_model):
    assert "cnnport.card" in read_metadata(tiny_model.path)


def test_metadata_of_a_file_that_is_not_onnx_is_a_load_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff")
    with pytest.raises(ModelLoadError, match="not a valid ONNX file"):
        read_metadata(bad)

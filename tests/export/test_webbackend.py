"""The ``ort-web`` runtime: onnxruntime-web (WASM) in headless Chromium, in check's matrix."""

from __future__ import annotations

import numpy as np
import pytest

from cnnport.export import cross_check
from cnnport.export.backends import RUNNERS, Target
from cnnport.runtime import UnsupportedError, read_card
from tests.apps.web.conftest import chromium_or_skip, web_assets_or_skip
from tests.models import build_classifier


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_classifier(tmp_path_factory.mktemp("ortweb") / "tiny.onnx", height=16, width=16)


def test_ort_web_equals_onnxruntime_within_1e5(model):
    web_assets_or_skip()
    chromium_or_skip()
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    result = cross_check(model.path, read_card(model.path), images, runtimes=("ort-cpu", "ort-web"))
    assert result.runtimes == {"ort-cpu": "ok", "ort-web": "ok"}
    report = result.report("ort-cpu", "ort-web")
    assert report.max_abs_diff <= 1e-5
    assert report.top1_agreement == 1.0


def test_missing_onnxruntime_web_is_unsupported_with_one_line(model, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNPORT_ORT_WEB", str(tmp_path))
    with pytest.raises(UnsupportedError) as caught:
        RUNNERS.get("ort-web")(Target(model.path))
    assert "\n" not in str(caught.value)
    assert "npm --prefix js install" in str(caught.value)


def test_missing_chromium_is_unsupported_with_one_line(model, monkeypatch, tmp_path):
    web_assets_or_skip()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CNNPORT_CHROMIUM", raising=False)
    with pytest.raises(UnsupportedError, match=r"no Chromium found.*apt-get install chromium"):
        RUNNERS.get("ort-web")(Target(model.path))


def test_ort_webgpu_equals_onnxruntime_within_1e5(model):
    """WebGPU on the browser's adapter (SwiftShader's software Vulkan without a GPU)."""
    web_assets_or_skip()
    chromium_or_skip()
    images = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    result = cross_check(model.path, read_card(model.path), images, runtimes=("ort-cpu", "ort-webgpu"))
    if result.runtimes["ort-webgpu"] != "ok":
        pytest.skip(f"ort-webgpu: {result.runtimes['ort-webgpu']}")
    report = result.report("ort-cpu", "ort-webgpu")
    print(f"ort-webgpu vs ort-cpu: max |dp| {report.max_abs_diff:.1e}")
    assert report.max_abs_diff <= 1e-5
    assert report.top1_agreement == 1.0

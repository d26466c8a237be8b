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


def lenet_convolution(path):
    """LeNet-5's second convolution (6 -> 16 channels, 5x5, on 14x14), its output kept."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["x", "scale"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W", "B"], ["conv"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("ReduceMean", ["relu"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "D"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(np.array(255.0, np.float32), "scale"),
        numpy_helper.from_array((rng.standard_normal((16, 6, 5, 5)) * 0.2).astype(np.float32), "W"),
        numpy_helper.from_array(np.zeros(16, np.float32), "B"),
        numpy_helper.from_array((rng.standard_normal((16, 10)) * 0.5).astype(np.float32), "D"),
    ]
    graph = helper.make_graph(
        nodes,
        "lenet_conv2",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 14, 14, 6])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("conv", TensorProto.FLOAT, ["N", 16, 10, 10]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "build",
    [
        "jsep",
        pytest.param(  # what a site ships; the page keeps WASM where its answer differs
            "webgpu",
            marks=pytest.mark.xfail(
                reason="onnxruntime-web 1.30's C++ WebGPU EP: this convolution 2.5 off on SwiftShader",
                strict=False,
            ),
        ),
    ],
)
def test_webgpu_build_computes_a_lenet_convolution(build, tmp_path):
    import onnxruntime as ort

    from cnnport.export.webbackend import WebSession

    web_assets_or_skip()
    chromium_or_skip()
    path = lenet_convolution(tmp_path / "conv.onnx")
    batch = np.random.default_rng(1).integers(0, 256, (1, 14, 14, 6), dtype=np.uint8)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": batch})
    try:
        session = WebSession(path, ep="webgpu", build=build)
    except UnsupportedError as exc:
        pytest.skip(str(exc))
    got = session.run(batch, ["probabilities", "conv"])
    session.close()
    print(f"{build}: max |d| conv {np.abs(got['conv'] - expected[1]).max():.1e}")
    np.testing.assert_allclose(got["conv"], expected[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["probabilities"], expected[0], rtol=0, atol=1e-5)

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


def test_check_sends_72_camera_frames_to_the_page_in_parts(frame_rgba):
    """72 frames of 640x480 RGBA are 84 MiB, 112 MiB in base64: more than the DevTools
    pipe carries in one message (Chromium then stops reading and the check hung for good)."""
    from cnnport.export.images import frames_from_images
    from cnnport.export.webbackend import PART_BYTES

    web_assets_or_skip()
    chromium_or_skip()
    path, card = frame_rgba
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (72, *card.input.shape[1:]), dtype=np.uint8)
    frames = frames_from_images(images, card.input.color, card.frame.color, 480, 640)
    assert frames.nbytes * 4 / 3 > 100 * 2**20 > PART_BYTES
    result = cross_check(path, card, frames, runtimes=("ort-cpu", "ort-web"))
    assert result.runtimes == {"ort-cpu": "ok", "ort-web": "ok"}
    report = result.report("ort-cpu", "ort-web")
    assert report.max_abs_diff <= 1e-5
    assert report.top1_agreement == 1.0


def test_a_message_longer_than_the_pipe_carries_is_refused_and_the_browser_goes_on(monkeypatch):
    from cnnport.export import chromium

    chromium_or_skip()
    monkeypatch.setattr(chromium, "MAX_MESSAGE", 2**20)
    with chromium.Chromium(camera=False, timeout=30) as browser:
        page = browser.open()
        with pytest.raises(chromium.BrowserError, match=r"Runtime.evaluate is 2 MiB; .* up to 1 MiB"):
            page.evaluate("'" + "a" * 2 * 2**20 + "'.length")
        assert page.evaluate("'" + "a" * 1000 + "'.length") == 1000
        assert not browser._pending  # the refused command's reply slot is gone

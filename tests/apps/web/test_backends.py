"""The page's backend choice in a real browser: WebGPU on the software adapter that
headless Chromium offers without a GPU (SwiftShader), WASM otherwise.

Tolerance: WebGPU's probabilities equal Python's within WEBGPU_TOLERANCE (float32 on the
GPU: other summation orders than onnxruntime CPU's; the WASM path is held to 1e-5 in
test_page.py).
"""

from __future__ import annotations

import base64
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from cnnport.export.chromium import Chromium
from cnnport.export.webserver import SiteServer
from cnnport.runtime import Engine
from tests.apps.web.conftest import LABELS, RESIZE, SPEC, chromium_or_skip, digit_frame, web_assets_or_skip

WEBGPU_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def gpu_site(tmp_path_factory, digits_model):
    """The digits site with onnxruntime-web's WebGPU build."""
    from cnnport.apps.web import SiteConfig, write_site

    web_assets_or_skip()
    site = write_site(digits_model.path, tmp_path_factory.mktemp("gpu_site"), SiteConfig(webgpu=True))
    if not site.webgpu:
        pytest.skip("this onnxruntime-web has no WebGPU build (ort.webgpu.min.mjs)")
    return site


@pytest.fixture(scope="module")
def gpu_server(gpu_site):
    with SiteServer(gpu_site.root) as running:
        yield running


@pytest.fixture(scope="module")
def gpu_browser(gpu_server):
    """Headless Chromium that offers a WebGPU adapter (SwiftShader's, without a GPU)."""
    chromium_or_skip()
    with Chromium(camera=False, webgpu=True) as running:
        page = running.open(gpu_server.url + "site.json")  # navigator.gpu: secure contexts only
        adapter = page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then(a => !!a) : false")
        page.close()
        if not adapter:
            pytest.skip("this Chromium offers no WebGPU adapter even with --enable-unsafe-webgpu")
        yield running


def open_page(browser, url: str):
    page = browser.open(url, viewport=(1100, 760))
    page.wait_for("window.cnnport && (window.cnnport.ready || window.cnnport.failed)", timeout=180)
    failed = page.evaluate("window.cnnport.failed")
    assert failed is None, f"{failed}; console: {page.console}"
    return page


def test_webgpu_probabilities_equal_python(gpu_browser, gpu_server, gpu_site, digits_split, tmp_path):
    _, test_x, _, _ = digits_split
    page = open_page(gpu_browser, gpu_server.url + "?camera=off&backend=webgpu")
    assert page.evaluate("window.cnnport.backend") == "webgpu"
    assert page.evaluate("document.getElementById('backend').textContent").startswith("webgpu (")
    engine = Engine(gpu_site.model, providers="cpu")
    worst = 0.0
    for i, size in enumerate([(640, 480), (480, 640), (97, 61)]):
        path = tmp_path / f"digit{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(digit_frame(test_x[i], size), cv2.COLOR_GRAY2BGR))
        b64 = base64.b64encode(path.read_bytes()).decode()
        answer = page.evaluate(f"window.cnnport.classifyBase64('{b64}', 'image/png')")
        expected = engine.predict(str(path)).scores
        worst = max(worst, float(np.abs(np.array(answer["probabilities"], np.float32) - expected).max()))
        assert answer["label"] == LABELS[int(expected.argmax())]
    page.close()
    print(f"webgpu: max |dp| page vs Engine {worst:.2e} over 3 images")
    assert worst <= WEBGPU_TOLERANCE, f"max |dp| {worst:.2e}"


def test_chooser_times_both_and_keeps_the_faster(gpu_browser, gpu_server):
    page = open_page(gpu_browser, gpu_server.url + "?camera=off")
    backend, timings, note, page_agreement = page.evaluate(
        "[window.cnnport.backend, window.cnnport.timings, window.cnnport.backendNote, window.cnnport.agreement]"
    )
    shown = page.evaluate("document.getElementById('backend-note').textContent")
    page.close()
    print(f"chooser: {json.dumps(timings)} -> {backend}")
    assert set(timings) == {"wasm", "webgpu"}
    assert all(ms > 0 for ms in timings.values())
    assert page_agreement <= 1e-5
    assert backend == min(timings, key=timings.get)
    # The note prints each figure with JavaScript's toFixed(1), which rounds 2.25 up where
    # Python's format rounds it to even: read the figure back and compare as numbers.
    shown_ms = re.search(rf"{backend} (\d+\.\d) ms", note)
    assert shown_ms, note
    assert abs(float(shown_ms.group(1)) - timings[backend]) <= 0.05 + 1e-9, note
    assert note in shown


# The chooser's decision with stand-in models of known speed and answer (and one that
# fails), so every outcome is tested whatever this machine's WebGPU is like.
CHOOSE = """import('./backend.js').then(async (m) => {{
  const model = (ms, fails, p) => ({{
    classify: async () => {{
      if (fails) throw new Error("stand-in failure");
      await new Promise(r => setTimeout(r, ms));
      return {{ probabilities: Float32Array.from(p) }};
    }},
    release: async () => {{}},
  }});
  const loadModel = async (url, options) =>
    options.sessionOptions.executionProviders[0] === "webgpu"
      ? model({gpu}, {fails}, [0.5 + {off}, 0.5 - {off}]) : model({wasm}, false, [0.5, 0.5]);
  const chosen = await m.chooseBackend({{ site: window.cnnport.site, card: null, plan: {{ threads: 1 }},
    params: new URLSearchParams(), loadModel }});
  return [chosen.backend, chosen.timings, chosen.note];
}})"""


@pytest.mark.parametrize(
    ("gpu", "wasm", "fails", "off", "expected", "why"),
    [
        (2, 30, "false", 0, "webgpu", "the faster here: webgpu"),
        (30, 2, "false", 0, "wasm", "the faster here: wasm"),
        (2, 30, "false", 1e-6, "webgpu", "the faster here: webgpu"),  # within AGREEMENT
        (2, 30, "false", 1e-3, "wasm", "WebGPU's answer differs from WASM's on this model (max |dp| 1.0e-3"),
        (2, 30, "true", 0, "wasm", "WebGPU failed on this model, WASM runs: stand-in failure"),
    ],
)
def test_chooser_keeps_the_measured_faster_that_agrees_with_wasm(
    gpu_browser, gpu_server, gpu, wasm, fails, off, expected, why
):
    page = open_page(gpu_browser, gpu_server.url + "?camera=off&backend=wasm")
    backend, timings, note = page.evaluate(
        CHOOSE.format(gpu=gpu, wasm=wasm, fails=fails, off=off), timeout=60
    )
    page.close()
    assert backend == expected
    assert note.startswith(why), note
    if why.startswith("the faster"):
        assert timings["webgpu"] >= gpu
        assert timings["wasm"] >= wasm
    else:
        assert timings == {}


def test_no_adapter_runs_wasm_and_says_why(gpu_server):
    chromium_or_skip()
    with Chromium(camera=False) as browser:  # --disable-gpu: no adapter
        page = open_page(browser, gpu_server.url + "?camera=off")
        backend, timings = page.evaluate("[window.cnnport.backend, window.cnnport.timings]")
        shown = page.evaluate("document.getElementById('backend-note').textContent")
    assert (backend, timings) == ("wasm", {})
    assert "WebGPU: the browser offers no adapter" in shown


def test_webgpu_build_that_does_not_load_leaves_wasm(gpu_browser, gpu_site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(gpu_site.root, broken)
    (broken / "ort" / "ort-wasm-simd-threaded.asyncify.wasm").write_bytes(b"not wasm")
    with SiteServer(broken) as server:
        page = open_page(gpu_browser, server.url + "?camera=off")
        backend, note = page.evaluate("[window.cnnport.backend, window.cnnport.backendNote]")
        page.close()
    assert backend == "wasm"
    assert note.startswith("WebGPU did not load, WASM runs:"), note


def write_lenet(path):
    """LeNet-5's convolutions with random weights, as a cnnport model (32x32 gray): its
    second convolution is one that onnxruntime-web 1.30's C++ WebGPU EP gets wrong on
    SwiftShader (tests/export/test_webbackend.py)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cnnport.runtime import METADATA_KEY, ModelCard, OutputSpec

    rng = np.random.default_rng(0)
    weights = {
        "W1": rng.standard_normal((6, 1, 5, 5)) * 0.3,
        "W2": rng.standard_normal((16, 6, 5, 5)) * 0.2,
        "D": rng.standard_normal((16, 10)) * 2.0,
    }
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["x", "scale"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W1"], ["c1"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2"], ["c2"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("ReduceMean", ["r2"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "D"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    initializers = [numpy_helper.from_array(np.array(255.0, np.float32), "scale")] + [
        numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()
    ]
    graph = helper.make_graph(
        nodes,
        "lenet_convolutions",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 32, 32, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    card = ModelCard(labels=LABELS, input=SPEC, resize=RESIZE, output=OutputSpec(name="probabilities"))
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.save(model, str(path))
    return path


def test_webgpu_that_answers_unlike_wasm_is_not_kept(gpu_browser, tmp_path):
    """The page's own check on a real wrong answer, where this browser's WebGPU gives one."""
    from cnnport.apps.web import SiteConfig, write_site

    site = write_site(write_lenet(tmp_path / "lenet.onnx"), tmp_path / "site", SiteConfig(webgpu=True))
    with SiteServer(site.root) as server:
        page = open_page(gpu_browser, server.url + "?camera=off")
        backend, note, dp = page.evaluate(
            "[window.cnnport.backend, window.cnnport.backendNote, window.cnnport.agreement]"
        )
        page.close()
    print(f"lenet convolutions: WebGPU vs WASM max |dp| {dp:.1e}; {backend}: {note}")
    if dp <= 1e-4:
        pytest.skip(f"this browser's WebGPU computes these convolutions right (max |dp| {dp:.1e})")
    assert backend == "wasm"
    assert note.startswith("WebGPU's answer differs from WASM's on this model"), note

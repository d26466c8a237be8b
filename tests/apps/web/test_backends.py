"""The page's backend choice in a real browser: WebGPU on the software adapter that
headless Chromium offers without a GPU (SwiftShader), WASM otherwise.

Tolerance: WebGPU's probabilities equal Python's within WEBGPU_TOLERANCE (float32 on the
GPU: other summation orders than onnxruntime CPU's; the WASM path is held to 1e-5 in
test_page.py).
"""

from __future__ import annotations

import base64
import json
import shutil

import cv2
import numpy as np
import pytest

from cnnport.export.chromium import Chromium
from cnnport.export.webserver import SiteServer
from cnnport.runtime import Engine
from tests.apps.web.conftest import LABELS, chromium_or_skip, digit_frame, web_assets_or_skip

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
    backend, timings, note = page.evaluate(
        "[window.cnnport.backend, window.cnnport.timings, window.cnnport.backendNote]"
    )
    shown = page.evaluate("document.getElementById('backend-note').textContent")
    page.close()
    print(f"chooser: {json.dumps(timings)} -> {backend}")
    assert set(timings) == {"wasm", "webgpu"}
    assert all(ms > 0 for ms in timings.values())
    assert backend == min(timings, key=timings.get)
    assert f"{timings[backend]:.1f} ms" in note
    assert note in shown


# The chooser's decision with stand-in models of known speed (and one that fails), so
# both outcomes are tested whatever this machine's WebGPU is like.
CHOOSE = """import('./backend.js').then(async (m) => {{
  const model = (ms, fails) => ({{
    classify: async () => {{ if (fails) throw new Error("stand-in failure"); await new Promise(r => setTimeout(r, ms)); return {{}}; }},
    release: async () => {{}},
  }});
  const loadModel = async (url, options) =>
    options.sessionOptions.executionProviders[0] === "webgpu" ? model({gpu}, {fails}) : model({wasm}, false);
  const chosen = await m.chooseBackend({{ site: window.cnnport.site, card: null, plan: {{ threads: 1 }},
    params: new URLSearchParams(), loadModel }});
  return [chosen.backend, chosen.timings, chosen.note];
}})"""


@pytest.mark.parametrize(
    ("gpu", "wasm", "fails", "expected"),
    [(2, 30, "false", "webgpu"), (30, 2, "false", "wasm"), (2, 30, "true", "wasm")],
)
def test_chooser_keeps_the_measured_faster_and_leaves_a_failing_webgpu(
    gpu_browser, gpu_server, gpu, wasm, fails, expected
):
    page = open_page(gpu_browser, gpu_server.url + "?camera=off&backend=wasm")
    backend, timings, note = page.evaluate(CHOOSE.format(gpu=gpu, wasm=wasm, fails=fails), timeout=60)
    page.close()
    assert backend == expected
    if fails == "true":
        assert timings == {}
        assert note.startswith("WebGPU failed on this model, WASM runs: stand-in failure"), note
    else:
        assert timings["webgpu"] >= gpu
        assert timings["wasm"] >= wasm
        assert note.startswith(f"the faster here: {expected}"), note


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

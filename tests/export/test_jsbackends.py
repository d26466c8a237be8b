"""The ort-node and ort-wasm runtimes of `cnnport check` / `cnnport bench` (export/jsbackends.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnport.export import cross_check
from cnnport.export.backends import RUNNERS, Target
from cnnport.runtime import UnsupportedError, read_card

from .jsfixtures import COMMITTED, node_missing

JS_RUNTIMES = ("ort-node", "ort-wasm")


def _frames(fmt: str, size: str) -> np.ndarray:
    """The committed frames of one format and size, as one batch."""
    cases = json.loads((COMMITTED / "cases.json").read_text())["cases"]
    chosen = {c["frame"]: c for c in cases if c["format"] == fmt and f"{c['width']}x{c['height']}" == size}
    channels = len(fmt)
    return np.stack(
        [
            np.fromfile(COMMITTED / name, np.uint8).reshape(c["height"], c["width"], channels)
            for name, c in sorted(chosen.items())
        ]
    )


@pytest.fixture(scope="module")
def js_ready() -> None:
    reason = node_missing()
    if reason:
        pytest.skip(reason)


@pytest.mark.usefixtures("js_ready")
def test_check_matrix_js_against_python_on_a_frame_model() -> None:
    path = COMMITTED / "digits.frame-rgba.onnx"
    frames = _frames("RGBA", "64x48")
    result = cross_check(path, read_card(path), frames, runtimes=("ort-cpu", *JS_RUNTIMES))
    assert result.runtimes == {"ort-cpu": "ok", "ort-node": "ok", "ort-wasm": "ok"}
    for a, b in [("ort-cpu", "ort-node"), ("ort-cpu", "ort-wasm"), ("ort-node", "ort-wasm")]:
        report = result.report(a, b)
        assert report.max_abs_diff <= 1e-5, (a, b, report)
        assert report.top1_agreement == 1.0
        assert report.maps_max_rel_diff is not None
        assert report.maps_max_rel_diff <= 1e-5


@pytest.mark.usefixtures("js_ready")
def test_js_runner_on_a_tensor_model_and_a_second_batch_size() -> None:
    path = COMMITTED / "digits.onnx"
    cases = json.loads((COMMITTED / "cases.json").read_text())["tensor_cases"]
    batch = np.stack([np.fromfile(COMMITTED / c["frame"], np.uint8).reshape(16, 16, 1) for c in cases])
    runner = RUNNERS.get("ort-node")(Target(path))
    try:
        probabilities = runner.outputs(batch).probabilities
        np.testing.assert_allclose(probabilities, [c["probabilities"] for c in cases], rtol=0, atol=1e-5)
        assert runner.call(runner.prepare(batch[:1])).shape == (1, 10)
    finally:
        runner.keep.close()


@pytest.mark.parametrize("name", JS_RUNTIMES)
def test_js_runtime_without_node_is_unsupported_in_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnport.export import jsbackends

    monkeypatch.setattr(jsbackends.shutil, "which", lambda _: None)
    with pytest.raises(
        UnsupportedError, match=r"^node is not installed \(Node.js 18 or newer: apt-get install nodejs npm\)$"
    ):
        RUNNERS.get(name)(Target(COMMITTED / "digits.onnx"))
    path = COMMITTED / "digits.onnx"
    result = cross_check(
        path, read_card(path), np.zeros((1, 16, 16, 1), np.uint8), runtimes=("ort-cpu", name)
    )
    assert (
        result.runtimes[name]
        == "unsupported: node is not installed (Node.js 18 or newer: apt-get install nodejs npm)"
    )


def test_js_runtime_without_node_modules_names_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "run.mjs").write_text("")
    monkeypatch.setenv("CNNPORT_JS", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda _: "/usr/bin/node")
    with pytest.raises(UnsupportedError, match=r"onnxruntime-web is not installed \(run `npm ci` in "):
        RUNNERS.get("ort-wasm")(Target(COMMITTED / "digits.onnx"))


@pytest.mark.usefixtures("js_ready")
def test_js_frame_rows_equal_engine_frame(tmp_path) -> None:
    """ort-node-frame and ort-wasm-frame: the BGR frame model beside the model, fed the
    640x480 frames engine-frame gets, give the Engine's probabilities."""
    import shutil

    import onnx

    from cnnport.runtime import METADATA_KEY

    shutil.copy(COMMITTED / "digits.onnx", tmp_path / "digits.onnx")
    framed = onnx.load(str(COMMITTED / "digits-nocard.frame-bgr.onnx"))
    card = (COMMITTED / "digits-nocard.frame-bgr.card.json").read_text()
    onnx.helper.set_model_props(framed, {METADATA_KEY: card})
    onnx.save(framed, str(tmp_path / "digits.frame-bgr.onnx"))
    cases = json.loads((COMMITTED / "cases.json").read_text())["tensor_cases"]
    images = np.stack([np.fromfile(COMMITTED / c["frame"], np.uint8).reshape(16, 16, 1) for c in cases])
    path = tmp_path / "digits.onnx"
    result = cross_check(
        path, read_card(path), images, runtimes=("engine-frame", "ort-node-frame", "ort-wasm-frame")
    )
    assert set(result.runtimes.values()) == {"ok"}, result.runtimes
    for other in ("ort-node-frame", "ort-wasm-frame"):
        report = result.report("engine-frame", other)
        assert report.max_abs_diff <= 1e-5
        assert report.top1_agreement == 1.0

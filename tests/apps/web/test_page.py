"""The page in a real browser: headless Chromium, its fake camera playing held-out digits.

Tolerance: the page's probabilities equal Python's within 1e-5 (same frame model, same
decoded pixels, onnxruntime-web WASM against onnxruntime CPU).
"""

from __future__ import annotations

import base64
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cnnport.apps.webcam.overlay import OverlayState, _headline
from cnnport.apps.webcam.smoothing import decide
from cnnport.export.chromium import Chromium
from cnnport.export.webserver import SiteServer
from cnnport.runtime import Engine
from tests.apps.web.conftest import LABELS, chromium_or_skip, digit_frame, write_y4m

LIVE_FRAMES = 100


def open_page(browser, url: str, viewport=(1100, 760), **options):
    page = browser.open(url, viewport=viewport)
    page.wait_for("window.cnnport && (window.cnnport.ready || window.cnnport.failed)", timeout=90)
    failed = page.evaluate("window.cnnport.failed")
    assert failed is None, f"{failed}; console: {page.console}"
    return page


def python_probabilities(frame_model: Path, image: Path) -> np.ndarray:
    """Python's answer on the image file: the Engine decodes it and runs the same frame model."""
    return Engine(frame_model, providers="cpu").predict(str(image)).scores


def test_live_camera_predictions_are_at_least_90_percent_correct(browser, server, digits_video):
    page = open_page(browser, server.url)
    page.wait_for(f"window.cnnport.live.length >= {LIVE_FRAMES}", timeout=180)
    live = page.evaluate("window.cnnport.live")
    page.close()
    # Which digit each classified frame showed, from its own pixels (8x8 block means).
    shown = (digits_video.images * (255.0 / 16.0)).reshape(len(digits_video.images), -1)
    thumbs = np.array([record["thumb"] for record in live])
    distances = ((thumbs[:, None, :] - shown[None]) ** 2).sum(-1)
    which = distances.argmin(1)
    assert np.sqrt(distances.min(1)).max() < 40, "a frame matched none of the video's digits"
    truth = digits_video.labels[which]
    predicted = np.array([int(record["label"]) for record in live])
    accuracy = float((predicted == truth).mean())
    print(f"live: {accuracy:.1%} of {len(live)} frames correct ({len(set(which.tolist()))} distinct digits)")
    assert len(live) >= LIVE_FRAMES
    assert len(set(which.tolist())) >= 50, "the page saw too few distinct digits"
    assert accuracy >= 0.9, f"{accuracy:.1%} of {len(live)} live frames correct"


def test_file_probabilities_equal_python_within_1e5(browser, server, site, digits_split, tmp_path):
    _, test_x, _, _ = digits_split
    rng = np.random.default_rng(0)
    images = []
    for i, size in enumerate([(640, 480), (480, 640), (1280, 720), (97, 61)]):
        gray = digit_frame(test_x[i], size)
        color = cv2.merge([gray, np.clip(gray * 0.8 + 20, 0, 255).astype(np.uint8), gray // 2])
        noisy = np.clip(color.astype(np.int16) + rng.integers(-30, 30, color.shape), 0, 255).astype(np.uint8)
        path = tmp_path / f"digit{i}.png"
        cv2.imwrite(str(path), noisy)
        images.append(path)
    page = open_page(browser, server.url + "?camera=off")
    worst = 0.0
    for path in images:
        b64 = base64.b64encode(path.read_bytes()).decode()
        answer = page.evaluate(f"window.cnnport.classifyBase64('{b64}', 'image/png')")
        expected = python_probabilities(site.model, path)
        got = np.array(answer["probabilities"], np.float32)
        worst = max(worst, float(np.abs(got - expected).max()))
        assert answer["label"] == LABELS[int(expected.argmax())]
    page.close()
    print(f"files: max |dp| page vs Engine {worst:.2e} over {len(images)} images")
    assert worst <= 1e-5, f"max |dp| {worst:.2e}"


def test_denied_camera_says_so_and_files_still_work(server):
    chromium_or_skip()
    with Chromium(grant_camera=False) as browser:
        page = open_page(browser, server.url)
        page.wait_for("window.cnnport.camera", timeout=30)
        state = page.evaluate("window.cnnport.camera")
        message = page.evaluate("document.getElementById('message').textContent")
        files = page.evaluate("document.getElementById('file') !== null")
    assert state == "NotAllowedError"
    assert "Camera access was denied" in message
    assert files


def test_no_camera_says_so(server):
    chromium_or_skip()
    with Chromium(camera=False) as browser:
        page = open_page(browser, server.url)
        page.wait_for("window.cnnport.camera", timeout=30)
        message = page.evaluate("document.getElementById('message').textContent")
    assert "No camera was found" in message, message


def test_a_model_that_does_not_load_is_a_message(browser, site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(site.root, broken, ignore=shutil.ignore_patterns("*.wasm"))
    os.link(site.root / "ort" / "ort-wasm-simd-threaded.wasm", broken / "ort" / "ort-wasm-simd-threaded.wasm")
    (broken / "model" / site.model.name).write_bytes(b"not an onnx model")
    with SiteServer(broken) as plain:
        page = browser.open(plain.url)
        page.wait_for("window.cnnport && window.cnnport.failed", timeout=60)
        message = page.evaluate("document.getElementById('message').textContent")
    assert message.startswith("The model did not load"), message


@pytest.mark.parametrize(
    ("removed", "expected"),
    [
        ("delete window.WebAssembly", "This browser lacks WebAssembly"),
        ("delete Navigator.prototype.mediaDevices", "This browser gives the page no camera"),
    ],
)
def test_a_browser_without_what_is_needed_is_told_so(browser, server, removed, expected):
    page = browser.open()
    page.add_init_script(removed)
    page.goto(server.url)
    page.wait_for("window.cnnport && (window.cnnport.failed || window.cnnport.camera)", timeout=60)
    message = page.evaluate("document.getElementById('message').textContent")
    page.close()
    assert message.startswith(expected), message


def test_plain_static_server_runs_one_thread_and_says_so(browser, site):
    with SiteServer(site.root, isolated=False) as plain:
        page = open_page(browser, plain.url + "?camera=off")
        assert page.evaluate("[crossOriginIsolated, window.cnnport.threads]") == [False, 1]
        note = page.evaluate("document.getElementById('threads-note').textContent")
        page.close()
    assert "One thread" in note
    assert "--serve" in note


def test_isolated_server_runs_half_the_cores_or_the_threads_asked(browser, server):
    page = open_page(browser, server.url + "?camera=off")
    isolated, threads = page.evaluate("[crossOriginIsolated, window.cnnport.threads]")
    page.goto(server.url + "?camera=off&threads=3")
    page.wait_for("window.cnnport && window.cnnport.ready", timeout=90)
    asked = page.evaluate("window.cnnport.threads")
    page.close()
    assert isolated
    assert threads == max(1, min(4, math.ceil((os.cpu_count() or 1) / 2)))
    assert asked == 3


@pytest.mark.parametrize(
    ("scores", "threshold", "smoothing"),
    [
        ([0.7, 0.2, 0.1], 0.5, 0.4),
        ([0.3, 0.45, 0.25], 0.5, 0.4),
        ([0.3, 0.45, 0.25], 0.5, 1.0),
        ([0.9, 0.05, 0.05], 0.95, 1.0),
    ],
)
def test_headline_has_the_desktop_apps_rule_and_wording(browser, server, scores, threshold, smoothing):
    if not hasattr(test_headline_has_the_desktop_apps_rule_and_wording, "page"):
        test_headline_has_the_desktop_apps_rule_and_wording.page = open_page(
            browser, server.url + "?camera=off"
        )
    page = test_headline_has_the_desktop_apps_rule_and_wording.page
    labels = ("cat", "dog", "bird")
    decision = decide(np.array(scores, np.float32), labels, threshold)
    expected, _ = _headline(decision, OverlayState(threshold=threshold, smoothing=smoothing))
    got = page.evaluate(
        "import('./smoothing.js').then(m => m.headline(m.decide(Float32Array.from("
        f"{scores}), {list(labels)}, {threshold}), {threshold}, {smoothing})[0])"
    )
    assert got == expected


def test_screenshots_live_files_and_phone(server, digits_split, tmp_path):
    """The three views, as PNGs (in $CNNPORT_SCREENSHOTS when set, for docs/): the live
    frame with bars and the heatmap, images dropped on the page, a phone-sized viewport."""
    chromium_or_skip()
    _, test_x, _, test_y = digits_split
    held = [digit_frame(x, (640, 480)) for x in test_x[:6] for _ in range(50)]  # 2 s per digit
    video = write_y4m(tmp_path / "held.y4m", held)
    folder = Path(os.environ.get("CNNPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with Chromium(fake_video=video) as browser:
        page = open_page(browser, server.url, viewport=(1100, 720))
        page.evaluate("document.getElementById('heatmap').click()")
        page.wait_for("window.cnnport.live.filter(r => r.heatmap).length >= 20", timeout=60)
        page.wait_for("!document.getElementById('headline').classList.contains('uncertain')", timeout=30)
        live = page.screenshot(folder / "web-live.png")
        assert "smoothed" in page.evaluate("window.cnnport.headline")

        files = []
        for i in (6, 7, 8):
            path = tmp_path / f"digit-{test_y[i]}.png"
            cv2.imwrite(str(path), cv2.cvtColor(digit_frame(test_x[i], (320, 240)), cv2.COLOR_GRAY2BGR))
            files.append(path)
        page.set_files("#file", files[:1])  # chosen
        page.wait_for("window.cnnport.filesDone === 1", timeout=30)
        drop = ", ".join(
            f"new File([Uint8Array.from(atob('{base64.b64encode(p.read_bytes()).decode()}'), c => "
            f"c.charCodeAt(0))], '{p.name}', {{type: 'image/png'}})"
            for p in files[1:]
        )
        page.evaluate(
            f"(() => {{ const dt = new DataTransfer(); [{drop}].forEach(f => dt.items.add(f)); "
            "document.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); })()"
        )
        page.wait_for("window.cnnport.filesDone === 3", timeout=30)
        shown = page.evaluate("[...document.querySelectorAll('#results .headline')].map(e => e.textContent)")
        page.evaluate("document.getElementById('files').scrollIntoView()")
        dropped = page.screenshot(folder / "web-files.png")

        page.set_viewport(390, 844, mobile=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for("window.cnnport.live.length > 0")
        phone = page.screenshot(folder / "web-phone.png")
        width = page.evaluate("document.documentElement.scrollWidth")
    assert sorted(label.split()[0] for label in shown) == sorted(str(test_y[i]) for i in (6, 7, 8))
    assert width <= 390, "the phone layout scrolls sideways"
    for png in (live, dropped, phone):
        assert png.stat().st_size > 10_000

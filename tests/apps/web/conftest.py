"""Fixtures of the web page tests: a digits classifier with class maps (no TensorFlow),
its site, a fake-camera video of held-out digits, and one headless Chromium per session.

Browser tests skip with the reason where Chromium or onnxruntime-web's files are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnport.runtime import (
    METADATA_KEY,
    InputSpec,
    ModelCard,
    OutputSpec,
    ResizeSpec,
    UnsupportedError,
    preprocess,
)

SIZE = 32
SPEC = InputSpec(height=SIZE, width=SIZE, channels=1, color="GRAY")
RESIZE = ResizeSpec(mode="stretch", interpolation="area")
LABELS = tuple(str(i) for i in range(10))
FRAME = (320, 240)  # width, height of the fake camera's frames
LIVE_DIGITS = 120  # distinct held-out digits in the fake camera's video


@dataclass(frozen=True)
class DigitsModel:
    path: Path
    accuracy: float  # held-out accuracy of the classifier itself, on Python's preprocessing


@dataclass(frozen=True)
class DigitsVideo:
    path: Path
    images: np.ndarray  # (n, 8, 8) the digit each frame shows, 0..16
    labels: np.ndarray


def digit_frame(image8x8: np.ndarray, size: tuple[int, int] = FRAME) -> np.ndarray:
    """A gray frame of one 8x8 digits image, bright ink on black, pixels as blocks."""
    gray = (image8x8 * (255.0 / 16.0)).round().astype(np.uint8)
    return cv2.resize(gray, size, interpolation=cv2.INTER_NEAREST)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """A 4:2:0 .y4m of gray frames, the format Chromium's fake camera plays.

    Gray levels go to the video range (16..235) that Chromium's BT.601 conversion back to
    RGB expects, so the page sees about the gray levels written.
    """
    height, width = frames[0].shape
    chroma = np.full((height // 2) * (width // 2), 128, np.uint8).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            luma = (16 + frame.astype(np.float32) * (219.0 / 255.0)).round().astype(np.uint8)
            out.write(b"FRAME\n" + luma.tobytes() + chroma + chroma)
    return path


def build_cam_classifier(path: Path, weights: np.ndarray, bias: np.ndarray) -> None:
    """A linear classifier on 32x32 gray pixels whose graph also gives class maps: the
    per-pixel evidence ``x * W[:, :, c]`` (summed, it is the logit), so heatmaps are real."""
    maps = weights.reshape(SIZE, SIZE, len(LABELS)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["pixels", "scale"], ["scaled"]),
        helper.make_node("Mul", ["scaled", "W"], ["class_maps"]),
        helper.make_node("ReduceSum", ["class_maps", "axes"], ["summed"], keepdims=0),
        helper.make_node("Add", ["summed", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(np.array(255.0, np.float32), "scale"),
        numpy_helper.from_array(maps, "W"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(bias.astype(np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cam",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", SIZE, SIZE, 1])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(LABELS)]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(LABELS)]),
            helper.make_tensor_value_info("class_maps", TensorProto.FLOAT, ["N", SIZE, SIZE, len(LABELS)]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    card = ModelCard(
        labels=LABELS,
        input=SPEC,
        resize=RESIZE,
        output=OutputSpec(name="probabilities", logits_name="logits", class_maps="class_maps"),
    )
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory, digits_split) -> DigitsModel:
    """A logistic regression trained on Python's preprocessing of digit frames."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    train_x, test_x, train_y, test_y = digits_split
    small = (64, 48)  # the 640x480 frames' 4:3 cells at a tenth of the cost
    features = preprocess([digit_frame(x, small) for x in train_x], SPEC, RESIZE).reshape(len(train_x), -1)
    held_out = preprocess([digit_frame(x, small) for x in test_x], SPEC, RESIZE).reshape(len(test_x), -1)
    with threadpool_limits(1):
        classifier = LogisticRegression(max_iter=500, C=1.0).fit(features / 255.0, train_y)
    path = tmp_path_factory.mktemp("web_model") / "digits.onnx"
    build_cam_classifier(path, classifier.coef_.T, classifier.intercept_)
    return DigitsModel(path, float(classifier.score(held_out / 255.0, test_y)))


@pytest.fixture(scope="session")
def digits_video(tmp_path_factory: pytest.TempPathFactory, digits_split) -> DigitsVideo:
    _, test_x, _, test_y = digits_split
    images, labels = test_x[:LIVE_DIGITS], test_y[:LIVE_DIGITS]
    path = tmp_path_factory.mktemp("web_video") / "digits.y4m"
    write_y4m(path, [digit_frame(x) for x in images])
    return DigitsVideo(path, images, labels)


def web_assets_or_skip() -> None:
    from cnnport.export.webassets import WebAssetsError, find_js_module, find_ort_web

    try:
        find_ort_web()
        find_js_module()
    except WebAssetsError as exc:
        pytest.skip(str(exc))


def chromium_or_skip() -> str:
    from cnnport.export.chromium import find_chromium

    try:
        return find_chromium()
    except UnsupportedError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, digits_model: DigitsModel):
    """The site of the digits model (made once; tests must not write into it)."""
    from cnnport.apps.web import SiteConfig, write_site

    web_assets_or_skip()
    return write_site(digits_model.path, tmp_path_factory.mktemp("site"), SiteConfig(webgpu=False))


@pytest.fixture(scope="session")
def server(site):
    from cnnport.export.webserver import SiteServer

    with SiteServer(site.root) as running:
        yield running


@pytest.fixture(scope="session")
def browser(digits_video: DigitsVideo):
    """One headless Chromium for the session, its fake camera playing the digits video."""
    from cnnport.export.chromium import Chromium

    chromium_or_skip()
    with Chromium(fake_video=digits_video.path) as running:
        yield running

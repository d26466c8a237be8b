"""Frame models: the decoded camera frame goes into the graph.

The skew rule outside Python: training's loader, the Engine's preprocessing and the
graph make the same tensor from the same real frame (one gray level apart at most), and
the frame model answers as the tensor model does.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from cnnport.export.frame import preprocessing_model
from cnnport.runtime import (
    Engine,
    InputError,
    InputSpec,
    ModelCard,
    ResizeSpec,
    card_path,
    preprocess,
    read_card,
)
from cnnport.runtime.preprocess import to_frame_color

SIZES = ((480, 640), (720, 1280), (640, 480), (240, 320))  # (height, width): landscape, HD, portrait, small
# (card input, resize rule, largest share of values allowed to differ by one level).
CARDS = [
    (InputSpec(height=32, width=32, channels=1, color="GRAY"), ResizeSpec("stretch", "area"), 0.08),
    (InputSpec(height=96, width=96), ResizeSpec("center_crop", "area"), 0.02),
    (InputSpec(height=64, width=80), ResizeSpec("stretch", "linear"), 0.10),
    (InputSpec(height=48, width=48), ResizeSpec("center_crop", "nearest"), 0.001),
    (InputSpec(height=299, width=299), ResizeSpec("stretch", "area"), 0.10),  # enlarges 240 rows
    (InputSpec(height=224, width=224), ResizeSpec("center_crop", "linear"), 0.08),  # the zoo's card
]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real photographs as cameras would hand them over, at the four sizes (BGR)."""
    import matplotlib

    sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    screenshot = Path(__file__).resolve().parents[2] / "docs" / "webcam_overlay.png"
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in (sample, screenshot)]
    return [cv2.resize(i, (w, h), interpolation=cv2.INTER_AREA) for i in images for h, w in SIZES]


def _graph(card: ModelCard, color: str) -> ort.InferenceSession:
    return ort.InferenceSession(
        preprocessing_model(card, color).SerializeToString(), providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize(("spec", "resize", "share"), CARDS, ids=lambda v: getattr(v, "mode", None))
@pytest.mark.parametrize("color", ["BGR", "RGB", "RGBA", "BGRA", "GRAY"])
def test_training_engine_and_graph_make_the_same_tensor(tmp_path, photos, spec, resize, share, color):
    from cnnport.train.datasets import _decode_all  # what training's folder loader calls per file

    card = ModelCard(labels=("a", "b"), input=spec, resize=resize)
    graph = _graph(card, color)
    paths = []
    for i, photo in enumerate(photos):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), photo)
    trained = _decode_all(paths, spec, resize)
    differ = total = 0
    for photo, from_training in zip(photos, trained, strict=True):
        engine = preprocess(photo, spec, resize)[0]
        np.testing.assert_array_equal(engine, from_training)
        frame = to_frame_color(photo, color)
        if color == "GRAY":  # a gray camera: Python's preprocessing of the gray frame
            engine = preprocess(frame, spec, resize)[0]
        else:  # moving channels loses nothing: the same tensor from the frame as given
            np.testing.assert_array_equal(
                preprocess(frame, spec, resize, color=color[:3] if color[:3] == "RGB" else "BGR")[0], engine
            )
        ours = graph.run(None, {"frame": frame[None]})[0][0]
        gap = np.abs(ours.astype(np.int32) - engine.astype(np.int32))
        assert gap.max() <= 1, f"{photo.shape}: {gap.max()} levels apart"
        differ, total = differ + int((gap > 0).sum()), total + gap.size
    print(
        f"{spec.height}x{spec.width} {resize.mode} {resize.interpolation} {color}: {differ} of {total} differ"
    )
    assert differ / total <= share


@pytest.mark.parametrize("interpolation", ["area", "linear"])
@pytest.mark.parametrize("transparent", ["gradient", "one patch"])
def test_transparent_frames_are_composited_over_white_as_in_python(photos, interpolation, transparent):
    # An opaque frame skips the compositing in the graph; one small patch that is not is
    # enough to need it (12x12 pixels at the right edge, under taps of both filters).
    gray = interpolation == "linear"  # and a gray model: the alpha's weight in the gray mix
    spec = InputSpec(height=40, width=40, channels=1 if gray else 3, color="GRAY" if gray else "RGB")
    card = ModelCard(labels=("a", "b"), input=spec, resize=ResizeSpec("stretch", interpolation))
    photo = photos[0]
    if transparent == "gradient":
        alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    else:
        alpha = np.full(photo.shape[:2], 255, np.uint8)
        alpha[196:208, -12:] = 0
    bgra = np.concatenate([photo, alpha[..., None]], axis=2)
    python = preprocess(bgra, card.input, card.resize)
    opaque = preprocess(photo, card.input, card.resize)
    assert transparent == "gradient" or np.abs(python.astype(int) - opaque.astype(int)).max() > 5
    for color, frame in (("BGRA", bgra), ("RGBA", cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA))):
        ours = _graph(card, color).run(None, {"frame": frame[None]})[0]
        assert np.abs(ours.astype(int) - python.astype(int)).max() <= 1, color


@pytest.mark.parametrize(
    ("size", "out", "mode"),
    [((100, 130), 230, "stretch"), ((100, 130), 230, "center_crop"), ((37, 53), 96, "stretch")],
)
def test_area_enlarging_picks_opencvs_pixels_at_every_size(size, out, mode):
    # OpenCV computes an enlarged axis' source index in double precision; in float32 the
    # index of some outputs (100 px to 230) moved one pixel, 250 levels off.
    card = ModelCard(
        labels=("a", "b"), input=InputSpec(height=out, width=out), resize=ResizeSpec(mode, "area")
    )
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    ours = _graph(card, "BGR").run(None, {"frame": frame[None]})[0][0].astype(int)
    assert np.abs(ours - preprocess(frame, card.input, card.resize)[0].astype(int)).max() <= 1


@pytest.mark.parametrize("opset", [13, 17])
def test_the_preprocessing_graph_loads_at_every_opset_the_export_offers(opset):
    # Shape's start and end arrived in opset 15; the graph must not use them.
    for interpolation, size in (("linear", 224), ("linear", 64), ("area", 96), ("nearest", 48)):
        for color in ("BGR", "RGBA", "GRAY"):
            card = ModelCard(
                labels=("a", "b"),
                input=InputSpec(height=size, width=size),
                resize=ResizeSpec("stretch", interpolation),
            )
            model = preprocessing_model(card, color, opset=opset).SerializeToString()
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            channels = {"GRAY": 1, "RGBA": 4}.get(color, 3)
            frame = np.full((1, 48, 64, channels), 255, np.uint8)
            assert session.run(None, {"frame": frame})[0].shape == (1, size, size, 3)


def test_a_cast_to_uint8_truncates_as_the_rounding_needs():
    """The graph rounds half up as floor(x + 0.5) by a Cast to uint8, which must truncate
    in onnxruntime. (The JS tests run the same graphs on onnxruntime-node and -web against
    Python's answers, opaque frames included.)"""
    from onnx import TensorProto, helper

    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8)
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    levels = np.arange(256, dtype=np.float32)
    x = np.concatenate(
        [
            np.random.default_rng(0).random(100_000, dtype=np.float32) * 256,
            levels,
            levels + 0.5,
            np.nextafter(levels[1:], np.float32(0)),  # just below each whole level
            np.float32([np.nextafter(np.float32(256), np.float32(0))]),
        ]
    )
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.floor(x).astype(np.uint8))


@pytest.mark.parametrize(
    ("spec", "resize"),
    [
        (InputSpec(height=180, width=180), ResizeSpec("stretch", "linear")),  # the Keras tutorial's
        (InputSpec(height=224, width=224), ResizeSpec("center_crop", "linear")),  # the zoo's
    ],
    ids=["180-stretch", "224-crop"],
)
def test_onnxruntime_and_openvino_round_the_graph_the_same(photos, spec, resize):
    """A value on a rounding boundary (x.5 exactly: flat regions under half weights) comes
    out of the float sums a few ulps either side, by each runtime's summation order; the
    graph's half lifts them all over it. With 0.5 alone onnxruntime and OpenVINO differed
    by one level on 0.80% (180 stretch) and 0.23% (224 crop) of these photos' values (and
    moved a Keras-tutorial model's probabilities 2.2e-5 apart in `cnnport check`); with it,
    0.12% and 0.04%: what is left is OpenVINO's own float error, up to 0.015 levels."""
    ov = pytest.importorskip("openvino")
    card = ModelCard(labels=("a", "b"), input=spec, resize=resize)
    core = ov.Core()
    model = core.read_model(preprocessing_model(card, "BGR").SerializeToString(), b"")
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    differ = total = 0
    for frame in photos:
        batch = frame[None]
        ours = _graph(card, "BGR").run(None, {"frame": batch})[0]
        theirs = compiled(batch)[0]
        assert np.abs(ours.astype(int) - theirs).max() <= 1
        differ, total = differ + np.count_nonzero(ours != theirs), total + ours.size
    print(f"onnxruntime vs OpenVINO: {differ} of {total} values differ")
    assert differ <= total * 2e-3


def test_cubic_cards_get_no_frame_model():
    from cnnport.export import ExportError

    card = ModelCard(
        labels=("a", "b"), input=InputSpec(height=8, width=8), resize=ResizeSpec(interpolation="cubic")
    )
    with pytest.raises(ExportError, match="cubic and lanczos are not built"):
        preprocessing_model(card, "BGR")


def test_frame_colors_move_only_channels():
    bgr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rgba = to_frame_color(bgr, "RGBA")
    np.testing.assert_array_equal(rgba[..., :3], bgr[..., ::-1])
    assert (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(to_frame_color(rgba, "BGR", "RGB"), bgr)
    gray = to_frame_color(bgr[..., :1], "RGB")
    assert gray.shape == (2, 3, 3)
    assert (gray == bgr[..., :1]).all()
    half = np.concatenate([bgr, np.full((2, 3, 1), 0, np.uint8)], axis=2)  # transparent: white
    assert (to_frame_color(half, "RGB") == 255).all()


@pytest.fixture(scope="module")
def framed(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnport.export import ExportConfig, export_model, load_source

    output = tmp_path_factory.mktemp("frame") / "tiny.onnx"
    export_model(load_source(run_dir), output, ExportConfig(frames=("RGBA", "BGR")))
    return output


def test_export_writes_frame_models_with_their_cards(framed: Path):
    for name in ("tiny", "tiny.frame-rgba", "tiny.frame-bgr"):
        model = framed.with_name(f"{name}.onnx")
        embedded = read_card(model)
        assert ModelCard.from_json(card_path(model).read_text()) == embedded
        assert card_path(model).name == f"{name}.card.json"
    rgba = read_card(framed.with_name("tiny.frame-rgba.onnx"))
    assert rgba.frame.color == "RGBA"
    assert rgba.frame.name == "frame"
    assert rgba.input == read_card(framed).input
    parity = json.loads(framed.with_name("tiny.frame-rgba.parity.json").read_text())
    assert parity["passed"]
    assert parity["reports"]["frames 640x480"]["top1_agreement"] == 1.0


def test_the_engine_feeds_a_frame_model_the_frame(framed: Path, digits):
    _, _, x_test, y_test = digits
    tensor, frame = Engine(framed), Engine(framed.with_name("tiny.frame-rgba.onnx"))
    assert frame.frame.color == "RGBA"
    assert tensor.frame is None
    # Digits as a camera would see them: enlarged into frames of several sizes, in BGR.
    frames = [
        cv2.cvtColor(cv2.resize(x, size, interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
        for x, size in zip(x_test[:60], [(640, 480), (320, 240), (480, 640)] * 20, strict=True)
    ]
    ours, theirs = frame.predict(frames), tensor.predict(frames)
    assert [p.index for p in ours] == [p.index for p in theirs]
    assert max(np.abs(a.scores - b.scores).max() for a, b in zip(ours, theirs, strict=True)) < 1e-2
    assert np.mean([p.index for p in ours] == y_test[:60]) > 0.8
    # One frame, an RGB array and a gray one: the same answer as the tensor model.
    single = frames[0]
    assert frame.predict(single).label == tensor.predict(single).label
    assert frame.predict(single[..., ::-1].copy(), color="RGB").label == tensor.predict(single).label
    with pytest.raises(InputError, match=r"\(N, H, W, 4\) uint8 frames in RGBA order"):
        frame.run(np.zeros((1, 32, 32, 3), np.uint8))


def test_frames_of_one_size_seen_twice_run_on_a_session_with_that_size_fixed(framed: Path, digits):
    _, _, x_test, _ = digits
    engine = Engine(framed.with_name("tiny.frame-rgba.onnx"))
    big, small = ((1, 480, 640), (640, 480)), ((1, 240, 320), (320, 240))
    frames = {s[0]: cv2.cvtColor(cv2.resize(x_test[0], s[1]), cv2.COLOR_GRAY2BGR) for s in (big, small)}
    general = {size: engine.predict(frame).scores for size, frame in frames.items()}
    engine = Engine(framed.with_name("tiny.frame-rgba.onnx"))
    seen = []
    for size, _ in (big, big, big, small, big, small, small):
        scores = engine.predict(frames[size]).scores
        np.testing.assert_allclose(scores, general[size], atol=1e-6)
        seen.append(engine.sized_for)
    # The second frame of a size in a row opens its session; one in between does not.
    b, s = big[0], small[0]
    assert seen == [None, b, b, b, b, b, s]


def test_predict_command_reads_files_into_a_frame_model(framed: Path, digits, tmp_path, capsys):
    from cnnport.apps.cli import main

    _, _, x_test, y_test = digits
    for i in range(6):
        cv2.imwrite(
            str(tmp_path / f"{i}.png"),
            cv2.resize(x_test[i], (200 + 40 * i, 150), interpolation=cv2.INTER_CUBIC),
        )
    assert main(["predict", str(framed.with_name("tiny.frame-bgr.onnx")), str(tmp_path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 6
    assert np.mean([int(line["label"]) == y for line, y in zip(lines, y_test[:6], strict=True)]) >= 0.5


def _frame_file(tensor_path: Path, color: str, resize: ResizeSpec | None = None) -> Path:
    """The frame model of ``tensor_path`` written beside it (optionally for another resize rule)."""
    import onnx

    from cnnport.export.frame import frame_card, frame_model
    from cnnport.runtime import METADATA_KEY

    card = read_card(tensor_path)
    if resize is not None:
        card = replace(card, resize=resize)
    framed = frame_model(onnx.load(tensor_path), card, color)
    del framed.metadata_props[:]
    onnx.helper.set_model_props(framed, {METADATA_KEY: frame_card(card, color).to_json()})
    path = tensor_path.with_name(f"{tensor_path.stem}.frame-{color.lower()}.onnx")
    onnx.save(framed, path)
    return path


def test_rgb_frames_gray_images_and_empty_batches_on_a_color_frame_model(tmp_path, photos):
    from tests.models import build_classifier

    card = ModelCard(
        labels=("a", "b", "c", "d"),
        input=InputSpec(height=24, width=24),
        resize=ResizeSpec("center_crop", "area"),
    )
    tensor_path = tmp_path / "rgb.onnx"
    build_classifier(tensor_path, height=24, width=24, channels=3, labels=card.labels, card=card, seed=3)
    tensor, frame = Engine(tensor_path), Engine(_frame_file(tensor_path, "RGBA"))
    for photo in photos[:4]:
        want = tensor.predict(photo).scores
        # The same photo handed over in RGB order, and as a 2-D gray image.
        np.testing.assert_allclose(
            frame.predict(photo[..., ::-1].copy(), color="RGB").scores, want, atol=2e-2
        )
        gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
        np.testing.assert_allclose(frame.predict(gray).scores, tensor.predict(gray).scores, atol=2e-2)
    # Not vacuous: the photo in the wrong channel order answers differently.
    assert (
        np.abs(frame.predict(photos[0], color="RGB").scores - tensor.predict(photos[0]).scores).max() > 2e-2
    )
    with pytest.raises(InputError, match="empty batch"):
        frame.predict([])


def test_the_frame_gate_fails_a_frame_model_that_answers_differently(framed: Path, digits):
    from cnnport.export.framegate import gate_frame_model
    from cnnport.export.parity import ort_runner

    _, _, x_test, y_test = digits
    card = read_card(framed)
    runner = ort_runner(framed.read_bytes())
    good = gate_frame_model(
        runner, _frame_file(framed, "BGR").read_bytes(), card, "BGR", x_test[:24], y_test[:24], tolerance=1e-2
    )
    assert good.passed, good.reports["all"].failures
    # A frame model that crops where the card stretches: its pixels are not Python's.
    cropped = _frame_file(framed, "BGR", ResizeSpec("center_crop", card.resize.interpolation)).read_bytes()
    bad = gate_frame_model(runner, cropped, card, "BGR", x_test[:24], y_test[:24], tolerance=1e-2)
    assert not bad.passed
    assert any("probabilities differ" in f or "top-1" in f for f in bad.reports["all"].failures), bad.reports[
        "all"
    ].failures


def test_a_frame_model_engine_answers_threads_with_frames_of_different_sizes(framed: Path, digits):
    # An app serving several clients calls one Engine from several threads, each with its
    # own camera's frame size. The fixed-size session is swapped as sizes alternate; a
    # call must never run on a session fixed to another thread's size.
    import sys
    import threading

    _, _, x_test, _ = digits
    engine = Engine(framed.with_name("tiny.frame-bgr.onnx"))
    sizes = [(64, 48), (32, 24)]
    frames = [cv2.cvtColor(cv2.resize(x_test[i], s), cv2.COLOR_GRAY2BGR) for i, s in enumerate(sizes)]
    expected = [engine.predict(frame).scores for frame in frames]
    failures: list[BaseException] = []

    def serve(i: int) -> None:
        try:
            for _ in range(400):
                np.testing.assert_allclose(engine.predict(frames[i]).scores, expected[i], atol=1e-6)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as Python allows
    try:
        threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(frames))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[0]

"""Class activation maps in the exported graph, and the Engine's heatmaps from them."""

from __future__ import annotations

import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.runtime import Engine, InputError, InputSpec, read_card

from .conftest import calibrate_batchnorm

pytest.importorskip("tensorflow")
onnx = pytest.importorskip("onnx")


def _cnnport_model(name: str, tmp_path, size: int = 32, classes: int = 4):
    import keras

    from cnnport.train import ARCHITECTURES, TrainConfig, build_model

    keras.utils.set_random_seed(0)
    arch = ARCHITECTURES.get(name)
    spec = InputSpec(height=size, width=size, channels=1 if arch.color == "GRAY" else 3, color=arch.color)
    model = build_model(name, spec, classes, TrainConfig(model=name, width=0.5 if name == "convnet" else 1.0))
    images = np.random.default_rng(0).integers(0, 256, (16, *spec.shape), dtype=np.uint8)
    calibrate_batchnorm(model, images)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return model, path, spec


@pytest.fixture(scope="module")
def convnet_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cam")
    model, path, spec = _cnnport_model("convnet", folder)
    output = folder / "convnet.onnx"
    assert main(["export", str(path), "-o", str(output)]) == 0
    return model, output, spec


def test_gap_dense_models_get_a_class_maps_output(convnet_export):
    _, output, _ = convnet_export
    graph = onnx.load(output).graph
    assert [o.name for o in graph.output] == ["probabilities", "logits", "class_maps"]
    card = read_card(output)
    assert (card.output.class_maps, card.output.class_maps_note) == ("class_maps", None)
    parity = card.parity["onnxruntime-cpu"]
    assert parity.class_maps_max_rel_diff is not None
    assert parity.class_maps_max_rel_diff < 1e-4


def test_class_maps_average_to_the_logits(convnet_export):
    """Zhou et al.: the logit is the spatial mean of the class map plus the bias."""
    import onnxruntime as ort

    model, output, spec = convnet_export
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).integers(0, 256, (3, *spec.shape), dtype=np.uint8)
    _, logits, maps = session.run(None, {"image": x})
    assert maps.shape[0] == 3
    assert maps.shape[-1] == 4
    assert maps.shape[1] > 1
    bias = model.get_layer("logits").bias.numpy()
    np.testing.assert_allclose(maps.mean(axis=(1, 2)) + bias, logits, atol=1e-4)
    assert np.ptp(maps) > 1e-2, "maps that do not vary would prove nothing"


def test_engine_heatmap_is_at_the_frame_size_in_unit_range(convnet_export):
    _, output, _ = convnet_export
    engine = Engine(output, providers="cpu")
    assert engine.has_class_maps
    frames = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(2)]
    predictions = engine.predict(frames, heatmap=True)
    for prediction in predictions:
        heat = prediction.heatmap
        assert heat.shape == (120, 160)
        assert heat.dtype == np.float32
        assert heat.min() >= 0.0
        assert heat.max() <= 1.0
        assert heat.max() > 0.9, "the peak of the top class's map is normalized to 1"
    plain = engine.predict(frames[0])
    assert plain.heatmap is None
    assert plain.index == predictions[0].index


def test_nested_backbone_with_pooling_inside_gets_class_maps(tmp_path):
    _, path, _ = _cnnport_model("mobilenet_v2", tmp_path)
    output = tmp_path / "m.onnx"
    assert main(["export", str(path), "-o", str(output)]) == 0
    assert read_card(output).output.class_maps == "class_maps"
    assert onnx.load(output).graph.output[2].name == "class_maps"


def test_flatten_heads_have_no_maps_and_say_why(tmp_path):
    _, path, _ = _cnnport_model("lenet5", tmp_path)
    output = tmp_path / "lenet.onnx"
    assert main(["export", str(path), "-o", str(output)]) == 0
    card = read_card(output)
    assert card.output.class_maps is None
    assert "not global average pooling" in card.output.class_maps_note
    assert [o.name for o in onnx.load(output).graph.output] == ["probabilities", "logits"]
    engine = Engine(output, providers="cpu")
    with pytest.raises(InputError, match="global average pooling followed by a Dense layer"):
        engine.predict(np.zeros((32, 32), np.uint8), heatmap=True)


def test_no_cam_leaves_the_output_out(convnet_export, tmp_path):
    _, source, _ = convnet_export
    output = tmp_path / "plain.onnx"
    assert main(["export", str(source.with_suffix(".keras")), "-o", str(output), "--no-cam"]) == 0
    card = read_card(output)
    assert (card.output.class_maps, card.output.class_maps_note) == (None, "left out with --no-cam")
    assert len(onnx.load(output).graph.output) == 2


def _frames_folder(folder, count=3, size=(48, 64)):
    import cv2

    folder.mkdir(exist_ok=True)
    for i in range(count):
        image = np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame{i}.png"), image)
    return folder


def test_predict_heatmap_writes_one_overlay_per_image(convnet_export, tmp_path, capsys):
    import cv2

    _, output, _ = convnet_export
    images = _frames_folder(tmp_path / "in")
    out = tmp_path / "heat"
    assert main(["predict", str(output), str(images), "--heatmap", str(out), "--provider", "cpu"]) == 0
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == ["0000_frame0.png", "0001_frame1.png", "0002_frame2.png"]
    original = cv2.imread(str(images / "frame0.png"))
    overlay = cv2.imread(str(written[0]))
    assert overlay.shape == original.shape
    assert np.abs(overlay.astype(int) - original).max() > 20, "the heatmap must be visible"
    assert len(capsys.readouterr().out.splitlines()) == 4  # header + one line per image


def test_predict_heatmap_into_a_place_it_cannot_write_is_one_error_line(convnet_export, tmp_path, capsys):
    # --heatmap naming a file, or a folder under a read-only one, crashed with a traceback.
    _, output, _ = convnet_export
    images = _frames_folder(tmp_path / "in")
    blocker = tmp_path / "labels.txt"
    blocker.write_text("a\n")
    assert main(["predict", str(output), str(images), "--heatmap", str(blocker), "--provider", "cpu"]) == 1
    assert "error: cannot write --heatmap" in capsys.readouterr().err
    assert blocker.read_text() == "a\n"


def test_webcam_heatmap_is_in_the_saved_video_and_refused_without_maps(convnet_export, tmp_path, capsys):
    import cv2

    _, output, _ = convnet_export
    images = _frames_folder(tmp_path / "in", size=(240, 320))
    plain, heat = tmp_path / "plain.avi", tmp_path / "heat.avi"
    common = ["webcam", str(output), "--source", str(images), "--headless", "--provider", "cpu"]
    assert main([*common, "--save", str(plain)]) == 0
    assert main([*common, "--save", str(heat), "--heatmap"]) == 0

    def first(path):
        capture = cv2.VideoCapture(str(path))
        ok, frame = capture.read()
        capture.release()
        assert ok
        return frame.astype(int)

    # Below the header panel, where only the heatmap differs between the two videos.
    region = (slice(100, 200), slice(10, 310))
    assert np.abs(first(heat)[region] - first(plain)[region]).mean() > 5
    without = tmp_path / "nomaps.onnx"
    assert main(["export", str(output.with_suffix(".keras")), "-o", str(without), "--no-cam"]) == 0
    capsys.readouterr()
    assert main(["webcam", str(without), "--source", str(images), "--headless", "--heatmap"]) == 1
    assert "--heatmap needs a model with a class_maps output" in capsys.readouterr().err


def test_heatmap_predictions_check_their_options_like_the_others(convnet_export):
    _, output, _ = convnet_export
    engine = Engine(output, providers="cpu")
    frame = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(InputError, match="top_k must be a positive integer"):
        engine.predict(frame, heatmap=True, top_k=0)
    with pytest.raises(InputError, match="threshold must be a number between 0 and 1"):
        engine.predict(frame, heatmap=True, threshold=2.0)

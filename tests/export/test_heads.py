"""Head detection and resolution, input refusals, and the multi-label parity rule."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.export import SourceModelError
from cnnport.export.heads import Finding, InputScaling, resolve_head
from cnnport.export.parity import Outputs, compare

pytest.importorskip("tensorflow")


def _finding(activation: str, units: int) -> Finding:
    return Finding(activation, units, f"Dense 'out' ({activation})", lambda x: x)


@pytest.mark.parametrize(
    ("activation", "units", "choice", "kind", "model_output"),
    [
        ("softmax", 5, "auto", "softmax", "probabilities"),
        ("linear", 5, "auto", "softmax", "logits"),
        ("linear", 5, "logits", "softmax", "logits"),
        ("linear", 5, "multilabel", "multilabel", "logits"),
        ("linear", 5, "softmax", "softmax", "probabilities"),
        ("sigmoid", 1, "auto", "binary", "probabilities"),
        ("linear", 1, "auto", "binary", "logits"),
        ("sigmoid", 4, "auto", "multilabel", "probabilities"),
        ("sigmoid", 4, "multilabel", "multilabel", "probabilities"),
        ("softmax", 5, "softmax", "softmax", "probabilities"),
    ],
)
def test_resolve_head(activation, units, choice, kind, model_output):
    head = resolve_head(_finding(activation, units), choice)
    assert (head.kind, head.model_output) == (kind, model_output)
    assert head.classes == (2 if kind == "binary" else units)


def test_auto_says_when_it_chose_softmax_for_a_linear_output():
    assert "--head multilabel" in resolve_head(_finding("linear", 5)).note
    assert resolve_head(_finding("softmax", 5)).note is None


@pytest.mark.parametrize(
    ("activation", "units", "choice"),
    [
        ("softmax", 5, "multilabel"),
        ("softmax", 5, "logits"),
        ("softmax", 5, "binary"),
        ("sigmoid", 4, "binary"),
        ("sigmoid", 1, "multilabel"),
        ("linear", 3, "binary"),
    ],
)
def test_a_head_that_contradicts_the_graph_is_refused(activation, units, choice):
    with pytest.raises(SourceModelError, match=f"--head {choice} does not fit.*--head auto"):
        resolve_head(_finding(activation, units), choice)


def test_input_scaling_maps_the_range_then_mean_and_std():
    pixels = np.array([[0.0, 127.5, 255.0]], np.float32)
    np.testing.assert_allclose(InputScaling(range=(-1.0, 1.0)).apply(pixels), [[-1, 0, 1]], atol=1e-6)
    scaled = InputScaling(range=(0.0, 1.0), mean=(0.5,), std=(0.25,)).apply(pixels)
    np.testing.assert_allclose(scaled, [[-2, 0, 2]], atol=1e-6)
    assert InputScaling().identity


def test_multilabel_parity_compares_every_class():
    reference = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6]], np.float32)
    same_top1 = reference.copy()
    same_top1[0, 1] = 0.3  # class 1 drops below 0.5: the top-1 is unchanged, the label set is not
    report = compare(Outputs(reference), Outputs(same_top1), tolerance=1e-4, threshold=0.5)
    assert not report.passed
    assert report.top1_mismatches == 1
    assert "label sets" in report.failures[-1]
    softmax_rule = compare(Outputs(reference), Outputs(same_top1), tolerance=1.0)
    assert softmax_rule.top1_mismatches == 0


def test_multilabel_parity_allows_a_tie_at_the_threshold():
    reference = np.array([[0.50002, 0.9]], np.float32)
    candidate = np.array([[0.49999, 0.9]], np.float32)
    report = compare(Outputs(reference), Outputs(candidate), tolerance=1e-4, threshold=0.5)
    assert report.passed
    assert (report.top1_mismatches, report.near_ties) == (1, 1)


def _save(model, tmp_path, name="m.keras"):
    path = tmp_path / name
    model.save(path)
    return str(path)


def _small_cnn(inputs, keras, units=3, activation="softmax"):
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(units, activation=activation)(x)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((3, 32, 32), "channels-first"),
        ((32, 32, 2), "1 or 3 channels"),
        ((32, 32, 4), "1 or 3 channels"),
    ],
)
def test_inputs_that_are_not_nhwc_images_are_refused(shape, expected, tmp_path, capsys):
    import keras

    inputs = keras.Input(shape)
    path = _save(keras.Model(inputs, _small_cnn(inputs, keras)), tmp_path)
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert "accepted: one NHWC image input" in err
    assert not (tmp_path / "m.onnx").exists()


def test_non_image_and_multi_input_models_are_refused(tmp_path, capsys):
    import keras

    vector = keras.Input((16,))
    path = _save(
        keras.Model(vector, keras.layers.Dense(3, activation="softmax")(vector)), tmp_path, "v.keras"
    )
    assert main(["export", path]) == 1
    assert "not an image" in capsys.readouterr().err
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    merged = keras.layers.Concatenate()([a, b])
    path = _save(keras.Model([a, b], _small_cnn(merged, keras)), tmp_path, "two.keras")
    assert main(["export", path]) == 1
    assert "has 2 inputs; accepted: a model with one image input" in capsys.readouterr().err


def test_any_size_input_asks_for_input_size(tmp_path, capsys):
    import keras

    inputs = keras.Input((None, None, 3))
    path = _save(keras.Model(inputs, _small_cnn(inputs, keras)), tmp_path)
    assert main(["export", path]) == 1
    assert "pass --input-size HxW" in capsys.readouterr().err
    assert main(["export", path, "--input-size", "16x"]) == 1
    assert "--input-size must look like 224x224" in capsys.readouterr().err


def test_head_flag_contradicting_the_model_is_a_user_error(tmp_path, capsys):
    import keras

    inputs = keras.Input((16, 16, 3))
    path = _save(keras.Model(inputs, _small_cnn(inputs, keras)), tmp_path)
    assert main(["export", path, "--head", "multilabel"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --head multilabel does not fit")
    assert "Traceback" not in err


def test_wrong_label_count_for_a_binary_model_names_both(tmp_path, capsys):
    import keras

    inputs = keras.Input((16, 16, 3))
    path = _save(keras.Model(inputs, _small_cnn(inputs, keras, 1, "sigmoid")), tmp_path)
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    assert main(["export", path, "--labels", str(tmp_path / "labels.txt")]) == 1
    assert "a binary classifier: 2 labels" in capsys.readouterr().err


def test_a_model_without_scaling_gets_one_warning_naming_the_flag(tmp_path, caplog):
    import keras

    inputs = keras.Input((16, 16, 3))
    path = _save(keras.Model(inputs, _small_cnn(inputs, keras)), tmp_path)
    with caplog.at_level(logging.WARNING):
        assert main(["export", path, "-o", str(tmp_path / "raw.onnx")]) == 0
    warnings = [r.message for r in caplog.records if "raw 0-255 pixels" in r.message]
    assert len(warnings) == 1
    assert "--input-range" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["export", path, "-o", str(tmp_path / "scaled.onnx"), "--input-range", "0,1"]) == 0
    assert not [r for r in caplog.records if "raw 0-255 pixels" in r.message]


def test_int8_on_a_bare_keras_asks_for_calibration_before_converting(tmp_path, capsys):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    path = _save(keras.Model(inputs, _small_cnn(x, keras)), tmp_path)
    output = tmp_path / "m.onnx"
    assert main(["export", path, "-o", str(output), "--int8"]) == 1
    assert "--calibration" in capsys.readouterr().err
    assert not output.exists(), "nothing is written when the variant cannot be made"
    folder = tmp_path / "calibration"
    folder.mkdir()
    import cv2

    for i in range(8):
        cv2.imwrite(
            str(folder / f"{i}.png"), np.random.default_rng(i).integers(0, 256, (20, 24, 3), np.uint8)
        )
    assert main(["export", path, "-o", str(output), "--int8", "--calibration", str(folder)]) == 0
    assert output.with_name("m.int8.onnx").is_file()
    import onnx

    names = [o.name for o in onnx.load(output.with_name("m.int8.onnx")).graph.output]
    assert names[:2] == ["probabilities", "logits"]

"""--custom-objects, SavedModel folders, the in-memory API and the output path: what is
accepted, and the one-line error for what is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnport.apps.cli import main

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cnnport.export import (  # noqa: E402
    ExportError,
    SourceModelError,
    export_keras,
    import_custom_objects,
    load_source,
)


def _small_custom_model():
    from tests.export import keras_io_layers as io

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation=io.scaled_swish)(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(io.StochasticDepth(0.1)(x))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def custom_keras(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("custom") / "custom.keras"
    _small_custom_model().save(path)
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    return err


LAYERS_FILE = str(Path(__file__).with_name("keras_io_layers.py"))  # the user's layers file


@pytest.fixture
def doubler(tmp_path) -> tuple[Path, Path]:
    """A .keras using an unregistered layer of the user's file (registered classes resolve in
    any process that imported them, as tests.export.keras_io_layers is here)."""
    code = tmp_path / "plain.py"
    code.write_text(
        "import keras\nclass Doubler(keras.layers.Layer):\n    def call(self, x):\n        return 2 * x\n"
    )
    namespace = import_custom_objects([str(code)])
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(namespace["Doubler"]()(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "d.keras")
    return tmp_path / "d.keras", code


def test_a_missing_class_names_the_class_and_the_flag(doubler, tmp_path, capsys):
    path, code = doubler
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx")]) == 1
    err = _error(capsys)
    assert "it uses the class 'Doubler', which is not part of Keras" in err
    assert "--custom-objects FILE.py|package.module" in err
    assert not (tmp_path / "m.onnx").exists()
    assert main(["export", str(path), "--custom-objects", str(code), "-o", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file()


def test_custom_objects_from_a_file_and_from_a_module_both_load(custom_keras, tmp_path, monkeypatch):
    assert load_source(custom_keras, custom_objects=[LAYERS_FILE]).card.num_classes == 3
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(Path(LAYERS_FILE).read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_source(custom_keras, custom_objects=["userpkg.layers"]).card.num_classes == 3


def test_a_lambda_layer_is_still_refused_with_custom_objects(tmp_path, capsys):
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Lambda(lambda t: t * 2)(keras.layers.Flatten()(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "l.keras")
    argv = [
        "export",
        str(tmp_path / "l.keras"),
        "--custom-objects",
        LAYERS_FILE,
        "-o",
        str(tmp_path / "l.onnx"),
    ]
    assert main(argv) == 1
    assert "safe loading (safe_mode=True) rejected it" in _error(capsys)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing_file.py", r"custom objects file 'missing_file.py' does not exist"),
        ("no_such_package.layers", r"'no_such_package.layers' is not importable"),
        ("not a module!", r"takes FILE.py or package.module; received 'not a module!'"),
        ("raises.py", r"importing custom objects .*raises.py' failed \(.*raises.py:2\): ZeroDivisionError"),
    ],
)
def test_bad_custom_objects_are_one_line_errors(spec, message, tmp_path, monkeypatch):
    (tmp_path / "raises.py").write_text("x = 1\ny = x / 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceModelError, match=message):
        import_custom_objects([spec])


def test_a_layer_without_kwargs_cannot_be_reloaded_but_exports_from_memory(tmp_path):
    from tests.export import keras_io_layers as io

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Dense(4)(io.PatchesNoKwargs(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    model.save(tmp_path / "nokw.keras")
    with pytest.raises(SourceModelError, match=r"must\s+take \*\*kwargs.*export_keras"):
        load_source(tmp_path / "nokw.keras", custom_objects=[LAYERS_FILE])
    result = export_keras(model, tmp_path / "nokw.onnx", ["a", "b"])
    # The gate's fp32 tolerance: random weights put TensorFlow's and onnxruntime's AVX2
    # kernels 1.5e-5 apart on a Zen 2 EPYC (under 1e-5 on the AVX-512 CPUs).
    assert result.reports["fp32"]["all"].max_abs_diff < 1e-4


def test_export_keras_checks_its_arguments(tmp_path):
    model = _small_custom_model()
    with pytest.raises(SourceModelError, match="the labels have 2 names but the model has 3 output units"):
        export_keras(model, tmp_path / "m.onnx", ["a", "b"])
    with pytest.raises(SourceModelError, match=r"images are float64 \(2, 8, 8, 3\); accepted: uint8"):
        export_keras(model, tmp_path / "m.onnx", images=np.zeros((2, 8, 8, 3)))
    with pytest.raises(SourceModelError, match=r"must be a keras\.Model; received str"):
        export_keras("model.keras", tmp_path / "m.onnx")
    # Labels out of range passed with an accuracy of 0.0; float labels were truncated.
    x = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ExportError, match=r"y must hold class indices 0\.\.2 \(or -1.*received \[5, 7\]"):
        export_keras(model, tmp_path / "m.onnx", images=(x, np.array([5, 7, 5, 7])))
    with pytest.raises(ExportError, match=r"holds fractions .*accepted: integer class indices"):
        export_keras(model, tmp_path / "m.onnx", images=(x, np.array([0.5, 1.5, 2.5, 0.5])))
    with pytest.raises(ExportError, match=r"looks one-hot; .*pass y\.argmax\(axis=1\)"):
        export_keras(model, tmp_path / "m.onnx", images=(x, np.eye(3)[[0, 1, 2, 0]]))
    with pytest.raises(ExportError, match=r"holds <U3 values .*accepted: integer class indices"):
        export_keras(model, tmp_path / "m.onnx", images=(x, np.array(["cat", "dog", "cat", "dog"])))
    assert not list(tmp_path.iterdir())


def test_a_subclassed_model_never_called_needs_an_input_shape(tmp_path):
    from tests.export import keras_io_layers as io

    keras.utils.set_random_seed(0)
    with pytest.raises(SourceModelError, match=r"never built .*input_shape=\(H, W, C\)"):
        export_keras(io.SmallConvNet(3), tmp_path / "s.onnx")
    result = export_keras(io.SmallConvNet(3), tmp_path / "s.onnx", input_shape=(16, 16, 3))
    assert result.cards["fp32"].input.shape == (16, 16, 3)
    assert result.reports["fp32"]["all"].max_abs_diff < 1e-5


def test_a_model_that_does_not_take_images_is_refused_in_one_line(tmp_path):
    inputs = keras.Input((64, 48))  # pre-extracted patches, as the Swin example takes
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(inputs)))
    with pytest.raises(SourceModelError, match=r"takes input of shape \(None, 64, 48\), not an image"):
        export_keras(model, tmp_path / "p.onnx")


def test_a_saved_model_with_a_file_op_is_refused_before_it_runs(tmp_path):
    import tensorflow as tf

    marker = tmp_path / "written.txt"

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4, 4, 3), tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(marker), "ran")
            return tf.nn.softmax(tf.reshape(x, (-1, 48))[:, :3])

    tf.saved_model.save(Module(), str(tmp_path / "hostile"))
    marker.unlink(missing_ok=True)
    with pytest.raises(SourceModelError, match=r"uses TensorFlow op\(s\) WriteFile.*nothing of it was run"):
        load_source(tmp_path / "hostile")
    assert not marker.exists()


def test_export_help_names_saved_models(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "SavedModel" in out
    assert "--custom-objects" in out


def test_an_impossible_output_path_is_refused_before_any_work(custom_keras, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    # The source does not exist either: the output is checked first, before any loading.
    argv = ["export", str(tmp_path / "missing.keras"), "-o", str(blocker / "sub" / "m.onnx")]
    assert main(argv) == 1
    err = _error(capsys)
    assert "is a file, not a folder" in err
    assert str(blocker) in err
    assert main(["export", str(custom_keras), "-o", str(tmp_path)]) == 1
    assert "the output must be a .onnx file" in _error(capsys)
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_keras(_small_custom_model(), blocker / "m.onnx")


def test_check_runs_the_keras_model_with_its_custom_objects(custom_keras, tmp_path, capsys):
    output = tmp_path / "c.onnx"
    assert main(["export", str(custom_keras), "--custom-objects", LAYERS_FILE, "-o", str(output)]) == 0
    capsys.readouterr()
    report = tmp_path / "check.json"
    argv = ["check", str(output), "--keras", str(custom_keras), "--custom-objects", LAYERS_FILE]
    assert main([*argv, "--runtimes", "keras,ort-cpu", "--samples", "8", "--json", str(report)]) == 0
    body = json.loads(report.read_text())
    assert body["runtimes"] == {"keras": "ok", "ort-cpu": "ok"}
    assert body["pairs"]["keras|ort-cpu"]["max_abs_diff"] < 1e-5


def test_explain_loads_custom_objects_and_refuses_an_opaque_model_in_one_line(custom_keras, tmp_path, capsys):
    import cv2

    from tests.export import keras_io_layers as io

    image = tmp_path / "i.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    out = tmp_path / "explained"
    argv = ["explain", str(custom_keras), str(image), "--custom-objects", LAYERS_FILE, "--out", str(out)]
    assert main(argv) == 0
    assert (out / "explain.html").is_file()
    model = io.SmallConvNet(3)
    model(np.zeros((1, 8, 8, 3), np.float32))
    model.save(tmp_path / "sub.keras")
    argv = [
        "explain",
        str(tmp_path / "sub.keras"),
        str(image),
        "--custom-objects",
        LAYERS_FILE,
        "--out",
        str(out),
    ]
    assert main(argv) == 1
    assert "Grad-CAM needs a convolutional feature map" in _error(capsys)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([[0.2, 0.8], [0.5, 0.5]], "softmax"),
        ([[0.2, 0.3], [0.9, 0.5]], "sigmoid"),  # in 0..1, rows not summing to 1: multi-label
        ([[0.7], [0.1]], "sigmoid"),
        ([[1.0], [1.0]], "sigmoid"),
        ([[-0.2, 0.3], [2.0, 0.1]], "linear"),
        ([[3.0], [-1.0]], "linear"),
    ],
)
def test_an_opaque_head_is_read_from_its_values(values, kind):
    from cnnport.export.heads import _probe_kind

    assert _probe_kind(np.asarray(values)) == kind


class BinaryNet(keras.Model):
    """A subclassed binary classifier (one sigmoid unit), as the cats-vs-dogs guide ends."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return self.out(self.flatten(x / 255.0))


def test_a_subclassed_binary_model_exports_from_memory_as_binary(tmp_path):
    import onnxruntime as ort

    keras.utils.set_random_seed(0)
    model = BinaryNet()
    result = export_keras(model, tmp_path / "b.onnx", ["cat", "dog"], input_shape=(6, 6, 3))
    assert result.cards["fp32"].output.head == "binary"
    x = np.random.default_rng(0).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    p = ort.InferenceSession(str(tmp_path / "b.onnx")).run(["probabilities"], {"image": x})[0]
    expected = np.asarray(model(x.astype(np.float32)))[:, 0]
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(p[:, 1], expected, atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_check_runs_a_saved_model_as_the_keras_runtime(tmp_path, capsys):
    from tests.export import keras_io_layers as io

    keras.utils.set_random_seed(0)
    model = io.SmallConvNet(3)
    model(np.zeros((1, 8, 8, 3), np.float32))
    model.export(str(tmp_path / "saved"), verbose=False)
    output = tmp_path / "s.onnx"
    assert main(["export", str(tmp_path / "saved"), "-o", str(output)]) == 0
    report = tmp_path / "check.json"
    argv = ["check", str(output), "--keras", str(tmp_path / "saved"), "--runtimes", "keras,ort-cpu"]
    assert main([*argv, "--samples", "8", "--json", str(report)]) == 0
    body = json.loads(report.read_text())
    assert body["runtimes"] == {"keras": "ok", "ort-cpu": "ok"}
    assert body["pairs"]["keras|ort-cpu"]["max_abs_diff"] < 1e-5

"""The export stage on a tiny trained digits classifier: gate, card, variants, failures."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from cnnport.export import (
    ExportConfig,
    ParityError,
    UnsupportedOpError,
    export_model,
    load_source,
    report_path,
)
from cnnport.runtime import METADATA_KEY, Engine, read_card
from cnnport.runtime.files import atomic_path

from .conftest import LABELS, calibrate_batchnorm, write_run

onnx = pytest.importorskip("onnx")
TOL = 1e-5  # the tiny model's measured max |dp| is about 1e-7; 1e-5 leaves headroom, no more


def test_fp32_export_passes_a_tight_gate(exported):
    result, output = exported
    report = result.reports["fp32"]["all"]
    assert output.is_file()
    assert report.passed
    assert report.max_abs_diff < TOL
    assert report.logits_max_abs_diff < 1e-4
    assert report.top1_agreement == 1.0
    assert report.accuracy_reference == report.accuracy_candidate
    assert report.accuracy_reference > 0.8, "the fixture must be a real classifier"
    assert report.samples == 397 + 1 + 7


def test_card_is_embedded_and_readable_by_the_runtime(exported):
    _, output = exported
    card = read_card(output)
    assert card.labels == LABELS
    assert (card.input.name, card.input.dtype, card.input.shape) == ("image", "uint8", (32, 32, 1))
    assert (card.output.name, card.output.logits_name) == ("probabilities", "logits")
    assert card.provenance.opset == 17
    assert None not in (card.provenance.tf2onnx, card.provenance.tensorflow, card.provenance.onnx)
    assert card.provenance.architecture == "tiny"
    assert card.variant.kind == "fp32"
    assert card.parity["onnxruntime-cpu"].max_abs_diff < TOL
    model = onnx.load(output)
    assert [p.key for p in model.metadata_props] == [METADATA_KEY]


def test_graph_has_dynamic_batch_uint8_input_and_no_random_ops(exported, digits):
    _, output = exported
    model = onnx.load(output)
    graph_input = model.graph.input[0]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert not graph_input.type.tensor_type.shape.dim[0].HasField("dim_value")
    assert {o.name for o in model.graph.output} == {"probabilities", "logits"}
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Dropout"}
    engine = Engine(output, providers="cpu")
    x_test = digits[2]
    for batch in (1, 7):
        probabilities = engine.run(x_test[:batch])
        assert probabilities.shape == (batch, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_report_json_next_to_the_onnx(exported):
    _, output = exported
    body = json.loads(report_path(output).read_text())
    assert body["passed"] is True
    assert body["reports"]["all"]["max_abs_diff"] < TOL
    assert set(body["reports"]) >= {"held-out", "random[batch=1]", "random[batch=7]", "all"}


@pytest.mark.parametrize(("kind", "budget"), [("fp16", 0.2), ("int8", 1.0)])
def test_variants_within_budget(exported, kind, budget):
    result, output = exported
    path = output.with_name(f"tiny.{kind}.onnx")
    card = read_card(path)
    assert card.variant.kind == kind
    drop = -100 * card.variant.accuracy_change
    assert drop <= budget
    assert result.reports[kind]["all"].passed
    model = onnx.load(path)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outputs["probabilities"] == onnx.TensorProto.FLOAT
    if kind == "int8":
        assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)


def test_perturbed_weight_fails_the_gate_and_writes_nothing(run_dir, tmp_path, monkeypatch):
    import keras

    from cnnport.export import pipeline

    source = load_source(run_dir)
    perturbed = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    kernel = perturbed.get_layer("logits").kernel
    weights = kernel.numpy()
    # One class column only: adding the same amount to every column would leave the
    # softmax unchanged.
    weights[:, 3] += 0.05
    kernel.assign(weights)
    # The ONNX comes from the perturbed model, Keras' side of the gate is the original.
    original = pipeline.convert
    monkeypatch.setattr(
        pipeline, "convert", lambda model, *args, **kwargs: original(perturbed, *args, **kwargs)
    )
    output = tmp_path / "wrong.onnx"
    with pytest.raises(ParityError, match="parity gate failed") as info:
        export_model(source, output, ExportConfig())
    assert "max|dp|" in str(info.value)  # the readable table is in the message
    assert not output.exists()
    assert not report_path(output).exists()
    with pytest.raises(ParityError):
        export_model(source, output, ExportConfig(keep_failed=True))
    assert output.exists()
    assert json.loads(report_path(output).read_text())["passed"] is False


def test_interrupted_write_leaves_nothing_and_keeps_an_earlier_file(tmp_path):
    target = tmp_path / "model.onnx"

    def interrupted(error: BaseException) -> None:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise error

    with pytest.raises(KeyboardInterrupt):
        interrupted(KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"earlier")
    with pytest.raises(RuntimeError):
        interrupted(RuntimeError("disk full"))
    assert target.read_bytes() == b"earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_unconverted_op_is_an_error_naming_it(exported):
    from onnx import helper

    from cnnport.export.graphcheck import check_graph

    _, output = exported
    model = onnx.load(output)
    model.graph.node.append(helper.make_node("Erfc", ["logits"], ["leftover"], name="tf_gelu/Erfc"))
    with pytest.raises(UnsupportedOpError, match="Erfc"):
        check_graph(model, 17)


def test_foreign_keras_file_with_softmax_inside_dense(tmp_path, digits, caplog):
    import keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    path = tmp_path / "foreign.keras"
    keras.Model(inputs, outputs).save(path)
    result = export_model(load_source(path), tmp_path / "foreign.onnx")
    assert "numbered labels" in caplog.text
    card = read_card(tmp_path / "foreign.onnx")
    assert card.labels == ("class_0", "class_1", "class_2")
    assert result.reports["fp32"]["all"].max_abs_diff < TOL
    assert result.reports["fp32"]["all"].logits_max_abs_diff < 1e-4
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    export_model(load_source(path, labels), tmp_path / "named.onnx")
    assert read_card(tmp_path / "named.onnx").labels == ("cat", "dog", "bird")


def test_float32_input_on_request(run_dir, tmp_path):
    output = tmp_path / "f32.onnx"
    export_model(load_source(run_dir), output, ExportConfig(input_dtype="float32", parity_limit=50))
    assert read_card(output).input.dtype == "float32"
    assert onnx.load(output).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_opencv_dnn_parity_on_the_default_model(exported, digits, run_dir):
    from cnnport.export import cross_check

    _, output = exported
    card = read_card(output)
    result = cross_check(
        output, card, digits[2][:64], digits[3][:64], ("keras", "ort-cpu", "opencv"), run_dir / "model.keras"
    )
    assert result.runtimes["ort-cpu"] == "ok"
    assert result.runtimes["opencv"] == "ok", result.runtimes["opencv"]
    assert result.report("keras", "opencv").max_abs_diff < TOL
    assert result.report("keras", "opencv").top1_agreement == 1.0


def test_mobilenet_v2_exports_and_passes_the_gate(tmp_path, digits, capsys):
    """keras.applications MobileNetV2 (weights=None) at 96x96 RGB: the real-architecture case."""
    import keras

    keras.utils.set_random_seed(1)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=10)
    rgb = np.repeat(np.resize(digits[2][:40], (40, 96, 96, 1)), 3, axis=-1)
    calibrate_batchnorm(model, rgb[:16])
    run = write_run(tmp_path / "mnv2", model, rgb, rgb, digits[3][:40], architecture="mobilenet_v2")
    start = time.perf_counter()
    result = export_model(load_source(run), tmp_path / "mnv2.onnx", ExportConfig())
    seconds = time.perf_counter() - start
    report = result.reports["fp32"]["all"]
    with capsys.disabled():
        print(
            f"\nmobilenet_v2 96x96: export+gate {seconds:.1f} s, max|dp| {report.max_abs_diff:.2e}, "
            f"max|dz| {report.logits_max_abs_diff:.2e}"
        )
    assert report.passed
    assert report.max_abs_diff < 1e-4
    assert report.top1_agreement == 1.0
    probabilities = np.asarray(model(rgb[:8].astype(np.float32)))
    assert probabilities.max() - probabilities.min() > 0.05, "a uniform softmax would make parity vacuous"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "size"),
    [("ResNet50", 96), ("EfficientNetB0", 96), ("ConvNeXtTiny", 64), ("VGG16", 64)],
)
def test_keras_applications_export_and_pass_the_gate(name, size, tmp_path):
    """The architectures stock tf2onnx gets wrong (grouped conv, Erfc, captured constants)."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(input_shape=(size, size, 3), weights=None, classes=10)
    images = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    calibrate_batchnorm(model, images[:4])
    path = tmp_path / f"{name}.keras"
    model.save(path)
    result = export_model(load_source(path), tmp_path / f"{name}.onnx", ExportConfig())
    report = result.reports["fp32"]["all"]
    assert report.passed, report.failures
    assert report.max_abs_diff < 1e-4


def test_simplified_graph_passes_the_gate_again(run_dir, tmp_path):
    pytest.importorskip("onnxslim")
    plain = tmp_path / "plain.onnx"
    slim = tmp_path / "slim.onnx"
    export_model(load_source(run_dir), plain, ExportConfig())
    result = export_model(load_source(run_dir), slim, ExportConfig(simplify=True))
    report = result.reports["fp32"]["all"]
    assert report.passed
    assert report.max_abs_diff < 1e-4
    nodes = len(onnx.load(str(slim)).graph.node)
    assert 0 < nodes <= len(onnx.load(str(plain)).graph.node)
    assert read_card(slim).labels == LABELS


def test_probabilities_are_output_0_in_every_variant(exported):
    """Bare onnxruntime, OpenCV DNN and Triton users read output 0: it must be the
    probabilities, in fp32, fp16 and int8 alike."""
    import onnxruntime as ort

    result, _ = exported
    assert set(result.paths) == {"fp32", "fp16", "int8"}
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    for kind, path in result.paths.items():
        assert [o.name for o in onnx.load(path).graph.output] == ["probabilities", "logits"], kind
        first = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        # int8 quantizes the softmax output to steps of 1/255: its sums are 1 within 1%.
        np.testing.assert_allclose(first.sum(axis=1), 1.0, atol=1e-2 if kind == "int8" else 1e-3)
        assert read_card(path).output.head == "softmax"

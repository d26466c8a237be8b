"""Deployment targets of `cnnport export`: the ORT format (--ort) and a Triton model repository
(--triton), written from every gated model and checked."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cnnport.export import ExportConfig, ExportError, ParityError
from cnnport.export.deploy import Artifact, deploy
from cnnport.export.parity import Outputs, ort_runner
from cnnport.export.triton import triton_config, write_triton_model
from cnnport.runtime import Engine, read_card

TOL = 1e-5  # fp32 runtime vs fp32 runtime: the target


def test_ort_files_for_every_variant_pass_their_gate(deployed):
    result, output = deployed
    for kind, stem in (("fp32", "tiny"), ("int8", "tiny.int8")):
        ort_file = output.with_name(f"{stem}.ort")
        assert result.paths[f"{kind} ort"] == ort_file
        assert ort_file.read_bytes()[4:8] == b"ORTM"  # the flatbuffer's file identifier
        report = json.loads(output.with_name(f"{stem}.ort.parity.json").read_text())
        assert report["passed"] is True
        versus_onnx = result.reports[f"{kind} ort"]["vs onnx all"]
        assert versus_onnx.max_abs_diff < TOL
        assert versus_onnx.top1_agreement == 1.0
    keras = result.reports["fp32 ort"]["all"]
    assert keras.tolerance == 1e-4  # the fp32 .ort is gated against Keras as the .onnx is
    assert keras.max_abs_diff < TOL
    assert keras.top1_agreement == 1.0


def test_required_operators_config_lists_the_graph_ops_without_machine_paths(deployed):
    _, output = deployed
    text = output.with_name("tiny.required_operators.config").read_text()
    ops = {
        op for line in text.splitlines() if not line.startswith("#") for op in line.split(";")[2].split(",")
    }
    assert {"Gemm", "Softmax", "MaxPool"} <= ops
    assert "# - tiny.ort" in text
    assert str(output.parent) not in text


def test_engine_and_read_card_take_the_ort_file(deployed, digits):
    _, output = deployed
    ort_file = output.with_suffix(".ort")
    assert read_card(ort_file) == read_card(output)
    onnx_engine, ort_engine = Engine(output), Engine(ort_file)
    for batch in (1, 9):  # the batch axis stays dynamic in the ORT format
        x = digits[2][:batch]
        assert np.abs(ort_engine.run(x) - onnx_engine.run(x)).max() < TOL
    assert ort_engine.predict(digits[2][0]).label == onnx_engine.predict(digits[2][0]).label


def _artifact(path: Path, **changes) -> Artifact:
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    reference = ort_runner(str(path))(x)
    artifact = Artifact("fp32", path, read_card(path), {"random": (x, None)}, {"random": reference}, 1e-4)
    return replace(artifact, **changes)


def test_an_ort_file_that_disagrees_is_refused_and_not_written(make_model):
    model = make_model()
    x = _artifact(model.path).sets["random"][0]
    wrong = Outputs(ort_runner(str(model.path))(x).probabilities[:, ::-1].copy())
    artifact = _artifact(model.path, keras={"random": wrong})
    with pytest.raises(ParityError, match=r"ORT-format model of model\.onnx failed its gate"):
        deploy([artifact], ExportConfig(targets=("ort",)))
    assert not model.path.with_suffix(".ort").exists()
    with pytest.raises(ParityError, match=r"kept .*model\.ort"):  # still an error, but kept to look at
        deploy([artifact], ExportConfig(targets=("ort",), keep_failed=True))
    assert not json.loads(model.path.with_name("model.ort.parity.json").read_text())["passed"]


def test_the_ort_gate_compares_with_the_onnx_when_there_is_no_keras(make_model):
    model = make_model()
    [done] = deploy([_artifact(model.path, keras=None)], ExportConfig(targets=("ort",)))
    assert set(done.reports) == {"vs onnx random", "vs onnx all"}
    assert done.reports["vs onnx all"].max_abs_diff < TOL


def _triton_schema():
    pytest.importorskip(
        "tritonclient.grpc.model_config_pb2",
        reason='tritonclient is not installed (pip install "cnnport[triton]"): no Triton schema to check against',
    )
    from cnnport.export.triton import parse_config

    return parse_config


def test_triton_repository_matches_triton_s_model_config_schema(deployed):
    parse_config = _triton_schema()
    from tritonclient.grpc import model_config_pb2 as pb

    _, output = deployed
    folder = output.parent / "triton" / "tiny"
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.name == "tiny"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 32
    assert config.HasField("dynamic_batching")
    [image] = config.input
    assert (image.name, image.data_type, list(image.dims)) == ("image", pb.TYPE_UINT8, [32, 32, 1])
    outputs = {o.name: o for o in config.output}
    assert set(outputs) == {"probabilities", "logits"}
    assert list(outputs["probabilities"].dims) == [10]
    assert outputs["probabilities"].data_type == pb.TYPE_FP32
    assert outputs["probabilities"].label_filename == "labels.txt"
    assert outputs["logits"].label_filename == ""
    assert (folder / "labels.txt").read_text().splitlines() == list(read_card(output).labels)
    assert (folder / "1" / "model.onnx").read_bytes() == output.read_bytes()  # the gated file itself
    assert json.loads((folder / "card.json").read_text())["labels"][0] == "0"
    assert (
        parse_config((output.parent / "triton" / "tiny_int8" / "config.pbtxt").read_text()).name
        == "tiny_int8"
    )


def test_triton_schema_refuses_what_triton_would(deployed):
    parse_config = _triton_schema()
    _, output = deployed
    text = (output.parent / "triton" / "tiny" / "config.pbtxt").read_text()
    with pytest.raises(ExportError, match="ModelConfig"):
        parse_config(text.replace("max_batch_size", "max_batch"))
    with pytest.raises(ExportError, match="ModelConfig"):
        parse_config(text.replace("TYPE_UINT8", "TYPE_BYTE8"))


def test_triton_frame_model_has_free_height_and_width(frame_rgba, tmp_path):
    path, card = frame_rgba
    folder = write_triton_model(path, card, tmp_path / "repo", max_batch_size=4)
    assert folder.name == "tiny_frame-rgba"
    text = (folder / "config.pbtxt").read_text()
    assert 'name: "frame"' in text
    assert "dims: [ -1, -1, 4 ]" in text
    assert "max_batch_size: 4" in text


def test_a_frame_model_gets_its_ort_gated_on_camera_sized_frames(frame_rgba, digits, tmp_path):
    """What export does with a frame model it wrote (the lead's --frame): the held-out images
    become 480x640 RGBA frames for the .ort's gate against the frame .onnx."""
    from cnnport.export.deploy import gated_artifacts

    path, card = frame_rgba
    sets = {"held-out": (digits[2][:40], digits[3][:40])}
    kind = "fp32 frame RGBA"
    [artifact] = gated_artifacts({kind: path}, {kind: card}, sets, {}, None, ExportConfig())
    [(name, (frames, labels))] = artifact.sets.items()
    assert (labels == digits[3][:16]).all()
    assert name == "held-out 480x640"
    assert frames.shape == (16, 480, 640, 4)
    assert artifact.keras is None
    [done] = deploy([artifact], ExportConfig(targets=("ort",)))
    assert done.files[0].name == "tiny.frame-rgba.ort"
    assert done.reports["vs onnx all"].max_abs_diff < TOL
    assert done.reports["vs onnx all"].accuracy_candidate > 0.8  # real digits, not noise


@pytest.mark.slow
def test_export_frame_and_ort_write_the_frame_model_s_ort(run_dir, tmp_path):
    """`cnnport export --frame RGBA --ort` end to end (slow: the frame gate runs three frame sizes)."""
    from cnnport.export import export_model, load_source

    output = tmp_path / "tiny.onnx"
    config = ExportConfig(frames=("RGBA",), targets=("ort",), parity_limit=32)
    result = export_model(load_source(run_dir), output, config)
    assert result.paths["fp32 frame RGBA ort"] == tmp_path / "tiny.frame-rgba.ort"
    assert result.reports["fp32 frame RGBA ort"]["vs onnx all"].max_abs_diff < TOL
    assert read_card(tmp_path / "tiny.frame-rgba.ort").frame.color == "RGBA"
    assert (tmp_path / "tiny.frame-rgba.required_operators.config").is_file()


def test_triton_config_needs_a_free_batch_axis(make_model):
    from cnnport.export.triton import _signature

    model = make_model(batch=1)
    inputs, outputs = _signature(model.path)
    with pytest.raises(ExportError, match="free first \\(batch\\) axis"):
        triton_config("model", inputs, outputs, model.card)


def test_unknown_target_names_the_known_ones():
    with pytest.raises(ExportError, match=r"unknown deploy target 'ortt'\. Did you mean 'ort'"):
        ExportConfig(targets=("ortt",))
    config = ExportConfig(targets=("ort", "triton"), triton_max_batch_size=8)
    assert ExportConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_web_page_refuses_a_tensor_model_in_the_ort_format_with_what_to_give(deployed, tmp_path):
    # It crashed on a protobuf DecodeError; an RGBA frame model's .ort is copied as it is.
    from cnnport.export.webassets import WebAssetsError, web_model

    _, output = deployed
    with pytest.raises(WebAssetsError, match=r"tensor model in the ORT format.*give tiny\.onnx"):
        web_model(output.with_suffix(".ort"), tmp_path / "model")


def test_labels_that_are_not_text_are_refused_with_what_is_accepted(tmp_path):
    from cnnport.export.errors import SourceModelError
    from cnnport.export.source import read_labels

    png = tmp_path / "gray.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(
        SourceModelError, match=r"is not text .*accepted: a text file with one class name a line"
    ):
        read_labels(png)

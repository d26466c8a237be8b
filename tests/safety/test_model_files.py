"""Untrusted .onnx files: external data outside the folder, bad bytes, versions, mismatches.

Covered elsewhere, not repeated here:
- empty, truncated, garbage, missing .onnx and a folder: tests/runtime/test_engine.py
  ``test_bad_model_files``;
- a card whose input size, label count or dtype disagrees with the graph:
  tests/runtime/test_engine.py ``test_card_that_disagrees_with_graph``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cnnport.runtime import (
    Engine,
    InputSpec,
    ModelCard,
    ModelLoadError,
    ModelMismatchError,
    modelfile,
    read_card,
)
from cnnport.runtime.modelfile import ExternalData, external_data

BATCH = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)


@pytest.fixture
def onnxruntime_never_opens(monkeypatch: pytest.MonkeyPatch) -> list:
    """Fails the test if onnxruntime is asked to open a model; returns the calls."""
    calls: list = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("onnxruntime was asked to open a model that should have been refused")

    monkeypatch.setattr(modelfile.ort, "InferenceSession", refuse)
    return calls


def test_external_weights_inside_the_folder_load_and_predict(external_model, reference_model):
    for location in ("weights.bin", "data/weights.bin", "./data/w.bin"):
        path = external_model(location)
        expected = reference_model.reference(BATCH)
        np.testing.assert_allclose(Engine(path, providers="cpu").run(BATCH), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("../weights.bin", "climbs out of the folder with '..'"),
        ("data/../../weights.bin", "climbs out of the folder with '..'"),
        ("..\\weights.bin", "climbs out of the folder with '..'"),
        ("ABSOLUTE", "is an absolute path"),
        ("C:\\weights.bin", "is an absolute path"),
        ("*/_ORT_MEM_ADDR_/*", "in-memory address tag"),
        ("missing.bin", "does not exist"),
        ("", "is empty"),
    ],
)
def test_unsafe_locations_are_refused_before_onnxruntime_opens_them(
    external_model, tmp_path, onnxruntime_never_opens, location, why
):
    outside = tmp_path / "weights.bin"
    if location == "ABSOLUTE":
        location = str(outside)
    write_to = Path() if location in ("*/_ORT_MEM_ADDR_/*", "missing.bin", "") else outside
    path = external_model(location, write_to=write_to)
    with pytest.raises(ModelLoadError, match=f"tensor 'W' .*{why}.*accepted: external data files"):
        Engine(path, providers="cpu")
    with pytest.raises(ModelLoadError, match=why):
        read_card(path)
    assert onnxruntime_never_opens == []


def test_symlinked_weights_file_is_refused(external_model, tmp_path, onnxruntime_never_opens):
    secret = tmp_path / "secret.bin"
    path = external_model("weights.bin", write_to=secret)
    (path.parent / "weights.bin").symlink_to(secret)
    with pytest.raises(ModelLoadError, match="is a symlink"):
        Engine(path, providers="cpu")
    assert onnxruntime_never_opens == []


def test_symlinked_subfolder_is_refused(external_model, tmp_path, onnxruntime_never_opens):
    path = external_model("data/weights.bin", write_to=tmp_path / "elsewhere" / "weights.bin")
    (path.parent / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ModelLoadError, match="passes through the symlink 'data'"):
        Engine(path, providers="cpu")


def test_hardlinked_weights_file_is_refused(external_model, tmp_path, onnxruntime_never_opens):
    # onnxruntime itself loads this one: the hardlink names an outside file from inside.
    secret = tmp_path / "secret.bin"
    path = external_model("weights.bin", write_to=secret)
    os.link(secret, path.parent / "weights.bin")
    with pytest.raises(ModelLoadError, match=r"is a hardlink \(2 names"):
        Engine(path, providers="cpu")
    assert onnxruntime_never_opens == []


def test_fifo_as_weights_file_is_refused_instead_of_hanging(external_model, onnxruntime_never_opens):
    path = external_model("weights.bin", write_to=Path())
    os.mkfifo(path.parent / "weights.bin")
    with pytest.raises(ModelLoadError, match="is not a regular file"):
        Engine(path, providers="cpu")


def _graph_with_constant(name: str, location: str) -> onnx.GraphProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [1.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    node = helper.make_node("Constant", [], ["y"], value=tensor)
    return helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])


def test_reader_finds_external_tensors_in_subgraphs_and_functions(tiny_model):
    inner = _graph_with_constant("deep", "../deep.bin")
    branch = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    outer = helper.make_graph(
        [branch],
        "outer",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    function = helper.make_function(
        "custom", "f", [], ["y"], list(_graph_with_constant("in_function", "/abs.bin").node), []
    )
    model = helper.make_model(outer, functions=[function])
    found = external_data(model.SerializeToString())
    assert sorted(found, key=lambda e: e.tensor) == [
        ExternalData("deep", "../deep.bin"),
        ExternalData("deep", "../deep.bin"),
        ExternalData("in_function", "/abs.bin"),
    ]
    assert external_data(tiny_model.path.read_bytes()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\xff\xff\xff", "bad varint"),
        (b"\x3a\x10\x0a", "runs past the end"),
        (b"\x0b\x00", "unsupported wire type 3"),
        (b"\x00\x01", "field number 0"),
        (b"\x3a" + b"\x3a\x7f" * 0 + bytes([0x02]) + b"\x2a\x00", None),
    ],
)
def test_reader_refuses_malformed_protobuf(data, message):
    if message is None:  # a well-formed message with an empty tensor: nothing external
        assert external_data(data) == []
        return
    with pytest.raises(ModelLoadError, match=f"not a valid ONNX file \\(.*{message}"):
        external_data(data)


def test_reader_refuses_absurd_nesting():
    message = b""
    for _ in range(100):  # graph -> node -> attribute -> graph ...
        attribute = b"\x32" + _length(message) + message
        node = b"\x2a" + _length(attribute) + attribute
        message = b"\x0a" + _length(node) + node
    with pytest.raises(ModelLoadError, match="nested more than 64 deep"):
        external_data(b"\x3a" + _length(message) + message)


def _length(data: bytes) -> bytes:
    out, size = b"", len(data)
    while True:
        out += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return out


def _versioned(tmp_path: Path, ir_version: int, opset: int) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    path = tmp_path / f"ir{ir_version}_opset{opset}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_ir_version_newer_than_onnxruntime_says_what_to_do(tmp_path):
    with pytest.raises(
        ModelLoadError, match=r"IR version 99 but onnxruntime .* up to \d+; re-export with opset 17"
    ):
        Engine(_versioned(tmp_path, 99, 17), providers="cpu")


def test_opset_newer_than_onnxruntime_says_what_to_do(tmp_path):
    with pytest.raises(
        ModelLoadError,
        match=r"uses opset 99 of ai.onnx but onnxruntime .* up to \d+; re-export with opset \d+",
    ):
        Engine(_versioned(tmp_path, 10, 99), providers="cpu")


def test_card_naming_another_input_or_output_is_a_mismatch(make_model):
    spec = InputSpec(height=8, width=8, name="pixels")
    with pytest.raises(ModelMismatchError, match="card names input 'pixels' but the graph has \\['image'\\]"):
        Engine(make_model(card=ModelCard(labels=("a", "b", "c", "d"), input=spec)).path, providers="cpu")
    channels = ModelCard(
        labels=("a", "b", "c", "d"), input=InputSpec(height=8, width=8, channels=1, color="GRAY")
    )
    with pytest.raises(ModelMismatchError, match="card says input \\(N, 8, 8, 1\\)"):
        Engine(make_model(card=channels).path, providers="cpu")

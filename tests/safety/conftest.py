"""Helpers for the safety battery: ONNX files with external weights, hostile variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto

from tests.models import TinyModel, build_classifier

ExternalModel = Callable[..., Path]


def move_weights_out(model_path: Path, location: str, *, write_to: Path | None = None) -> bytes:
    """Rewrites ``model_path`` so initializer W lives in an external file named ``location``.

    The weights are written to ``write_to`` (default: ``location`` inside the model's
    folder) unless it is the empty path; returns the raw weight bytes.
    """
    model = onnx.load(str(model_path))
    weights = next(t for t in model.graph.initializer if t.name == "W")
    raw = onnx.numpy_helper.to_array(weights).tobytes()
    weights.ClearField("raw_data")
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    if write_to is None:
        write_to = model_path.parent / location
    if write_to != Path():
        write_to.parent.mkdir(parents=True, exist_ok=True)
        write_to.write_bytes(raw)
    model_path.write_bytes(model.SerializeToString())
    return raw


@pytest.fixture
def external_model(tmp_path: Path) -> ExternalModel:
    """Builds the tiny classifier in ``tmp_path/model`` with W stored externally at ``location``."""

    def make(location: str, *, write_to: Path | None = None) -> Path:
        folder = tmp_path / "model"
        folder.mkdir(exist_ok=True)
        path = folder / "model.onnx"
        build_classifier(path)
        move_weights_out(path, location, write_to=write_to)
        return path

    return make


@pytest.fixture
def reference_model(tmp_path: Path) -> TinyModel:
    """The same classifier with its weights inside, to compare predictions with."""
    return build_classifier(tmp_path / "reference.onnx")

"""Opening an .onnx file safely and reading what it says about itself."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .card import METADATA_KEY, ModelCard
from .errors import ModelLoadError

__all__ = ["open_session", "read_card"]

_ORT_LOAD_ERRORS = (
    ort_state.InvalidProtobuf,
    ort_state.Fail,
    ort_state.InvalidGraph,
    ort_state.NotImplemented,
    ort_state.NoSuchFile,
    ort_state.RuntimeException,
    ort_state.InvalidArgument,
)


def open_session(path: Path, providers: list, threads: int | None, spinning: bool) -> ort.InferenceSession:
    """Opens an onnxruntime session, turning every load failure into ModelLoadError."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {str(path)!r}")
    if not path.is_file():
        raise ModelLoadError(f"expected an .onnx file, received a folder: {str(path)!r}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file is empty: {str(path)!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Warnings such as "some nodes were not assigned to the preferred provider" are
    # normal; provider problems are reported by verify_providers instead.
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except _ORT_LOAD_ERRORS as exc:
        raise ModelLoadError(_load_error_message(path, exc)) from exc


def _load_error_message(path: Path, exc: Exception) -> str:
    reason = str(exc).split(" : ")[-1].strip()
    text = reason.lower()
    if "protobuf parsing failed" in text:
        return (
            f"cannot load {str(path)!r}: not a valid ONNX file (it may be truncated, or another "
            "format); accepted: an .onnx model, e.g. from `cnnport export`"
        )
    if "opset" in text or "ir_version" in text or "ir version" in text:
        return (
            f"cannot load {str(path)!r}: it needs a newer onnxruntime than {ort.__version__} ({reason}); "
            "re-export with an older opset (cnnport export --opset 17) or upgrade onnxruntime"
        )
    return f"cannot load {str(path)!r} with onnxruntime {ort.__version__}: {reason}"


def read_card(path: str | os.PathLike) -> ModelCard | None:
    """The model card embedded in an .onnx file, or None when it has none.

    Reads the metadata through onnxruntime (the ``onnx`` package is not needed).

    Raises:
        ModelLoadError: the file is missing or not a loadable ONNX model.
        CardError: the embedded card is invalid.
    """
    session = open_session(Path(path), ["CPUExecutionProvider"], threads=1, spinning=False)
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return None if text is None else ModelCard.from_json(text)

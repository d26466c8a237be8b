"""The ORT format: ``MODEL.ort`` for ORT Mobile (Android, iOS) and reduced-size builds.

onnxruntime's own converter (``python -m onnxruntime.tools.convert_onnx_models_to_ort``)
is a session that loads the .onnx, optimizes it and saves the result as a flatbuffer;
this module does the same with its "fixed" optimization style and the same choices,
without the tool's prints and directory walk:

- optimization level "all", but without the NCHWc transformer, which would bake an
  x86 memory layout into a file meant for ARM phones (the tool leaves it out too unless
  ``--target_platform amd64``);
- ``session.qdqisint8allowed = 0``: the tool's default outside ``--target_platform arm``.

Then ``create_config_from_models`` (onnxruntime.tools.ort_format_model) lists the
operators the file uses, per domain and opset, as ``MODEL.required_operators.config``:
the input of ``build.sh --minimal_build --include_ops_by_config`` for an onnxruntime
that holds only those kernels. The card travels inside: the ORT format keeps the
model's ``metadata_props``.

Example:
    >>> to_ort(Path("digits.onnx")).write(Path("digits.onnx"))  # doctest: +SKIP
    (PosixPath('digits.ort'), PosixPath('digits.required_operators.config'))
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cnnport.runtime.files import atomic_write_bytes, atomic_write_text

from .errors import ExportError

__all__ = ["OrtModel", "operators_path", "ort_path", "to_ort"]


@dataclass(frozen=True)
class OrtModel:
    """One conversion, in memory: the flatbuffer and its required-operators config."""

    model: bytes
    operators: str

    def write(self, onnx_path: Path) -> tuple[Path, Path]:
        """Writes both beside ``onnx_path``; returns (the .ort, the config)."""
        model, operators = ort_path(onnx_path), operators_path(onnx_path)
        atomic_write_bytes(model, self.model)
        atomic_write_text(operators, self.operators)
        return model, operators


def ort_path(onnx_path: Path) -> Path:
    """``digits.int8.onnx`` -> ``digits.int8.ort`` (also ``digits.frame-rgba.ort``)."""
    return onnx_path.with_suffix(".ort")


def operators_path(onnx_path: Path) -> Path:
    """``digits.onnx`` -> ``digits.required_operators.config`` (the converter's own name)."""
    return onnx_path.with_suffix(".required_operators.config")


def to_ort(onnx_path: Path) -> OrtModel:
    """Converts the .onnx at ``onnx_path`` to the ORT format, in memory.

    Raises:
        ExportError: onnxruntime could not convert the model.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="cnnport-ort-") as folder:
        target = Path(folder) / ort_path(onnx_path).name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(target)
        options.add_session_config_entry("session.save_model_format", "ORT")
        options.add_session_config_entry("session.qdqisint8allowed", "0")
        options.log_severity_level = 3
        try:
            ort.InferenceSession(
                str(onnx_path),
                sess_options=options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=["NchwcTransformer"],
            )
        except Exception as exc:  # onnxruntime raises its own pybind types; say which file failed
            raise ExportError(
                f"onnxruntime {ort.__version__} could not convert {str(onnx_path)!r} to the ORT format: {exc}"
            ) from exc
        return OrtModel(target.read_bytes(), _operators(target))


def _operators(ort_file: Path) -> str:
    """The required-operators config of ``ort_file``, naming the model by its file name.

    The tool writes the absolute path of the file it read into the config's header; the
    name alone keeps the artifact free of this machine's paths and repeatable.
    """
    from onnxruntime.tools.ort_format_model import create_config_from_models

    # The tool's module logs "Created config in <temporary path>" at INFO on its own handler.
    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
    config = ort_file.with_suffix(".config")
    create_config_from_models([ort_file], config, False)
    return config.read_text().replace(str(ort_file), ort_file.name)

"""Reduced-precision variants of an fp32 graph: float16 weights and static QDQ int8."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

__all__ = ["VARIANT_BUILDERS", "to_fp16", "to_int8"]

logger = logging.getLogger(__name__)


def to_fp16(model: Any, calibration: np.ndarray | None = None) -> Any:
    """float16 weights and activations; inputs and outputs stay as they were (uint8/float32).

    onnxruntime's converter inserts the Casts at the graph boundary (keep_io_types) and
    leaves Softmax/Resize-style ops that lose accuracy in float16 to its own block list.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


class _Calibration:
    """onnxruntime CalibrationDataReader over images at model input size."""

    def __init__(self, images: np.ndarray, input_name: str, dtype: np.dtype, batch: int = 16) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = (
            {input_name: images[i : i + batch].astype(dtype)} for i in range(0, len(images), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def to_int8(model: Any, calibration: np.ndarray | None = None) -> Any:
    """Static QDQ int8 (per-channel weights) calibrated on training images.

    Runs onnxruntime's quantization pre-processing (symbolic shape inference and graph
    optimisation) first, as its documentation asks for static quantization.

    Raises:
        ExportError: no calibration images were given.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None or not len(calibration):
        raise ExportError(
            "int8 needs calibration images: export a run directory (its data/calibration.npz), or pass "
            "--calibration with a folder of training images (flat or class subfolders) or an .npz "
            "holding an array x"
        )
    graph_input = model.graph.input[0]
    dtype = np.uint8 if graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8 else np.float32
    with tempfile.TemporaryDirectory(prefix="cnnport-int8-") as folder:
        source, prepared, quantized = (Path(folder) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, source)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        quantize_static(
            str(prepared),
            str(quantized),
            _Calibration(calibration, graph_input.name, dtype),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return onnx.load(quantized)


VARIANT_BUILDERS = {"fp16": to_fp16, "int8": to_int8}

"""int8 quantization of an exported graph: onnxruntime's static quantizer, with the choices spelled out.

:class:`Int8Options` is every choice the int8 variant makes (format, per-channel
weights, activation type and symmetry, reduced range, which operators are quantized),
as data; :func:`quantize_int8` applies one. ``DEFAULT_INT8`` is what ``cnnport export
--int8`` writes; the other recipes in ``INT8_RECIPES`` are what benchmarks/peers_int8.py
measured against it (docs/performance.md has the figures and why the default is what
it is).

Example:
    >>> quantized = quantize_int8(model, calibration, INT8_RECIPES.get("qoperator"))  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import Registry

from .errors import ExportError

__all__ = ["DEFAULT_INT8", "INT8_RECIPES", "Int8Options", "quantize_int8"]

_FORMATS = ("qdq", "qoperator")
_ACTIVATIONS = ("u8", "s8")
_EXCLUDES = ("input-scaling", "head", "depthwise")


@dataclass(frozen=True)
class Int8Options:
    """How the int8 graph is made from the fp32 one.

    Attributes:
        format: "qdq" (QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into
            QLinear kernels at load) or "qoperator" (the QLinear operators written out).
        per_channel: one weight scale per output channel (else one per tensor).
        activations: "u8" (onnxruntime's fast u8 x s8 kernels on x86) or "s8".
        symmetric_activations: zero point in the middle of the activation range.
        reduce_range: 7-bit weights (for x86 CPUs without VNNI, whose u8 x s8 sums can saturate).
        exclude: parts left in float: "input-scaling" (the Mul/Add that scale the uint8
            pixels before the first convolution), "head" (the Dense layer, softmax and
            class-maps Conv after the last pooling: logits and probabilities stay float
            rather than 8-bit steps), "depthwise" (the depthwise
            convolutions, group > 1: onnxruntime's int8 depthwise kernel is AVX2 only).
    """

    format: str = "qdq"
    per_channel: bool = True
    activations: str = "u8"
    symmetric_activations: bool = False
    reduce_range: bool = False
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value, accepted in (
            ("format", self.format, _FORMATS),
            ("activations", self.activations, _ACTIVATIONS),
        ):
            if value not in accepted:
                raise ExportError(f"int8 {name} must be one of {', '.join(accepted)}; received {value!r}")
        unknown = [e for e in self.exclude if e not in _EXCLUDES]
        if unknown:
            raise ExportError(f"int8 exclude accepts {', '.join(_EXCLUDES)}; received {unknown[0]!r}")


DEFAULT_INT8 = Int8Options()

# Named recipes benchmarks/peers_int8.py builds and times against the default.
INT8_RECIPES: Registry[Int8Options] = Registry("int8 recipe")
for _name, _options in (
    ("default", DEFAULT_INT8),
    ("qoperator", replace(DEFAULT_INT8, format="qoperator")),
    ("per-tensor", replace(DEFAULT_INT8, per_channel=False)),
    ("s8", replace(DEFAULT_INT8, activations="s8", symmetric_activations=True)),
    ("symmetric-u8", replace(DEFAULT_INT8, symmetric_activations=True)),
    ("reduce-range", replace(DEFAULT_INT8, reduce_range=True)),
    ("float-scaling", replace(DEFAULT_INT8, exclude=("input-scaling",))),
    ("float-head", replace(DEFAULT_INT8, exclude=("head",))),
    ("float-ends", replace(DEFAULT_INT8, exclude=("input-scaling", "head"))),
    ("float-depthwise", replace(DEFAULT_INT8, exclude=("depthwise",))),
):
    INT8_RECIPES.add(_name, _options)


class _Calibration:
    """onnxruntime CalibrationDataReader over images at model input size."""

    def __init__(self, images: np.ndarray, input_name: str, dtype: np.dtype, batch: int = 16) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = (
            {input_name: images[i : i + batch].astype(dtype)} for i in range(0, len(images), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


_COMPUTE = ("Conv", "MatMul", "Gemm", "GlobalAveragePool", "AveragePool", "MaxPool")
# What a classifier's head is made of, between the last pooling and the outputs: the
# Dense layer (MatMul/Gemm, its bias Add), the softmax or sigmoid, reshapes, and the
# class-maps branch (the head's weights as a 1x1 Conv, then a Transpose).
_HEAD = (
    "MatMul",
    "Gemm",
    "Add",
    "Softmax",
    "Sigmoid",
    "Squeeze",
    "Reshape",
    "Flatten",
    "Transpose",
    "Identity",
)


def _is_head(node: Any) -> bool:
    if node.op_type in _HEAD:
        return True
    kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
    return node.op_type == "Conv" and kernel == [1, 1]


def _head_nodes(graph: Any) -> list[str]:
    """The nodes reached backwards from the graph outputs through head operators only."""
    producer = {out: node for node in graph.node for out in node.output}
    found: dict[str, None] = {}
    stack = [producer[o.name] for o in graph.output if o.name in producer]
    while stack:
        node = stack.pop()
        if node.name in found or not _is_head(node):
            continue
        found[node.name] = None
        stack += [producer[name] for name in node.input if name in producer]
    return list(found)


def excluded_nodes(graph: Any, exclude: tuple[str, ...]) -> list[str]:
    """Names of the nodes ``exclude`` keeps in float.

    "input-scaling": the Mul/Add/Sub/Div nodes met from the graph input before the first
    compute node; "head": the head operators reached backwards from the outputs (the
    Dense layer, softmax, the class-maps Conv), stopping at the pooling; "depthwise":
    every Conv with group > 1.
    """
    nodes = list(graph.node)
    compute = [i for i, n in enumerate(nodes) if n.op_type in _COMPUTE]
    names: list[str] = []
    if "input-scaling" in exclude and compute:
        names += [n.name for n in nodes[: compute[0]] if n.op_type in ("Mul", "Add", "Sub", "Div")]
    if "depthwise" in exclude:
        names += [
            n.name
            for n in nodes
            if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
        ]
    if "head" in exclude:
        names += _head_nodes(graph)
    return names


def quantize_int8(model: Any, calibration: np.ndarray, options: Int8Options = DEFAULT_INT8) -> Any:
    """Static int8 with ``options``, calibrated (MinMax) on ``calibration`` images.

    Runs onnxruntime's quantization pre-processing (symbolic shape inference and graph
    optimisation) first, as its documentation asks for static quantization.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph_input = model.graph.input[0]
    dtype = np.uint8 if graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8 else np.float32
    activation = QuantType.QUInt8 if options.activations == "u8" else QuantType.QInt8
    with tempfile.TemporaryDirectory(prefix="cnnport-int8-") as folder:
        source, prepared, quantized = (Path(folder) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, source)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        exclude = excluded_nodes(onnx.load(prepared).graph, options.exclude)
        quantize_static(
            str(prepared),
            str(quantized),
            _Calibration(calibration, graph_input.name, dtype),
            quant_format=QuantFormat.QDQ if options.format == "qdq" else QuantFormat.QOperator,
            per_channel=options.per_channel,
            reduce_range=options.reduce_range,
            activation_type=activation,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=exclude,
            extra_options={"ActivationSymmetric": options.symmetric_activations},
        )
        return onnx.load(quantized)

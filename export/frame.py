"""The frame model: the camera frame goes into the graph.

A frame model takes a decoded frame as the platform hands it over (uint8, any height and
width, channels in BGR, RGB, RGBA, BGRA or GRAY order) and does inside the graph, with
standard ONNX operators only, what :func:`cnnport.runtime.preprocess` does in Python with
OpenCV: alpha composited over white, gray by OpenCV's fixed-point weights, the card's
center crop, the card's resize filter (OpenCV's ``INTER_NEAREST``, ``INTER_LINEAR`` and
``INTER_AREA``, each with OpenCV's own sampling positions and border rule), and rounding
to whole gray levels. Then the classifier runs on that tensor, unchanged. So a browser,
Node.js, a phone or Triton feed the frame and get the answer Python gets: no canvas
filter, no re-implemented preprocessing.

How the resize is built. Every output pixel of one axis is a difference of the input's
running sum taken at two positions: ``F(b) - F(a)`` where ``F(t) = C[floor t] +
frac(t) * X[floor t]`` and ``C`` is the exclusive cumulative sum along the axis. With
``a = j*s, b = (j+1)*s`` that is OpenCV's area average (times ``s``); with ``a = i + f,
b = i + 1 + f`` it is the two-tap interpolation ``(1-f) X[i] + f X[i+1]``, which is
also what ``INTER_AREA`` does when an axis is enlarged. Linear and nearest need no sums:
two gathers and a lerp. All index and weight vectors are computed in the graph from the
frame's shape, so one graph serves every frame size. Cubic and Lanczos (four and eight
taps) are not built: a card with them gets a frame model refused, with the reason.

Example:
    >>> frame_model(onnx.load("digits.onnx"), card, "RGBA")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cnnport.runtime import FRAME_COLORS, FrameSpec, ModelCard

from .errors import ExportError

__all__ = ["FRAME_INTERPOLATIONS", "frame_card", "frame_model", "frame_path", "preprocessing_model"]

FRAME_INTERPOLATIONS = ("nearest", "linear", "area")
# OpenCV's BGR2GRAY for 8-bit images: (B*3735 + G*19235 + R*9798 + 2**14) >> 15.
_GRAY_WEIGHTS = {"B": 3735.0, "G": 19235.0, "R": 9798.0}


def frame_path(model_path: Any, color: str) -> Any:
    """``digits.onnx`` -> ``digits.frame-rgba.onnx`` (also after a variant suffix)."""
    name = model_path.name[: -len(".onnx")] if model_path.name.endswith(".onnx") else model_path.stem
    return model_path.with_name(f"{name}.frame-{color.lower()}.onnx")


def frame_card(card: ModelCard, color: str) -> ModelCard:
    """The card of the frame model made from the model with ``card``."""
    return replace(card, frame=FrameSpec(color=color))


def _check(card: ModelCard, color: str) -> None:
    if color not in FRAME_COLORS:
        raise ExportError(f"unknown frame color {color!r}; accepted: {', '.join(FRAME_COLORS)}")
    if card.frame is not None:
        raise ExportError("the model is already a frame model; make frame models from the tensor model")
    if card.resize.interpolation not in FRAME_INTERPOLATIONS:
        raise ExportError(
            f"the card resizes with {card.resize.interpolation!r}; a frame model builds "
            f"{', '.join(FRAME_INTERPOLATIONS)} in the graph (cubic and lanczos are not built); "
            "export without --frame, or train with one of these"
        )


@dataclass
class _Builder:
    """Collects nodes and constants of the preprocessing subgraph under one name prefix."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    count: int = 0

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        self.count += 1
        out = f"frame/{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = f"frame/const_{self.count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def where(self, cond: str, yes: str, no: str) -> str:
        return self.op("Where", cond, yes, no)

    def clamp(self, x: str, low: str, high: str) -> str:
        return self.op("Min", self.op("Max", x, low), high)


def _color_first(b: _Builder, x: str, source: str) -> tuple[str, str]:
    """The full-resolution part of the color conversion, alpha over white (it does not
    commute with the resize). Returns the tensor (uint8, or float32 when composited) and
    its channel order; gray comes as (N, H, W).

    Every full-resolution tensor keeps a channel axis of three, or none: onnxruntime's CPU
    kernels broadcast over a trailing axis of one element by element, about 200 times
    slower than over a flat tensor (8 ms instead of 0.04 ms for one 640x480 Add), and its
    transpose optimizer undoes a channels-first detour.
    """
    if source == "GRAY":
        return b.op("Squeeze", x, b.const([3], np.int64)), "GRAY"
    if source in ("RGBA", "BGRA"):
        # Color and alpha-per-channel as two (4, 3) selections (exact: weights 0 and 1).
        x = b.op("Cast", x, to=1)
        color = b.op("MatMul", x, b.const(np.eye(4, 3)))
        alpha = b.op("MatMul", x, b.const(np.outer([0, 0, 0, 1], [1, 1, 1])))
        alpha = b.op("Div", alpha, b.const(255.0))
        # As preprocess.to_input_color computes it, in float32: color*a + 255*(1-a), rint.
        over = b.op("Mul", b.const(255.0), b.op("Sub", b.const(1.0), alpha))
        return b.op("Round", b.op("Add", b.op("Mul", color, alpha), over)), source[:3]
    return x, source


def _color_last(b: _Builder, x: str, source: str, target: str) -> str:
    """The channel work done on the small, resized tensor (rounded to whole levels):
    gray gets its channel axis back (three copies for an RGB model); BGR becomes RGB by a
    (3, 3) permutation, exact on whole numbers and faster than a Gather on the last axis."""
    if source == "GRAY":
        x = b.op("Unsqueeze", x, b.const([3], np.int64))
        return x if target == "GRAY" else b.op("Concat", x, x, x, axis=3)
    if source == "RGB":
        return x
    return b.op("MatMul", x, b.const(np.eye(3)[::-1].copy()))


def _to_gray(b: _Builder, x: str, source: str) -> str:
    """OpenCV's BGR2GRAY weights, (B*3735 + G*19235 + R*9798) / 2**15 (color_rgb.simd.hpp,
    checked against cv2.cvtColor), on the resized tensor. OpenCV rounds the gray of each
    full-size pixel before resizing; this rounds once after, which is the same up to one
    level and saves a full-resolution pass."""
    weights = b.const([[_GRAY_WEIGHTS[c] / 32768.0] for c in source])
    return b.op("Squeeze", b.op("MatMul", x, weights), b.const([3], np.int64))


@dataclass(frozen=True)
class _Axis:
    """One axis of the resize: the frame's full length, the window's offset and length
    (the center crop; the whole axis when stretching), all float scalars in the graph,
    and the output length."""

    axis: int
    total: str
    offset: str
    length: str
    out: int


def _window(b: _Builder, shape: str, height: int, width: int, crop: bool) -> tuple[_Axis, _Axis]:
    dims = [b.op("Cast", b.op("Gather", shape, b.const(i, np.int64)), to=1) for i in (1, 2)]
    if not crop:
        zero = b.const(0.0)
        return _Axis(1, dims[0], zero, dims[0], height), _Axis(2, dims[1], zero, dims[1], width)
    # preprocess.crop_window: scale = min(H/h, W/w); crop = round(size*scale) (half to even,
    # as Python's round); offset = (H - crop) // 2.
    scale = b.op(
        "Min", b.op("Div", dims[0], b.const(float(height))), b.op("Div", dims[1], b.const(float(width)))
    )
    axes = []
    for i, (total, size) in enumerate(zip(dims, (height, width), strict=True)):
        length = b.op("Round", b.op("Mul", scale, b.const(float(size))))
        offset = b.op("Floor", b.op("Div", b.op("Sub", total, length), b.const(2.0)))
        axes.append(_Axis(i + 1, total, offset, length, size))
    return axes[0], axes[1]


def _positions(b: _Builder, axis: _Axis) -> tuple[str, str]:
    """Output pixel indices j (0..n-1) as floats, and the scale s = length / n."""
    j = b.const(np.arange(axis.out, dtype=np.float32))
    return j, b.op("Div", axis.length, b.const(float(axis.out)))


def _two_tap(b: _Builder, axis: _Axis, mode: str) -> tuple[str, str]:
    """OpenCV's source index and weight of each output pixel, border rule included:
    linear samples (j+0.5)*s-0.5; area-when-enlarging floor(j*s) with the fractional rule
    of resize.cpp; an index outside [0, length-1] is clamped with weight 0."""
    j, s = _positions(b, axis)
    if mode == "linear":
        position = b.op("Sub", b.op("Mul", b.op("Add", j, b.const(0.5)), s), b.const(0.5))
        index = b.op("Floor", position)
        weight = b.op("Sub", position, index)
    else:  # area, axis enlarged: fx = (j+1) - (sx+1)/s; fx = fx <= 0 ? 0 : fx - floor(fx)
        index = b.op("Floor", b.op("Mul", j, s))
        fx = b.op("Sub", b.op("Add", j, b.const(1.0)), b.op("Div", b.op("Add", index, b.const(1.0)), s))
        weight = b.where(
            b.op("LessOrEqual", fx, b.const(0.0)), b.const(0.0), b.op("Sub", fx, b.op("Floor", fx))
        )
    zero, last = b.const(0.0), b.op("Sub", axis.length, b.const(1.0))
    weight = b.where(b.op("Less", index, zero), zero, weight)
    index = b.op("Max", index, zero)
    weight = b.where(b.op("GreaterOrEqual", index, last), zero, weight)
    return b.op("Min", index, last), weight


def _per_position(b: _Builder, vector: str, axis: _Axis, gray: bool) -> str:
    """A per-output-pixel vector shaped to broadcast along ``axis`` of (N, H, W, 3) or of
    gray (N, H, W); along the columns of a color tensor it is repeated per channel, so the
    broadcast has no trailing axis of one (see _color_first)."""
    if gray:
        return b.op("Unsqueeze", vector, b.const([1], np.int64)) if axis.axis == 1 else vector
    if axis.axis == 1:
        return b.op("Reshape", vector, b.const([-1, 1, 1], np.int64))
    return b.op("Mul", b.op("Unsqueeze", vector, b.const([1], np.int64)), b.const([[1.0, 1.0, 1.0]]))


def _gather(b: _Builder, x: str, axis: _Axis, index: str) -> str:
    absolute = b.op("Add", index, axis.offset)
    return b.op("Gather", x, b.op("Cast", absolute, to=7), axis=axis.axis)


def _lerp_pass(b: _Builder, x: str, axis: _Axis, mode: str, gray: bool) -> str:
    """Nearest or linear along one axis: X[i] + f * (X[i+1] - X[i]). Gathers the frame's
    uint8 rows before casting them, so nothing is done at full size."""
    if mode == "nearest":
        # floor(j * (1 / (n / length))) in double precision, as resize.cpp computes it: a
        # float32 product lands on the other side of an integer often enough to pick a
        # neighbouring pixel (about 1% of a 224 px output).
        j = b.const(np.arange(axis.out, dtype=np.float64), np.float64)
        inverse = b.op("Div", b.const(float(axis.out), np.float64), b.op("Cast", axis.length, to=11))
        index = b.op("Cast", b.op("Floor", b.op("Mul", j, b.op("Reciprocal", inverse))), to=1)
        index = b.op("Min", index, b.op("Sub", axis.length, b.const(1.0)))
        return b.op("Cast", _gather(b, x, axis, index), to=1)
    index, weight = _two_tap(b, axis, "linear")
    nxt = b.op("Min", b.op("Add", index, b.const(1.0)), b.op("Sub", axis.length, b.const(1.0)))
    low, high = (b.op("Cast", _gather(b, x, axis, i), to=1) for i in (index, nxt))
    shaped = _per_position(b, weight, axis, gray)
    return b.op("Add", low, b.op("Mul", shaped, b.op("Sub", high, low)))


def _sum_at(b: _Builder, x: str, running: str, axis: _Axis, position: str, gray: bool) -> str:
    """F(t) = C[floor t] + frac(t) * X[floor t], t an absolute position on the axis."""
    floor = b.op("Min", b.op("Floor", position), b.op("Sub", axis.total, b.const(1.0)))
    frac = b.op("Sub", position, floor)
    index = b.op("Cast", floor, to=7)
    shaped = _per_position(b, frac, axis, gray)
    value = b.op("Gather", x, index, axis=axis.axis)
    return b.op("Add", b.op("Gather", running, index, axis=axis.axis), b.op("Mul", shaped, value))


def _area_pass(b: _Builder, x: str, axis: _Axis, box: str, gray: bool) -> tuple[str, str]:
    """INTER_AREA along one axis, unnormalized: F(b) - F(a) with the box rule (a = j*s,
    b = (j+1)*s, norm s) where both axes shrink, else the two-tap rule (norm 1).
    Returns the tensor and the norm to divide by at the end."""
    j, s = _positions(b, axis)
    index, weight = _two_tap(b, axis, "area")
    start = b.where(box, b.op("Mul", j, s), b.op("Add", index, weight))
    stop = b.where(
        box,
        b.op("Mul", b.op("Add", j, b.const(1.0)), s),
        b.op("Add", b.op("Add", index, weight), b.const(1.0)),
    )
    start, stop = (b.op("Add", b.clamp(p, b.const(0.0), axis.length), axis.offset) for p in (start, stop))
    running = b.op("CumSum", x, b.const(axis.axis, np.int64), exclusive=1)
    out = b.op("Sub", _sum_at(b, x, running, axis, stop, gray), _sum_at(b, x, running, axis, start, gray))
    return out, b.where(box, s, b.const(1.0))


def _resize(b: _Builder, x: str, rows: _Axis, cols: _Axis, interpolation: str, gray: bool) -> str:
    if interpolation != "area":
        return _lerp_pass(b, _lerp_pass(b, x, rows, interpolation, gray), cols, interpolation, gray)
    box = b.op(
        "And",
        b.op("GreaterOrEqual", rows.length, b.const(float(rows.out))),
        b.op("GreaterOrEqual", cols.length, b.const(float(cols.out))),
    )
    summed, norm_rows = _area_pass(b, b.op("Cast", x, to=1), rows, box, gray)
    summed, norm_cols = _area_pass(b, summed, cols, box, gray)
    return b.op("Div", summed, b.op("Mul", norm_rows, norm_cols))


def _preprocessing(card: ModelCard, color: str) -> _Builder:
    """The subgraph from the ``frame`` input to the classifier's input tensor."""
    spec, b = card.input, _Builder()
    x, order = _color_first(b, "frame", color)
    rows, cols = _window(
        b, b.op("Shape", "frame"), spec.height, spec.width, card.resize.mode == "center_crop"
    )
    x = _resize(b, x, rows, cols, card.resize.interpolation, order == "GRAY")
    if spec.color == "GRAY" and order != "GRAY":
        x, order = _to_gray(b, x, order), "GRAY"
    # OpenCV rounds its 8-bit results half up (fixed-point descale).
    x = b.op("Floor", b.op("Add", x, b.const(0.5)))
    x = b.op("Clip", x, b.const(0.0), b.const(255.0))
    x = _color_last(b, x, order, spec.color)
    out = spec.name
    cast_to = 2 if spec.dtype == "uint8" else 1
    from onnx import helper

    b.nodes.append(helper.make_node("Cast", [x], [out], name="frame/to_input", to=cast_to))
    return b


def preprocessing_model(card: ModelCard, color: str, opset: int = 17) -> Any:
    """The preprocessing subgraph alone, ``frame`` in and the classifier's input tensor out:
    what the parity gate and the tests compare with :func:`cnnport.runtime.preprocess`."""
    from onnx import TensorProto, helper

    _check(card, color)
    b = _preprocessing(card, color)
    channels = FrameSpec(color=color).channels
    dtype = TensorProto.UINT8 if card.input.dtype == "uint8" else TensorProto.FLOAT
    graph = helper.make_graph(
        b.nodes,
        "cnnport-frame-preprocessing",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, ["batch", "height", "width", channels])],
        [helper.make_tensor_value_info(card.input.name, dtype, ["batch", *card.input.shape])],
        b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def frame_model(model: Any, card: ModelCard, color: str) -> Any:
    """The frame model of an exported tensor model: its graph fed by the preprocessing
    subgraph, input ``frame`` (N, H, W, C) uint8 with H and W free.

    Raises:
        ExportError: ``color`` is unknown, the model already is a frame model, or the
            card's resize filter is not one the graph builds.
    """
    import onnx
    from onnx import TensorProto, helper

    _check(card, color)
    b = _preprocessing(card, color)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    channels = FrameSpec(color=color).channels
    kept = [i for i in graph.input if i.name != card.input.name]
    frame = helper.make_tensor_value_info("frame", TensorProto.UINT8, ["batch", "height", "width", channels])
    del graph.input[:]
    graph.input.extend([frame, *kept])
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*b.nodes, *nodes])
    graph.initializer.extend(b.initializers)
    return result

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

How the resize is built. Each axis is a set of taps: for every output pixel the source
pixels it reads and their weights, with OpenCV's sampling positions and border rule (one
tap for nearest, two for linear and for area where an axis is enlarged, the area box's
``ceil(s) + 1`` where it shrinks). The taps' rows are gathered whole (the columns after
one 2-D transpose makes them the outer axis) and weighted by grouped 1x1 ``Conv``s, the
channel mix and the norm folded into the weights. Two shortcuts, both exact: nearest, and
linear outputs up to half a camera frame wide, gather every tap in uint8 before anything
becomes float (:func:`_few_taps`), and an area box with a whole-number row factor sums the uint8 rows
by ``MatMulInteger`` (:func:`_box_rows`). All index and weight vectors are computed in
the graph from the frame's shape, so one graph serves every frame size (a session with
the size fixed folds them). Cubic and Lanczos (four and eight taps) are not built: a
card with them gets a frame model refused, with the reason. docs/frame-models.md#measured
has what each step costs.

Example:
    >>> frame_model(onnx.load("digits.onnx"), card, "RGBA")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
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
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # shared with branches
    tables: dict = field(default_factory=dict)  # see shared()

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        out = f"frame/{op_type.lower()}_{next(self.numbers)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = f"frame/const_{next(self.numbers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def shared(self, key: Any, value: np.ndarray) -> str:
        """A constant made once per graph under ``key`` (the rows and columns of a square
        input read the same tables)."""
        if key not in self.tables:
            self.tables[key] = self.const(value)
        return self.tables[key]

    def dims(self, x: str, *axes: int) -> str:
        """The sizes of ``x``'s ``axes``, an int64 vector (``Shape`` then ``Gather``:
        ``Shape``'s own start and end need opset 15, and the export offers 13 and up)."""
        return self.op("Gather", self.op("Shape", x), self.const(list(axes), np.int64))

    def where(self, cond: str, yes: str, no: str) -> str:
        return self.op("Where", cond, yes, no)

    def branch(self) -> _Builder:
        """A builder for one branch of an ``If``: its own nodes, this one's names and
        constants (a branch reads them from the outer graph)."""
        return _Builder(initializers=self.initializers, numbers=self.numbers)

    def if_(
        self,
        cond: str,
        then: tuple[_Builder, list[str]],
        otherwise: tuple[_Builder, list[str]],
        dtype: int = 1,
    ) -> list[str]:
        """``If(cond)`` with two branches, each a builder and the tensors it returns (of
        ONNX type ``dtype``, float by default). Only the chosen branch runs."""
        from onnx import helper

        graphs = []
        for sub, outs in (then, otherwise):
            results = [helper.make_tensor_value_info(f"{o}/out", dtype, None) for o in outs]
            copies = [helper.make_node("Identity", [o], [f"{o}/out"], name=f"{o}/out") for o in outs]
            graphs.append(helper.make_graph([*sub.nodes, *copies], f"{outs[0]}/branch", [], results))
        name = f"frame/if_{next(self.numbers)}"
        names = [f"{name}/{i}" for i in range(len(then[1]))]
        self.nodes.append(
            helper.make_node("If", [cond], names, name=name, then_branch=graphs[0], else_branch=graphs[1])
        )
        return names


def _color_first(b: _Builder, x: str, source: str) -> tuple[str, str]:
    """The full-resolution part of the color conversion, alpha over white (it does not
    commute with the resize). Returns the tensor (uint8, or float32 when composited) and
    its channel order; gray comes as (N, H, W).

    Every full-resolution tensor keeps a channel axis of three (four for an opaque frame
    resized as it is), or none: onnxruntime's CPU kernels broadcast over a trailing axis
    of one element by element, about 200 times slower than over a flat tensor (8 ms
    instead of 0.04 ms for one 640x480 Add), and its transpose optimizer undoes a
    channels-first detour.
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


def _opaque(b: _Builder, x: str) -> str:
    """Whether every alpha of the (N, H, W, 4) uint8 frames is 255: the color bytes raised
    to 255 by a Max with a (W*4,) mask, then one ReduceMin over everything (onnxruntime
    reduces a whole tensor about 20 times faster than along an axis of four)."""
    mask = b.op("Tile", b.const([255, 255, 255, 0], np.uint8), b.dims(x, 2))  # (W*4,)
    masked = b.op("Max", b.op("Reshape", x, b.const([0, 0, -1], np.int64)), mask)
    return b.op("Equal", b.op("ReduceMin", masked, keepdims=0), b.const(255, np.uint8))


def _channel_mix(order: str, target: str) -> np.ndarray:
    """The (C_out, C_in) matrix from the resized tensor's channels (``order``) to the
    model's (``target``): a permutation for BGR to RGB, OpenCV's gray weights
    (B*3735 + G*19235 + R*9798) / 2**15 (color_rgb.simd.hpp, checked against
    cv2.cvtColor) for color to gray, copies for gray to RGB. It is folded into the
    column pass's weights, so it costs nothing of its own. OpenCV rounds the gray of each
    full-size pixel before resizing; this rounds once after, the same up to one level."""
    if order == "GRAY":
        return np.ones((1 if target == "GRAY" else 3, 1))
    if target == "GRAY":  # an alpha channel (an opaque frame's) weighs nothing
        return np.array([[_GRAY_WEIGHTS.get(c, 0.0) / 32768.0 for c in order]])
    return np.array([[1.0 if o == c else 0.0 for c in order] for o in target])


@dataclass(frozen=True)
class _Axis:
    """One axis of the resize: the window's offset and length (the center crop; the whole
    axis when stretching), float scalars in the graph, and the output length; for nearest
    and area also OpenCV's double-precision source index ``sx`` and (area) fraction ``fx``
    of each output pixel (:func:`_double_positions`), float32 vectors."""

    offset: str
    length: str
    out: int
    sx: str | None = None
    fx: str | None = None


def _window(
    b: _Builder, shape: str, height: int, width: int, crop: bool, interpolation: str
) -> tuple[_Axis, _Axis]:
    axes = _crop_window(b, shape, height, width, crop)
    if interpolation == "linear":
        return axes
    return tuple(replace(a, **_double_positions(b, a, interpolation == "area")) for a in axes)


def _crop_window(b: _Builder, shape: str, height: int, width: int, crop: bool) -> tuple[_Axis, _Axis]:
    dims = [b.op("Cast", b.op("Gather", shape, b.const(i, np.int64)), to=1) for i in (1, 2)]
    if not crop:
        zero = b.const(0.0)
        return _Axis(zero, dims[0], height), _Axis(zero, dims[1], width)
    # preprocess.crop_window: scale = min(H/h, W/w); crop = round(size*scale) (half to even,
    # as Python's round); offset = (H - crop) // 2.
    scale = b.op(
        "Min", b.op("Div", dims[0], b.const(float(height))), b.op("Div", dims[1], b.const(float(width)))
    )
    axes = []
    for total, size in zip(dims, (height, width), strict=True):
        length = b.op("Round", b.op("Mul", scale, b.const(float(size))))
        offset = b.op("Floor", b.op("Div", b.op("Sub", total, length), b.const(2.0)))
        axes.append(_Axis(offset, length, size))
    return axes[0], axes[1]


def _scale(b: _Builder, axis: _Axis) -> str:
    """The scale s = length / n of one axis."""
    return b.op("Div", axis.length, b.const(float(axis.out)))


def _positions(b: _Builder, axis: _Axis) -> tuple[str, str]:
    """Output pixel indices j (0..n-1) as floats, and the scale s = length / n."""
    return b.const(np.arange(axis.out, dtype=np.float32)), _scale(b, axis)


# Frames up to this many pixels per side get OpenCV's double-precision source indices
# exactly (:func:`_double_positions`); beyond, an index may land one pixel off OpenCV's.
_EXACT_LIMIT = 4096


@functools.cache
def _excess(n: int) -> np.ndarray:
    """What decides, for an output of n pixels, whether OpenCV's double-precision
    floor(j * fl(1 / fl(n / L))) lands one below the exact floor(j*L / n) = k:
    ``excess[L]``, the relative error eps = 1 - r*n/L of r = fl(1 / fl(n / L)) times
    2**53, against :func:`_threshold`'s ``threshold[k]``. Only where j*L/n is a whole
    number k can it differ: the product k*(1 - eps) rounds below k when k*eps exceeds
    half the double spacing below k, that is when excess > 2**e / k (2**e <= k <
    2**(e+1); 0.5 at a power of two). Cached: an export builds the graph several times."""
    from fractions import Fraction

    excess = np.zeros(_EXACT_LIMIT + 1, np.float32)
    for length in range(1, _EXACT_LIMIT + 1):
        r = 1.0 / (n / length)  # IEEE double, as resize.cpp computes it
        excess[length] = float((1 - Fraction(r) * n / length) * 2**53)
    return excess


@functools.cache
def _threshold() -> np.ndarray:
    """``threshold[k]`` of :func:`_excess`, the same for every n."""
    threshold = np.full(_EXACT_LIMIT + 1, np.inf, np.float32)  # k = 0 never drops
    for k in range(1, _EXACT_LIMIT + 1):
        e = k.bit_length() - 1
        threshold[k] = 0.5 if k == 1 << e else 2.0**e / k
    return threshold


def _double_positions(b: _Builder, axis: _Axis, area: bool) -> dict[str, str]:
    """OpenCV's source index sx = floor(j * (1 / inv)) of each output pixel, inv = n /
    length, as resize.cpp computes it in double precision (nearest's index, and area's
    on an enlarged axis), and for area the fraction fx = (j+1) - (sx+1) * inv.

    Without double-precision operators (the WebGPU build of onnxruntime-web cannot place
    them: "Provider type for Cast node ... is not set"): the exact k = floor(j*length / n)
    from float32 products of whole numbers (exact below 2**24), then one pixel less where
    j*length/n is whole and OpenCV's roundings land below it (:func:`_excess`,
    looked up by the frame's length; checked against the double formula on 18.7 million
    (j, length, n) triples, n < 1025, lengths < 2000: no difference). fx is then exact
    too, ((j+1)*length - (sx+1)*n) / length. A float32 chain, floor(j * (length / n)),
    picked a neighbouring pixel for about 1% of a 224 px nearest output, and for area,
    whose fraction rule is not continuous in sx, up to 250 levels off (100 px to 230)."""
    excess, threshold = b.shared(("excess", axis.out), _excess(axis.out)), b.shared("threshold", _threshold())
    j, n = b.const(np.arange(axis.out, dtype=np.float32)), b.const(float(axis.out))
    product = b.op("Mul", j, axis.length)
    whole = b.op("Floor", b.op("Div", product, n))
    limit = b.const(float(_EXACT_LIMIT))
    at_length = b.op("Gather", excess, b.op("Cast", b.op("Min", axis.length, limit), to=7))
    at_k = b.op("Gather", threshold, b.op("Cast", b.op("Min", whole, limit), to=7))
    below = b.op("And", b.op("Equal", b.op("Mul", whole, n), product), b.op("Greater", at_length, at_k))
    index = b.op("Sub", whole, b.op("Cast", below, to=1))
    positions = {"sx": index}
    if area:
        one = b.const(1.0)
        ahead = b.op("Mul", b.op("Add", j, one), axis.length)
        fx = b.op("Div", b.op("Sub", ahead, b.op("Mul", b.op("Add", index, one), n)), axis.length)
        positions["fx"] = fx
    return positions


def _two_tap(b: _Builder, axis: _Axis, mode: str) -> tuple[str, str]:
    """OpenCV's source index and weight of each output pixel, border rule included:
    linear samples (j+0.5)*s-0.5 (a float32 index landing one below is harmless here: the
    weight moves with it); area-when-enlarging takes the axis' double-precision index sx and
    fraction fx, weight fx <= 0 ? 0 : fx - floor(fx); an index outside [0, length-1] is
    clamped with weight 0."""
    if mode == "linear":
        j, s = _positions(b, axis)
        position = b.op("Sub", b.op("Mul", b.op("Add", j, b.const(0.5)), s), b.const(0.5))
        index = b.op("Floor", position)
        weight = b.op("Sub", position, index)
    else:
        index, fx = axis.sx, axis.fx
        weight = b.where(
            b.op("LessOrEqual", fx, b.const(0.0)), b.const(0.0), b.op("Sub", fx, b.op("Floor", fx))
        )
    zero, last = b.const(0.0), b.op("Sub", axis.length, b.const(1.0))
    weight = b.where(b.op("Less", index, zero), zero, weight)
    index = b.op("Max", index, zero)
    weight = b.where(b.op("GreaterOrEqual", index, last), zero, weight)
    return b.op("Min", index, last), weight


def _pairs(b: _Builder, axis: _Axis, mode: str) -> tuple[str, str]:
    """OpenCV's two taps of each output pixel as (n, 2) indices in the window and weights."""
    one, column = b.const(1.0), b.const([-1, 1], np.int64)
    low, weight = _two_tap(b, axis, mode)
    high = b.op("Min", b.op("Add", low, one), b.op("Sub", axis.length, one))
    index = b.op("Concat", b.op("Reshape", low, column), b.op("Reshape", high, column), axis=1)
    weights = b.op(
        "Concat", b.op("Reshape", b.op("Sub", one, weight), column), b.op("Reshape", weight, column), axis=1
    )
    return index, weights


def _box(b: _Builder, axis: _Axis, scale: str | None) -> tuple[str, str]:
    """The area box's taps where both axes shrink: the L = ceil(s) + 1 pixels from
    floor(j*s), each weighted by its overlap with [j*s, (j+1)*s) clipped to the window
    (OpenCV's area average times s), times ``scale``. (n, L) indices in the window and
    weights."""
    zero, one, column = b.const(0.0), b.const(1.0), b.const([-1, 1], np.int64)
    j, s = _positions(b, axis)
    t = b.op("Range", zero, b.op("Add", b.op("Ceil", s), one), one)  # (L,)
    start = b.op("Reshape", b.op("Mul", j, s), column)  # (n, 1)
    ends = b.const(np.arange(1, axis.out + 1, dtype=np.float32))
    stop = b.op("Reshape", b.op("Min", b.op("Mul", ends, s), axis.length), column)
    pixel = b.op("Add", b.op("Floor", start), t)  # (n, L)
    # |[a, b) & [p, p+1)| = clip(b - p, 0, 1) - clip(a - p, 0, 1), as b >= a.
    overlap = b.op(
        "Sub",
        b.op("Clip", b.op("Sub", stop, pixel), zero, one),
        b.op("Clip", b.op("Sub", start, pixel), zero, one),
    )
    index = b.op("Min", pixel, b.op("Sub", axis.length, one))
    return index, overlap if scale is None else b.op("Mul", overlap, scale)


def _taps(
    b: _Builder, axis: _Axis, interpolation: str, box: str | None = None, scale: str | None = None
) -> tuple[str, str | None]:
    """OpenCV's taps along one axis: the absolute source index of each tap, (n, L) int64,
    and its weight, (n, L) float (None for nearest: one tap of weight one).

    nearest: the axis' double-precision index (:func:`_double_positions`). linear: two
    taps (:func:`_two_tap`).
    area: the box (:func:`_box`, its weights times ``scale``) where both axes shrink
    (``box``), else OpenCV's two taps for an enlarged axis, chosen per frame size by an
    ``If`` so that only one is computed.
    """
    if interpolation == "nearest":
        index = b.op("Min", axis.sx, b.op("Sub", axis.length, b.const(1.0)))
        index, weight = b.op("Reshape", index, b.const([-1, 1], np.int64)), None
    elif interpolation == "linear":
        index, weight = _pairs(b, axis, "linear")
    else:
        shrink, enlarge = b.branch(), b.branch()
        index, weight = b.if_(
            box, (shrink, list(_box(shrink, axis, scale))), (enlarge, list(_pairs(enlarge, axis, "area")))
        )
    return b.op("Cast", b.op("Add", index, axis.offset), to=7), weight


def _rows_pass(b: _Builder, x: str, taps: tuple, n: int, uint8: bool) -> str:
    """(N, H, W*C) frame rows -> (N, n, W*C) float: the taps' rows gathered (whole rows,
    so every copy is long) and weighted (:func:`_weighted`)."""
    index, weight = taps
    gathered = b.op("Gather", x, index, axis=1)  # (N, n, L, W*C)
    if uint8:
        gathered = b.op("Cast", gathered, to=1)
    if weight is None:
        return b.op("Reshape", gathered, b.const([0, 0, -1], np.int64))
    target = b.op("Concat", b.const([0, -1], np.int64), b.dims(gathered, 3), axis=0)
    return _weighted(b, b.op("Reshape", gathered, target), weight, n, 1)  # (N, n*L, W*C) in


def _weighted(b: _Builder, x: str, weight: str, n: int, c_out: int, bias: float = 0.0) -> str:
    """(N, n*K, R) -> (N, n*c_out, R): group g of K rows weighted by ``weight`` (n*c_out, K)
    into c_out rows, plus ``bias``, as a grouped 1x1 ``Conv`` (n groups). It is the batched
    MatMul (c_out, K) @ (K, R) per group, about a third faster in onnxruntime for these
    small K (the MatMul packs every group's right side first)."""
    kernel = b.op("Unsqueeze", weight, b.const([2], np.int64))  # (n*c_out, K, 1)
    inputs = [x, kernel] + ([b.const(np.full(n * c_out, bias))] if bias else [])
    return b.op("Conv", *inputs, group=n, kernel_shape=[1])


def _box_rows(b: _Builder, x: str, rows: _Axis, crop: bool, whole: str) -> str:
    """The area box along the rows when the window's height is a whole multiple k of the
    output's (640x480 to 32 or 96, say): the frame's uint8 rows summed k at a time by one
    batched MatMulInteger, exact (every weight is one), with no float pass over the full
    frame. (N, H, W*C) uint8 -> (N, n, W*C) float, unnormalized (times k).

    Its shapes stay valid for frames it is not taken for (k becomes 1 there), because
    onnxruntime infers both branches of an ``If`` when the frame's size is fixed at load
    (what :class:`cnnport.runtime.Engine` does for a camera's frames)."""
    if crop:
        vector = b.const([1], np.int64)
        start = b.op("Reshape", b.op("Cast", rows.offset, to=7), vector)
        stop = b.op("Reshape", b.op("Cast", b.op("Add", rows.offset, rows.length), to=7), vector)
        x = b.op("Slice", x, start, stop, vector)
    k = b.where(whole, b.op("Div", rows.length, b.const(float(rows.out))), b.const(1.0))
    k = b.op("Reshape", b.op("Cast", k, to=7), b.const([1], np.int64))
    batch, row = b.dims(x, 0), b.dims(x, 2)
    windows = b.op("Reshape", x, b.op("Concat", b.const([-1], np.int64), k, row, axis=0))
    ones = b.op("Expand", b.const([[1]], np.uint8), b.op("Concat", b.const([1], np.int64), k, axis=0))
    summed = b.op("MatMulInteger", ones, windows)  # (N*n, 1, W*C) int32
    shape = b.op("Concat", batch, b.const([-1], np.int64), row, axis=0)
    return b.op("Cast", b.op("Reshape", summed, shape), to=1)


# What the last pass of linear and area adds before the floor: OpenCV's half (it rounds
# half up) and a little more. A value exactly on a rounding boundary (x.5: neighbours a
# level apart under half weights, common in real frames) comes out of the float sums a
# few ulps either side of it by the runtime's summation order (onnxruntime 194.99998,
# OpenVINO 195.00003 for one of them); 2**-12 lifts them all over it, so every runtime
# rounds it up. The price: a value whose exact fraction lies in [0.5 - 2**-12, 0.5) rounds
# up too, and OpenCV (which rounds its fixed-point intermediates) often does not, so the
# graph is a little further from training's pixels. On a user's photos (session 16,
# scratch): onnxruntime and OpenVINO differ on 0.17% of a 180 px stretch's values instead
# of 1.27% and on 0.06% of a 224 crop's instead of 0.31%, while the values one level from
# OpenCV go from 8.12% to 8.86% and from 7.82% to 7.89% (area: 0.45% to 0.32%). Nearest
# keeps 0.5: its sums are exact (whole levels, or the gray mix's 2**-15 grid, which
# 2**-12 would push over).
_HALF = 0.5 + 2.0**-12


def _half(interpolation: str) -> float:
    """What the last pass adds before the floor (:data:`_HALF`; 0.5 for nearest)."""
    return 0.5 if interpolation == "nearest" else _HALF


def _columns_pass(b: _Builder, x: str, cols: _Axis, m: int, taps: tuple, mix: np.ndarray, half: float) -> str:
    """(N, m, W*C) float -> (N, n, C_out, m): the column taps and the channel mix in one
    grouped Conv (:func:`_weighted`). One 2-D transpose makes the columns the outer axis,
    (N, m, W*C) to (N, W, C*m), so the taps gather whole rows again: a gather along the
    width of (N, m, W, C) copies one pixel at a time and is several times slower. The
    result stays columns-first; :func:`_round` turns it to NHWC after rounding. It comes
    plus ``half`` (:func:`_half`), as the Conv's bias (one pass less)."""
    index, weight = taps
    c_out, c_in = mix.shape
    flipped = b.op("Reshape", b.op("Transpose", x, perm=[0, 2, 1]), b.const([0, -1, c_in * m], np.int64))
    gathered = b.op("Gather", flipped, index, axis=1)  # (N, n, L, C*m)
    gathered = b.op("Reshape", gathered, b.const([0, -1, m], np.int64))  # (N, n*L*C, m)
    out = _weighted(
        b, gathered, _mixed(b, weight, cols.out, mix), cols.out, c_out, bias=half
    )  # (N, n*C_out, m)
    return b.op("Reshape", out, b.const([0, cols.out, c_out, m], np.int64))  # (N, n, C_out, m)


def _mixed(b: _Builder, weight: str | None, n: int, mix: np.ndarray) -> str:
    """The column taps' weights (n, L) times the channel mix (C_out, C_in), as the
    (n*C_out, L*C_in) kernel of :func:`_weighted`; nearest (``weight`` None) has one tap
    of weight one."""
    c_out, c_in = mix.shape
    if weight is None:
        weight = b.const(np.ones((n, 1)))
    tap = b.op("Unsqueeze", weight, b.const([1, 3], np.int64))  # (n, 1, L, 1)
    mixed = b.op("Mul", tap, b.const(mix.reshape(1, c_out, 1, c_in)))  # (n, C_out, L, C)
    return b.op("Reshape", mixed, b.const([n * c_out, -1], np.int64))


def _few_taps(
    b: _Builder, x: str, rows: _Axis, cols: _Axis, interpolation: str, mix: np.ndarray, uint8: bool
) -> tuple[str, str]:
    """Nearest, and linear for outputs at most ``_FEW_TAPS_MAX_WIDTH`` wide (where a
    camera frame shrinks a lot; :func:`_takes_few_taps`): every tap is gathered in the
    frame's own type before anything becomes float (the rows, one 2-D transpose, the
    columns: whole rows each time), so only the values the taps read are cast. Then a
    grouped 1x1 Conv applies the column weights and the channel mix (the row taps ride on
    its spatial axis), and after one 2-D transpose a second one the row weights, the rows
    its groups. Returns the model's pixels plus 0.5, float, and their layout: (N, m, n,
    C_out) "NHWC" for linear, (N, n, C_out, m) "NWCH" for nearest (no row weights)."""
    index, row_weight = _taps(b, rows, interpolation)  # (m, L)
    taps, m = (1 if row_weight is None else 2), rows.out
    c_out, c_in = mix.shape
    picked = b.op("Gather", x, index, axis=1)  # (N, m, L, W*C)
    picked = b.op("Reshape", picked, b.const([0, m * taps, -1], np.int64))
    flipped = b.op("Transpose", picked, perm=[0, 2, 1])  # (N, W*C, m*L)
    flipped = b.op("Reshape", flipped, b.const([0, -1, c_in * m * taps], np.int64))  # (N, W, C*m*L)
    index, column_weight = _taps(b, cols, interpolation)
    picked = b.op("Gather", flipped, index, axis=1)  # (N, n, L, C*m*L)
    picked = b.op("Reshape", picked, b.const([0, -1, m * taps], np.int64))  # (N, n*L*C, m*L)
    if uint8:
        picked = b.op("Cast", picked, to=1)
    mixed = _mixed(b, column_weight, cols.out, mix)
    if row_weight is None:
        out = _weighted(b, picked, mixed, cols.out, c_out, bias=_half(interpolation))  # (N, n*C_out, m)
        return b.op("Reshape", out, b.const([0, cols.out, c_out, m], np.int64)), "NWCH"
    out = _weighted(b, picked, mixed, cols.out, c_out)  # (N, n*C_out, m*L)
    # The row weights by a second grouped Conv, the rows its groups, after one 2-D
    # transpose: (N, m*L, n*C_out) -> (N, m, n*C_out), already NHWC.
    out = _weighted(b, b.op("Transpose", out, perm=[0, 2, 1]), row_weight, m, 1, bias=_half(interpolation))
    return b.op("Reshape", out, b.const([0, m, cols.out, c_out], np.int64)), "NHWC"


# Linear gathers every tap before anything becomes float (:func:`_few_taps`) for outputs
# at most this wide, half a 640-pixel camera frame, where that casts fewer values at the
# price of one more transpose; wider outputs (384 from 640) cost less with the row pass
# over the full width. Nearest (one tap) always does. Measured side by side on a 640x480
# BGR frame, 1 and 2 threads (session 17, a 2-core Xeon without AMX): linear 224 0.74 /
# 0.55 ms against 0.90 / 0.64 for the row pass, 299 1.38 / 0.93 against 1.41 / 0.98, 384
# 2.19 / 1.43 against 1.89 / 1.29; nearest 224 0.19 / 0.22 against 0.47 / 0.41
# (docs/frame-models.md#measured). The AMD EPYC of session 8 had measured linear 224 at
# 0.94x / 1.13x, when the limit was set to a third of the frame. The choice is fixed at
# export, as an ``If`` on the frame's width measured slower than either; both give
# OpenCV's pixels within one level.
_FEW_TAPS_MAX_WIDTH = 640 // 2


def _takes_few_taps(interpolation: str, width: int) -> bool:
    """Whether the resize to ``width`` gathers every tap first (:data:`_FEW_TAPS_MAX_WIDTH`)."""
    return interpolation == "nearest" or (interpolation == "linear" and width <= _FEW_TAPS_MAX_WIDTH)


def _round(b: _Builder, x: str, layout: str, spec: Any) -> str:
    """The resized pixels plus :data:`_HALF` (0.5 for nearest; the column or row pass adds it) rounded and
    typed as the model's input, NHWC. OpenCV rounds its 8-bit results half up (fixed-point
    descale): floor(x + 0.5). Every filter built here is a convex sum (weights >= 0
    summing to one), so x + 0.5 lies in [0, 256) and needs no clip, and a uint8 input
    takes the floor from Cast alone, which truncates (tests/export/test_frame.py checks
    onnxruntime's CPU kernel against the floor; the JS tests hold onnxruntime-node's and
    WebAssembly's answers to Python's). A columns-first
    result (N, w, C, h) takes one 4-D transpose after the cast: where the model begins
    with its own NHWC -> NCHW transpose, onnxruntime merges the two."""
    x = b.op("Cast", x, to=2) if _input_type(spec) == 2 else b.op("Floor", x)
    return b.op("Transpose", x, perm=[0, 3, 1, 2]) if layout == "NWCH" else x


def _input_type(spec: Any) -> int:
    """The ONNX element type of the model's input: uint8 (2) or float (1)."""
    return 2 if spec.dtype == "uint8" else 1


def _resize(b: _Builder, x: str, rows: _Axis, cols: _Axis, card: ModelCard, order: str, uint8: bool) -> str:
    """The card's resize and color conversion of ``x`` ((N, H, W, C) or gray (N, H, W);
    uint8 when ``uint8``, else float) to the model's input, rounded, NHWC (no trailing
    axis of one on the way: onnxruntime broadcasts over one element by element)."""
    interpolation, crop, spec = card.resize.interpolation, card.resize.mode == "center_crop", card.input
    flat = b.op("Reshape", x, b.const([0, 0, -1], np.int64))  # (N, H, W*C)
    mix = _channel_mix(order, card.input.color)
    if _takes_few_taps(interpolation, cols.out):
        return _round(b, *_few_taps(b, flat, rows, cols, interpolation, mix, uint8), spec)
    if interpolation != "area":
        summed = _rows_pass(b, flat, _taps(b, rows, interpolation), rows.out, uint8)
        taps = _taps(b, cols, interpolation)
        summed = _columns_pass(b, summed, cols, rows.out, taps, mix, _half(interpolation))
        return _round(b, summed, "NWCH", spec)
    box = b.op(
        "And",
        b.op("GreaterOrEqual", rows.length, b.const(float(rows.out))),
        b.op("GreaterOrEqual", cols.length, b.const(float(cols.out))),
    )
    per_row = _scale(b, rows)
    general = b.branch()
    summed = _rows_pass(general, flat, _taps(general, rows, "area", box), rows.out, uint8)
    if uint8:
        whole = b.op("And", box, b.op("Equal", b.op("Floor", per_row), per_row))
        exact = b.branch()
        (summed,) = b.if_(whole, (exact, [_box_rows(exact, flat, rows, crop, whole)]), (general, [summed]))
    else:
        b.nodes.extend(general.nodes)
    # Both passes sum unnormalized; the box's norm, 1 / (s_rows * s_cols), rides on the
    # column weights (the two-tap rule of an enlarged axis has none).
    norm = b.op("Reciprocal", b.op("Mul", per_row, _scale(b, cols)))
    summed = _columns_pass(b, summed, cols, rows.out, _taps(b, cols, "area", box, norm), mix, _half("area"))
    return _round(b, summed, "NWCH", spec)


def _preprocessing(card: ModelCard, color: str) -> _Builder:
    """The subgraph from the ``frame`` input to the classifier's input tensor."""
    spec, b = card.input, _Builder()
    shape = b.op("Shape", "frame")
    crop = card.resize.mode == "center_crop"
    rows, cols = _window(b, shape, spec.height, spec.width, crop, card.resize.interpolation)
    if color in ("RGBA", "BGRA"):
        # Alpha over white costs several float passes over the full frame, and a camera's
        # (a canvas') frames are opaque: there it changes nothing, and the uint8 frame is
        # resized as it is, its alpha channel weighing nothing in the channel mix.
        opaque, composite = b.branch(), b.branch()
        x, order = _color_first(composite, "frame", color)
        x = _resize(composite, x, rows, cols, card, order, False)
        direct = _resize(opaque, "frame", rows, cols, card, color, True)
        (x,) = b.if_(_opaque(b, "frame"), (opaque, [direct]), (composite, [x]), _input_type(spec))
    else:
        x, order = _color_first(b, "frame", color)
        x = _resize(b, x, rows, cols, card, order, True)
    from onnx import helper

    b.nodes.append(helper.make_node("Identity", [x], [spec.name], name="frame/to_input"))
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

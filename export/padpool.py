"""Zero padding before a max pool, rewritten so that onnxruntime cannot fuse it wrongly.

Keras' ``ZeroPadding2D`` -> ``MaxPooling2D`` (ResNet50V2's stem, and any user model that
pads before pooling) becomes ONNX ``Pad(0) -> MaxPool``. onnxruntime's graph optimizer
(PadFusion, from its basic level on, measured with 1.31) folds such a Pad into the
MaxPool's ``pads`` attribute; but MaxPool ignores padded cells (as if they were -inf),
so every window that touches the border and holds only negative values changes: 0
becomes the largest negative value. On ResNet50V2 the logits moved by 6.6 (exported by
cnnport or by stock tf2onnx alike), top-1 agreement 38%. With graph optimizations off,
onnxruntime computed the same graph correctly.

The rewrite computes the same values in a form no optimizer needs to fold:
``Max(MaxPool(x, pads), border)``, where ``border`` is a constant (1, 1, H', W') map that
is 0 for output cells whose window reaches into the padding (the zero the Pad would have
supplied) and the lowest float elsewhere. It needs the static spatial size of the pooled
tensor, which cnnport's exports have; a pool whose size is unknown is left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["protect_zero_padded_maxpool"]

logger = logging.getLogger(__name__)


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _zero_constant(graph: Any, pad: Any, values: dict[str, np.ndarray]) -> bool:
    mode = _attributes(pad).get("mode", b"constant")
    if mode not in (b"constant", "constant"):
        return False
    if len(pad.input) > 2 and pad.input[2]:
        constant = values.get(pad.input[2])
        return constant is not None and constant.size == 1 and float(constant.reshape(-1)[0]) == 0.0
    return True


def _touches(size: int, before: int, kernel: int, stride: int, dilation: int, out: int) -> np.ndarray:
    """For each output position along one axis: does its window reach a padded cell?"""
    starts = np.arange(out) * stride
    ends = starts + dilation * (kernel - 1)
    return (starts < before) | (ends >= before + size)


def _border(spatial: tuple[int, int], pads: list[int], pool: dict[str, Any], dtype: np.dtype) -> np.ndarray:
    (height, width), (top, left, bottom, right) = spatial, pads
    kernel = pool["kernel_shape"]
    strides = pool.get("strides", [1, 1])
    dilations = pool.get("dilations", [1, 1])
    sizes = []
    for size, before, after, k, s, d in zip(
        (height, width), (top, left), (bottom, right), kernel, strides, dilations, strict=True
    ):
        span = size + before + after - d * (k - 1) - 1
        sizes.append(span // s + 1)
    rows = _touches(height, top, kernel[0], strides[0], dilations[0], sizes[0])
    cols = _touches(width, left, kernel[1], strides[1], dilations[1], sizes[1])
    touched = rows[:, None] | cols[None, :]
    return np.where(touched, 0, np.finfo(dtype).min).astype(dtype)[None, None]


def _shapes(proto: Any) -> dict[str, tuple]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return shapes


def protect_zero_padded_maxpool(proto: Any) -> Any:
    """Rewrites every ``Pad(0) -> MaxPool`` (2-D, NCHW) as ``Max(MaxPool(pads), border)``."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    shapes: dict[str, tuple] | None = None
    rewritten = 0
    for pad in [n for n in graph.node if n.op_type == "Pad" and n.domain in ("", "ai.onnx")]:
        users = consumers.get(pad.output[0], [])
        if len(users) != 1 or users[0].op_type != "MaxPool" or len(users[0].output) != 1:
            continue
        pool = users[0]
        attributes = _attributes(pool)
        pads = values.get(pad.input[1]) if len(pad.input) > 1 else None
        if (
            pads is None
            or pads.size != 8
            or pads[[0, 1, 4, 5]].any()  # batch and channel pads
            or (pads < 0).any()
            or any(attributes.get("pads", [0] * 4))
            or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or len(attributes.get("kernel_shape", [])) != 2
            or attributes.get("ceil_mode", 0)  # Keras never asks for it; its sizes have extra rules
            or not _zero_constant(graph, pad, values)
        ):
            continue
        shapes = shapes if shapes is not None else _shapes(proto)
        shape = shapes.get(pad.input[0])
        if not shape or len(shape) != 4 or None in shape[2:]:
            continue
        spatial_pads = [int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7])]
        border = _border(shape[2:], spatial_pads, attributes, np.dtype(np.float32))
        border_name = f"{pool.name}_zero_pad_border"
        graph.initializer.append(numpy_helper.from_array(border, border_name))
        pooled = f"{pool.output[0]}_unpadded"
        new_attributes = {k: v for k, v in attributes.items() if k != "pads"}
        new_pool = helper.make_node(
            "MaxPool", [pad.input[0]], [pooled], name=pool.name, pads=spatial_pads, **new_attributes
        )
        maximum = helper.make_node("Max", [pooled, border_name], [pool.output[0]], name=f"{pool.name}_border")
        index = list(graph.node).index(pool)
        graph.node.remove(pool)
        graph.node.insert(index, maximum)
        graph.node.insert(index, new_pool)
        graph.node.remove(pad)
        rewritten += 1
    if rewritten:
        logger.info(
            "rewrote %d zero Pad -> MaxPool pair(s) so onnxruntime cannot fuse them wrongly", rewritten
        )
    return proto

"""Two rewrites of the converted graph, each measured to pay (see benchmarks/tuning.py).

``fold_weight_layout``: nodes that only reshape, transpose or cast initializers are
computed once here and replaced by their result. tf2onnx folds them itself, but the
weights are out of its optimizer loop (lowmem), so a depthwise kernel's
Reshape -> Transpose stayed in the graph: 14 extra nodes in MobileNetV2, run by every
runtime that does not fold constants at load (OpenCV DNN, a plain interpreter).
Only data-movement ops are folded, so the values are bit-identical.

``hoist_input_layout``: tf2onnx turns the NHWC image into the NCHW that ONNX convolutions
take with a Transpose (a Reshape when there is one channel) *after* the uint8 -> float
Cast and the Rescaling layer's scalar Mul/Add. Moving it to the graph input, before the
Cast (before the Mul/Add of a float32-input graph), gives onnxruntime a plain
Cast -> Mul -> Conv chain: LeNet-5 on digits went from
0.048 to 0.032 ms a call on this CPU (control: 0.048); it is exact because a scalar
Mul/Add does not care about the layout, and the Cast is element-wise.

Example:
    >>> proto = optimize_graph(proto)  # both, as `cnnport export` applies them  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["fold_weight_layout", "hoist_input_layout", "optimize_graph"]

logger = logging.getLogger(__name__)

_FOLDABLE = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten"}
_SCALAR_ELEMENTWISE = {"Mul", "Add", "Sub", "Div"}
_LAYOUT = {"Transpose", "Reshape"}


def optimize_graph(proto: Any) -> Any:
    """The rewrites, in the order `cnnport export` applies them to a converted graph.

    Besides the two above, a correctness rewrite: zero padding before a max pool is
    kept out of onnxruntime's reach (padpool.py explains the bug it avoids).
    """
    from .padpool import protect_zero_padded_maxpool

    return protect_zero_padded_maxpool(hoist_input_layout(fold_weight_layout(proto)))


def fold_weight_layout(proto: Any) -> Any:
    """Replaces data-movement nodes whose inputs are all initializers by their output."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = proto.graph
    overridable = {i.name for i in graph.input}  # an initializer that is also an input can be fed
    values = {init.name: init for init in graph.initializer if init.name not in overridable}
    graph_outputs = {o.name for o in graph.output}
    opsets = list(proto.opset_import)
    folded = 0
    consumed: set[str] = set()
    for node in list(graph.node):
        inputs = [name for name in node.input if name]
        if (
            node.op_type not in _FOLDABLE
            or node.domain not in ("", "ai.onnx")
            or not inputs
            or not all(name in values for name in inputs)
            or any(out in graph_outputs for out in node.output)
        ):
            continue
        single = helper.make_model(
            helper.make_graph(
                [node],
                "fold",
                [],
                [helper.make_empty_tensor_value_info(out) for out in node.output],
                [values[name] for name in inputs],
            ),
            opset_imports=opsets,
        )
        results = ReferenceEvaluator(single).run(None, {})
        consumed.update(inputs)
        graph.node.remove(node)
        for name, value in zip(node.output, results, strict=True):
            tensor = numpy_helper.from_array(np.asarray(value), name)
            graph.initializer.append(tensor)
            values[name] = tensor
        folded += 1
    if folded:
        _drop_unused_initializers(graph, consumed)
        logger.debug("folded %d weight layout node(s)", folded)
    return proto


def _subgraph_names(graph: Any) -> set[str]:
    """Every tensor name the subgraphs of ``graph``'s nodes (If, Loop, Scan) mention."""
    from onnx import AttributeProto

    names: set[str] = set()
    for node in graph.node:
        for attribute in node.attribute:
            bodies = [attribute.g] if attribute.type == AttributeProto.GRAPH else list(attribute.graphs)
            for body in bodies:
                names |= {name for inner in body.node for name in inner.input} | _subgraph_names(body)
    return names


def _drop_unused_initializers(graph: Any, candidates: set[str]) -> None:
    """Removes the ``candidates`` (initializers folded nodes read) nothing reads any more."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    used |= _subgraph_names(graph) | {i.name for i in graph.input}
    for init in [i for i in graph.initializer if i.name in candidates and i.name not in used]:
        graph.initializer.remove(init)


def hoist_input_layout(proto: Any) -> Any:
    """Moves the NHWC -> NCHW Transpose/Reshape from after the input's Cast and/or scalar
    Mul/Add/Sub/Div to the input itself. Leaves any other graph as it is."""
    graph = proto.graph
    if len(graph.input) != 1:
        return proto
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    elsewhere = {o.name for o in graph.output} | _subgraph_names(graph)

    def only_consumer(name: str) -> Any | None:
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and name not in elsewhere else None

    start = graph.input[0].name
    chain: list[Any] = []
    flowing = start
    node = only_consumer(start)
    while node is not None and (
        (node.op_type == "Cast" and not chain) or _scalar_elementwise(initializers, node, flowing)
    ):
        chain.append(node)
        flowing = node.output[0]
        node = only_consumer(flowing)
    if not chain or node is None or node.op_type not in _LAYOUT or node.input[0] != flowing:
        return proto
    if not all(name in initializers for name in node.input[1:]):
        return proto  # a Reshape shape made by a node could come after chain[0]: keep the order simple
    layout = node
    # input -> layout -> chain[0] ... chain[-1] -> (layout's old consumers)
    old_layout_out = layout.output[0]
    layout.input[0] = start
    layout.output[0] = _free_name(graph, f"{start}__layout")
    chain[0].input[list(chain[0].input).index(start)] = layout.output[0]
    moved = {n.output[0] for n in chain}  # their recorded NHWC shapes no longer hold
    for info in [v for v in graph.value_info if v.name in moved]:
        graph.value_info.remove(info)
    chain[-1].output[0] = old_layout_out
    nodes = list(graph.node)
    nodes.remove(layout)
    nodes.insert(nodes.index(chain[0]), layout)
    del graph.node[:]
    graph.node.extend(nodes)
    logger.debug("moved input %s before %s", layout.op_type, [n.op_type for n in chain])
    return proto


def _free_name(graph: Any, wanted: str) -> str:
    taken = {name for node in graph.node for name in (*node.input, *node.output)}
    taken |= (
        {i.name for i in graph.input} | {i.name for i in graph.initializer} | {o.name for o in graph.output}
    )
    name, count = wanted, 0
    while name in taken:
        count += 1
        name = f"{wanted}_{count}"
    return name


def _scalar_elementwise(initializers: dict[str, Any], node: Any, flowing: str) -> bool:
    """``node`` is Mul/Add/Sub/Div of ``flowing`` and a rank-0 initializer (a [1, 1, 1, 1]
    one would also broadcast the result's rank, so it does not count)."""
    if node.op_type not in _SCALAR_ELEMENTWISE or len(node.input) != 2 or flowing not in node.input:
        return False
    other = node.input[1] if node.input[0] == flowing else node.input[0]
    return other != flowing and other in initializers and len(initializers[other].dims) == 0

"""tf2onnx conversion that keeps the big weights out of tf2onnx's optimizer loop.

Why: measured on ResNet50 (100 MB of weights), stock ``tf2onnx.convert.from_function``
peaks at ~7.6 GiB, and almost all of it (1.9 -> 7.2 GiB) is in its ONNX optimizer
loop. Each of the ~24 optimizer passes (i) deep-copies the whole graph, weights
included, to be able to roll back a failing pass, and (ii) ends in
``Graph.update_proto()``, which re-copies every Const's tensor into its NodeProto;
protobuf keeps the replaced copies in the message's arena, so each pass adds about one
model's worth of memory that is never returned.

So the weights leave the graph while the optimizers run: after tf2onnx has mapped the
TensorFlow ops (its handlers may rewrite a weight, e.g. transpose a conv kernel to
OIHW, so that must happen first), every large constant of rank >= 2 becomes a graph
input of the same name, dtype and shape; the optimizers only see a tensor they cannot
fold; afterwards the values go back as initializers under the same names, byte for
byte. What tf2onnx would have folded (a depthwise kernel's Reshape -> Transpose) is
folded after that by export.graphopt.fold_weight_layout. One-dimensional constants (biases,
batch-norm scales) stay in the graph, because the transpose optimizer rewrites them
when it pushes an NCHW transpose through a Mul or Add.

Example:
    >>> graph_def = freeze(concrete, input_names, output_names)  # doctest: +SKIP
    >>> proto = convert_frozen(graph_def, input_names, output_names, opset=17)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DETACH_MIN_BYTES", "PhaseHook", "attach_weights", "convert_frozen", "detach_weights", "freeze"]

logger = logging.getLogger(__name__)

# Constants at least this large (and of rank >= 2) leave the graph during optimization.
# Small ones carry shapes, axes and paddings that tf2onnx's handlers and optimizers read.
DETACH_MIN_BYTES = 16 * 1024

PhaseHook = Callable[[str], None]


def _no_phase(name: str) -> None:
    """Default phase hook: nothing to record."""


def freeze(
    concrete: Any, input_names: list[str], output_names: list[str], on_phase: PhaseHook = _no_phase
) -> Any:
    """Variables -> constants, then grappler: tf2onnx's ``tf_loader.from_function``, leaner.

    The same two steps with the same options, minus two copies of the weights that
    tf2onnx keeps alive meanwhile: the frozen ConcreteFunction (dropped before grappler
    runs) and a TF session graph it imports only to drop resource inputs from
    ``input_names`` (ours have none: ``_tensor_names`` leaves them out).

    Returns:
        The optimized, frozen ``GraphDef``.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tf2onnx import tf_loader

    on_phase("freeze")
    try:
        frozen = convert_variables_to_constants_v2(
            concrete, lower_control_flow=False, aggressive_inlining=True
        )
    except ValueError as exc:
        if "incompatible with expected resource" not in str(exc):
            raise
        # tf2onnx repairs this case itself; take its whole (hungrier) path.
        return tf_loader.from_function(concrete, input_names, output_names)
    graph_def = tf_loader.fix_freezing_errors_part2(frozen.graph.as_graph_def(add_shapes=True))
    del frozen
    gc.collect()
    on_phase("grappler")
    # export_meta_graph (inside tf_optimize) needs graph mode; an empty graph will do.
    with tf.Graph().as_default():
        return tf_loader.tf_optimize(input_names, output_names, graph_def)


def detach_weights(graph: Any, min_bytes: int = DETACH_MIN_BYTES) -> dict[str, np.ndarray]:
    """Replaces large constants of a tf2onnx graph with graph inputs of the same name.

    Args:
        graph: a ``tf2onnx.graph.Graph`` after ``process_tf_graph``; changed in place.
        min_bytes: constants of rank >= 2 and at least this many bytes are detached.

    Returns:
        The detached values by tensor name, for ``attach_weights``.
    """
    detached: dict[str, np.ndarray] = {}
    for node in list(graph.get_nodes()):
        if not node.is_const():
            continue
        value = node.get_tensor_value(as_list=False)
        if value.ndim < 2 or value.nbytes < min_bytes:
            continue
        name = node.output[0]
        dtype, shape = graph.get_dtype(name), list(value.shape)
        # Consumers refer to the tensor by name, so a Placeholder emitting the same
        # name takes the Const's place without touching them.
        graph.remove_node(node.name)
        graph.add_graph_input(name, dtype, shape)
        detached[name] = value
    return detached


def attach_weights(proto: Any, detached: dict[str, np.ndarray]) -> None:
    """Turns the graph inputs ``detach_weights`` made back into initializers, bit-exactly.

    Inputs that the optimizers made unused (their consumers folded away) are dropped.
    """
    from onnx import numpy_helper

    used = {name for node in proto.graph.node for name in node.input}
    for graph_input in [i for i in proto.graph.input if i.name in detached]:
        proto.graph.input.remove(graph_input)
        if graph_input.name in used:
            proto.graph.initializer.append(
                numpy_helper.from_array(detached[graph_input.name], graph_input.name)
            )


def _to_onnx_graph(
    graph_def: Any, opset: int, input_names: list[str], output_names: list[str], **options: Any
):
    """tf2onnx's op mapping (``process_tf_graph``), as ``from_function`` calls it."""
    import tensorflow as tf
    from tf2onnx.tfonnx import process_tf_graph

    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(graph_def, name="")
        return process_tf_graph(
            tf_graph,
            continue_on_error=True,
            opset=opset,
            input_names=input_names,
            output_names=output_names,
            **options,
        )


def convert_frozen(
    graph_def: Any,
    input_names: list[str],
    output_names: list[str],
    opset: int,
    *,
    on_phase: PhaseHook = _no_phase,
    **options: Any,
) -> Any:
    """A frozen GraphDef -> onnx.ModelProto, with the weights detached while optimizing.

    Args:
        graph_def: from ``freeze``; the caller should drop its own reference to it, so
            that it can be freed once tf2onnx has mapped it.
        input_names: TensorFlow input tensor names (``"image:0"``).
        output_names: TensorFlow output tensor names.
        opset: ONNX opset.
        on_phase: called with each phase's name as it starts (memory timelines).
        **options: passed to ``process_tf_graph`` (custom_op_handlers, tensors_to_rename).
    """
    from tf2onnx import optimizer

    on_phase("tf2onnx-process")
    graph = _to_onnx_graph(graph_def, opset, input_names, output_names, **options)
    del graph_def
    on_phase("detach-weights")
    detached = detach_weights(graph)
    gc.collect()  # the TF graph and tf2onnx's copies of the weights are cycles
    logger.debug(
        "detached %d weight tensor(s), %.1f MiB",
        len(detached),
        sum(v.nbytes for v in detached.values()) / 2**20,
    )
    on_phase("tf2onnx-optimize")
    graph = optimizer.optimize_graph(graph, catch_errors=True)
    on_phase("make-model")
    proto = graph.make_model(f"converted by cnnport from {', '.join(output_names)}")
    del graph
    on_phase("attach-weights")
    attach_weights(proto, detached)
    return proto

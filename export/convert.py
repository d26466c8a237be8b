"""Keras -> ONNX with tf2onnx, from a concrete tf.function that we build ourselves.

Why not ``tf2onnx.convert.from_keras``: it traces the model with whatever Keras does
inside, including grouped convolutions wrapped in a nested ``jit_compile=True``
function (ConvNeXt), which tf2onnx turns into an invalid graph without raising. Here
the function is traced with that XLA wrapper replaced by the plain convolution and
Fourier transforms as DFT matmuls (fourier.py), the exact GELU's ``Erfc`` gets a handler, and the function takes raw uint8 pixels and
returns both the probabilities and the logits (for the parity gate).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from .cam import CAM_OUTPUT, find_cam
from .errors import ConversionError, SourceModelError
from .fourier import dft_as_matmul
from .heads import InputScaling, classifier_heads, find_head, resolve_head
from .lowmem import PhaseHook, convert_frozen, freeze

__all__ = ["classifier_function", "convert", "logits_model"]

logger = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAMES = ("probabilities", "logits", CAM_OUTPUT)  # class_maps only when asked for


def logits_model(
    model: Any, head: str = "auto", scaling: InputScaling | None = None, cam: bool = False
) -> Any:
    """A function of raw float pixels returning ``[probabilities, logits]`` (see heads.py),
    and ``class_maps`` third with ``cam`` (see cam.py).

    Args:
        head: the head choice (heads.HEAD_CHOICES), resolved against this model's graph.
        cam: also compute the class activation maps.

    Raises:
        SourceModelError: the model's head is not a classifier head cnnport knows, or
            does not fit ``head``, or ``cam`` was asked of a model without a CAM head.
    """
    cam_head = None
    if cam:
        cam_head = find_cam(model)
        if isinstance(cam_head, str):
            raise SourceModelError(cam_head)
    return classifier_heads(model, resolve_head(find_head(model), head), scaling, cam_head)


def classifier_function(
    model: Any,
    shape: tuple[int, int, int],
    input_dtype: str,
    head: str = "auto",
    scaling: InputScaling | None = None,
    cam: bool = False,
) -> tuple[Any, Any]:
    """A jit-free tf.function: raw pixels named "image" -> {probabilities, logits[, class_maps]}.

    Returns:
        The tf.function and its input signature (dynamic batch axis).
    """
    import tensorflow as tf

    heads = logits_model(model, head, scaling, cam)
    dtype = tf.uint8 if input_dtype == "uint8" else tf.float32
    signature = [tf.TensorSpec((None, *shape), dtype, name=INPUT_NAME)]

    def classify(image: Any) -> dict[str, Any]:
        pixels = tf.cast(image, tf.float32)
        answer = heads(pixels)
        return {
            name: tf.identity(value, name=name) for name, value in zip(OUTPUT_NAMES, answer, strict=False)
        }

    return tf.function(classify, input_signature=signature, jit_compile=False, autograph=False), signature


@contextlib.contextmanager
def _plain_grouped_conv() -> Iterator[None]:
    """Traces Keras' grouped convolutions without their nested jit_compile function.

    Keras 3's TensorFlow backend wraps a grouped conv in ``tf.function(jit_compile=True)``
    because TF's CPU kernel lacks it; tf2onnx mis-converts that nested XLA call. ONNX
    Conv has a ``group`` attribute, so for export the plain op is what we want.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import nn as tf_nn

    original = tf_nn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        channels_first = data_format == "channels_first"
        if channels_first or inputs.shape[-1] == kernel.shape[-2]:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(), dilations=dilation_rate)

    tf_nn.conv = conv
    try:
        yield
    finally:
        tf_nn.conv = original


def _erfc_handler(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx has no Erfc (exact GELU uses it): rewrite as 1 - Erf(x)."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def _captures_to_initializers(proto: Any, concrete: Any) -> None:
    """Turns captured constant tensors that tf2onnx made graph inputs into initializers.

    A Normalization layer (EfficientNet, ConvNeXt) holds its mean and variance as eager
    tensors that the traced function captures; tf2onnx lists every non-variable capture
    as an extra graph *input*, so the model would need them fed at run time.
    """
    import tensorflow as tf
    from onnx import numpy_helper

    first = len(concrete.inputs) - len(concrete.captured_inputs)
    captured = {
        tensor.name: value
        for tensor, value in zip(concrete.inputs[first:], concrete.captured_inputs, strict=True)
        if tensor.dtype != tf.resource
    }
    extra = [i for i in proto.graph.input if i.name in captured]
    for graph_input in extra:
        proto.graph.input.remove(graph_input)
        proto.graph.initializer.append(
            numpy_helper.from_array(captured[graph_input.name].numpy(), graph_input.name)
        )
    if extra:
        logger.info("made %d captured constant(s) initializers: %s", len(extra), [i.name for i in extra])


def _tensor_names(concrete: Any) -> tuple[list[str], list[str], dict[str, str]]:
    """Input and output tensor names, and the renames to "image"/"probabilities"/"logits".

    What ``tf2onnx.convert.from_function`` computes before converting.
    """
    import tensorflow as tf
    from tf2onnx.convert import tensor_names_from_structed

    inputs = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    return inputs, outputs, tensor_names_from_structed(concrete, inputs, outputs)


def convert(
    model: Any,
    shape: tuple[int, int, int],
    input_dtype: str,
    opset: int,
    *,
    on_phase: PhaseHook | None = None,
    head: str = "auto",
    scaling: InputScaling | None = None,
    cam: bool = False,
) -> Any:
    """Converts a Keras classifier to an onnx.ModelProto (not yet checked).

    The conversion is tf2onnx's (freeze, grappler, op mapping, ONNX optimizers), run
    stage by stage so that the weights stay out of the optimizer loop (see lowmem).

    Args:
        on_phase: called with each phase's name as it starts (memory timelines).
        head: the head choice (default: found in the graph, see heads.py).
        scaling: pixel scaling put in front of the model.
        cam: add the ``class_maps`` output (the model must have a CAM head).

    Raises:
        ConversionError: tracing or tf2onnx failed; the message names the cause.
    """
    import tensorflow as tf

    phase = on_phase or (lambda name: None)
    function, _ = classifier_function(model, shape, input_dtype, head, scaling, cam)
    try:
        phase("trace")
        with _plain_grouped_conv(), dft_as_matmul():
            concrete = function.get_concrete_function()  # trace once, inside the patches
        inputs, outputs, renames = _tensor_names(concrete)
        with tf.device("/cpu:0"):
            graph_def = freeze(concrete, inputs, outputs, on_phase=phase)
            proto = convert_frozen(
                graph_def,
                inputs,
                outputs,
                opset,
                on_phase=phase,
                custom_op_handlers={"Erfc": (_erfc_handler, [])},
                tensors_to_rename=renames,
            )
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise ConversionError(f"tf2onnx could not convert the model: {type(exc).__name__}: {exc}") from exc
    _captures_to_initializers(proto, concrete)
    wanted = list(OUTPUT_NAMES[: 3 if cam else 2])
    _order_outputs(proto, wanted)
    names = [o.name for o in proto.graph.output]
    if names != wanted or [i.name for i in proto.graph.input] != [INPUT_NAME]:
        raise ConversionError(
            f"the converted graph has inputs {[i.name for i in proto.graph.input]} and outputs {names}; "
            f"expected input {INPUT_NAME!r} and outputs {wanted}"
        )
    return proto


def _order_outputs(proto: Any, wanted: list[str]) -> None:
    """Puts ``probabilities`` first: ``session.run(None, feed)[0]`` is what bare onnxruntime,
    OpenCV DNN and Triton users read, and tf2onnx orders a dict's outputs by name."""
    by_name = {o.name: o for o in proto.graph.output}
    if set(by_name) != set(wanted):
        return  # reported by the caller's check
    ordered = [by_name[name] for name in wanted]
    copies = [type(o)() for o in ordered]
    for copy, original in zip(copies, ordered, strict=True):
        copy.CopyFrom(original)
    del proto.graph.output[:]
    proto.graph.output.extend(copies)

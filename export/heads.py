"""The classifier head of a Keras model, found from its graph, and what the ONNX computes from it.

Every exported graph has two outputs, in this order: ``probabilities`` (what the Keras
model's answer means as class probabilities) and ``logits`` (their pre-activation
scores). What they are depends on the head the model ends in:

===========================  ====================  =========================  ==================
the model ends in            head (card)           probabilities (output 0)   logits (output 1)
===========================  ====================  =========================  ==================
softmax (any layer form)     softmax               the model's softmax        the softmax's input
linear, N >= 2 units         softmax               softmax(z), in the graph   z, the model output
one sigmoid unit             binary                [1 - p, p]                 [0, z]
one linear unit, 2 labels    binary                [1 - sigmoid(z), sigmoid]  [0, z]
N sigmoid units              multilabel            the N sigmoids             their inputs z
===========================  ====================  =========================  ==================

For binary heads the softmax of the logits equals the probabilities, so a consumer that
only knows softmax classifiers reads them correctly.

The head is found by walking back from the model's output to the last operation that
applies an activation: a Dense/Conv layer with ``activation=``, ``Activation``,
``Softmax``, or the last layer of a nested model (a base model or a Sequential head used
as a layer), whatever reshaping (Flatten, pooling) comes before it. ``--head`` overrides
what is found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SourceModelError
from .kgraph import between, call, chain, opaque

__all__ = [
    "HEAD_CHOICES",
    "PREPROCESS_MODES",
    "Head",
    "InputScaling",
    "check_head",
    "classifier_heads",
    "find_head",
    "model_answer",
    "resolve_head",
    "starts_with_scaling",
]

logger = logging.getLogger(__name__)

HEAD_CHOICES = ("auto", "softmax", "logits", "binary", "multilabel")
_ACTIVATIONS = ("softmax", "sigmoid", "linear")


@dataclass(frozen=True)
class Finding:
    """What the graph ends in: the final activation, the units, and the pre-activation."""

    activation: str  # softmax, sigmoid or linear
    units: int
    where: str  # a description for messages: "Dense 'dense_1' (activation softmax)"
    pre_activation: Callable[[Any], Any]  # float input -> the tensor the activation is applied to


@dataclass(frozen=True)
class Head:
    """How the exported graph turns the model's pre-activation into its two outputs.

    Attributes:
        kind: the card's head: softmax, binary or multilabel.
        model_output: what the Keras model itself returns: probabilities or logits.
        finding: what the graph ends in.
        note: one line for the user when auto-detection had to choose.
    """

    kind: str
    model_output: str
    finding: Finding
    note: str | None = None

    @property
    def classes(self) -> int:
        return 2 if self.kind == "binary" else self.finding.units


@dataclass(frozen=True)
class InputScaling:
    """Pixel scaling put in front of a model trained on scaled pixels without a scaling layer.

    ``0..255`` is mapped linearly to ``range``; then ``mean`` is subtracted and the result
    divided by ``std`` (one value, or one per channel), in the units of ``range``. With
    ``reverse_channels`` the channels are reversed (RGB to BGR) first, so ``mean`` and
    ``std`` are in BGR order.
    """

    range: tuple[float, float] = (0.0, 255.0)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    reverse_channels: bool = False  # RGB -> BGR first (keras.applications' "caffe" mode)

    @property
    def identity(self) -> bool:
        plain = self.range == (0.0, 255.0) and set(self.mean) == {0.0} and set(self.std) == {1.0}
        return plain and not self.reverse_channels

    def apply(self, pixels: Any) -> Any:
        if self.identity:
            return pixels
        if self.reverse_channels:
            import keras

            pixels = keras.ops.flip(pixels, axis=-1)
        low, high = self.range
        scale = (high - low) / 255.0
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        # One multiply-add: folds into a single scalar/per-channel Mul and Add in ONNX.
        return pixels * (scale / std) + ((low - mean) / std)


# keras.applications.imagenet_utils.preprocess_input's modes as scalings of 0..255 RGB.
PREPROCESS_MODES: dict[str, InputScaling] = {
    # "caffe": RGB -> BGR, then the ImageNet means (BGR order) subtracted; no scaling.
    "caffe": InputScaling(mean=(103.939, 116.779, 123.68), reverse_channels=True),
    # "tf": pixels / 127.5 - 1.
    "tf": InputScaling(range=(-1.0, 1.0)),
    # "torch": pixels / 255, then the ImageNet mean and std per channel.
    "torch": InputScaling(range=(0.0, 1.0), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
}


def _activation_of(layer: Any) -> str | None:
    """The activation a layer applies last, or None when it applies none we know."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    name = config.get("activation")
    if isinstance(name, dict):  # a serialized activation object
        name = name.get("config", {}).get("name") or name.get("class_name")
    if isinstance(name, str):
        name = name.lower()
        return name if name in _ACTIVATIONS else "other:" + name
    return None


def _last_operation(model: Any) -> tuple[Any, Any]:
    """The operation that makes the model's output, and the tensor it was called on."""
    tensor = model.outputs[0]
    operation, node_index, _ = tensor._keras_history
    node = operation._inbound_nodes[node_index]
    if len(node.input_tensors) != 1:
        raise SourceModelError(
            f"the model's output comes from {type(operation).__name__} {operation.name!r}, which takes "
            f"{len(node.input_tensors)} inputs; accepted: a classifier whose output layer takes one tensor"
        )
    return operation, node.input_tensors[0]


def _find(model: Any) -> Finding:
    import keras

    operation, tensor = _last_operation(model)
    before = between(model.inputs[0], tensor)
    kind = type(operation).__name__
    if opaque(operation):  # a subclassed model or a SavedModel: no graph to walk
        return _probed(model, operation, before)
    if isinstance(operation, keras.Model):  # a nested model: its own last layer decides
        inner = _find(operation)
        return Finding(
            inner.activation,
            inner.units,
            f"{inner.where} inside {kind} {operation.name!r}",
            chain(before, inner.pre_activation),
        )
    units = int(model.outputs[0].shape[-1])
    activation = _activation_of(operation)
    where = f"{kind} {operation.name!r}"
    if activation is None or activation == "linear":
        return Finding("linear", units, where, lambda x: call(model, x))
    if activation.startswith("other:"):
        raise SourceModelError(
            f"the model ends in {where} with activation {activation[6:]!r}; accepted: softmax, sigmoid "
            "or a linear output (logits)"
        )
    if isinstance(operation, keras.layers.Softmax) and operation.axis not in (-1, len(tensor.shape) - 1):
        raise SourceModelError(f"{where} applies softmax over axis {operation.axis}; accepted: the last axis")
    where += f" (activation {activation})"
    if isinstance(operation, keras.layers.Dense):
        return Finding(activation, units, where, lambda x: _dense_linear(operation, before(x)))
    if isinstance(operation, keras.layers.Activation | keras.layers.Softmax):
        return Finding(activation, units, where, before)
    raise SourceModelError(
        f"the model ends in {where}; accepted: a Dense, Activation or Softmax layer as the last layer "
        "that applies softmax or sigmoid, or a linear output"
    )


def _probe_kind(values: np.ndarray) -> str:
    """softmax, sigmoid or linear, from what a model returns on random images."""
    finite = np.isfinite(values).all()
    in_unit = finite and values.min() >= 0.0 and values.max() <= 1.0
    if in_unit and values.shape[1] > 1 and np.allclose(values.sum(axis=1), 1.0, atol=1e-5):
        return "softmax"
    return "sigmoid" if in_unit else "linear"


def _probed(model: Any, operation: Any, before: Callable[[Any], Any]) -> Finding:
    """The head of an operation whose inside cannot be walked, from its values.

    Its probabilities are its own output; their logits are recovered as log(p) (softmax,
    equal to the pre-activation up to a constant per image) or log(p / (1 - p)) (sigmoid).
    """
    import keras

    ops = keras.ops
    shape = tuple(model.inputs[0].shape[1:])
    probe = np.random.default_rng(0).uniform(0, 255, (8, *shape)).astype(np.float32)
    values = np.asarray(call(model, probe), np.float64)
    activation = _probe_kind(values)
    units = int(values.shape[1])
    what = "a subclassed Model" if isinstance(operation, keras.Model) else "a SavedModel"
    where = f"{type(operation).__name__} {operation.name!r} ({what}: its head is read from its values"
    where += f", {'rows that sum to 1' if activation == 'softmax' else activation})"
    whole = chain(
        before, lambda x: call(operation, x) if isinstance(operation, keras.Model) else operation(x)
    )
    if activation == "linear":
        return Finding("linear", units, where, whole)
    logger.debug("%s: its logits are recovered from its probabilities", where)
    tiny = 1e-30

    def pre_activation(x: Any) -> Any:
        p = ops.maximum(whole(x), tiny)
        return ops.log(p) if activation == "softmax" else ops.log(p) - ops.log(ops.maximum(1.0 - p, tiny))

    return Finding(activation, units, where, pre_activation)


def _dense_linear(dense: Any, features: Any) -> Any:
    """A Dense layer's output without its activation (its logits)."""
    import keras

    logits = keras.ops.matmul(features, dense.kernel)
    return logits + dense.bias if dense.use_bias else logits


def find_head(model: Any) -> Finding:
    """What the model's graph ends in.

    Raises:
        SourceModelError: several outputs, an output that is not (batch, classes), or an
            activation that is neither softmax, sigmoid nor linear.
    """
    if len(model.outputs) != 1:
        raise SourceModelError(
            f"the model has {len(model.outputs)} outputs; accepted: a classifier with one output "
            "(batch, classes)"
        )
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2 or shape[1] is None:
        raise SourceModelError(
            f"the model's output has shape {shape}; accepted: (batch, classes), e.g. end a fully "
            "convolutional model in GlobalAveragePooling2D"
        )
    return _find(model)


def resolve_head(finding: Finding, choice: str = "auto") -> Head:
    """The head to export, from what the graph ends in and the user's ``--head``.

    Raises:
        SourceModelError: ``choice`` contradicts the graph (e.g. multilabel on a softmax).
    """
    if choice not in HEAD_CHOICES:
        raise SourceModelError(f"unknown head {choice!r}; accepted: {', '.join(HEAD_CHOICES)}")
    act, units, where = finding.activation, finding.units, finding.where
    auto = {
        ("softmax", False): ("softmax", "probabilities"),
        ("sigmoid", True): ("binary", "probabilities"),
        ("sigmoid", False): ("multilabel", "probabilities"),
        ("linear", True): ("binary", "logits"),
        ("linear", False): ("softmax", "logits"),
    }.get((act, units == 1))
    if act == "softmax" and units == 1:
        raise SourceModelError(f"the model ends in {where} over a single unit, which is always 1")
    if choice == "auto":
        kind, output = auto
        note = None
        if act == "linear" and units > 1:
            note = (
                f"the model ends in a linear output of {units} units ({where}): taken as the logits of "
                "a softmax classifier; pass --head multilabel if they are independent sigmoid logits"
            )
        return Head(kind, output, finding, note)
    wanted = {
        "softmax": {"softmax": "probabilities", "linear": "probabilities"},
        "logits": {"linear": "logits"},
        "binary": {"sigmoid": "probabilities", "linear": "logits"},
        "multilabel": {"sigmoid": "probabilities", "linear": "logits"},
    }[choice]
    if act not in wanted or (choice == "binary") != (units == 1) or (choice != "binary" and units < 2):
        raise SourceModelError(
            f"--head {choice} does not fit the model, which ends in {where} with {units} unit(s); "
            f"detected: {auto[0] if auto else 'nothing usable'}; accepted for this model: --head auto"
        )
    return Head("softmax" if choice == "logits" else choice, wanted[act], finding)


def classifier_heads(
    model: Any, head: Head, scaling: InputScaling | None = None, cam: Any = None
) -> Callable[[Any], list]:
    """A function of raw float pixels returning ``[probabilities, logits]`` for ``head``,
    and the class activation maps third when ``cam`` (a cam.CamHead) is given.

    The softmax or sigmoid is applied to the pre-activation found in the graph, so the
    probabilities are the model's own (:func:`check_head` checks it) and the logits come
    from the same computation.
    """
    import keras

    ops = keras.ops
    scaling = scaling or InputScaling()
    pre = head.finding.pre_activation
    forced = (
        head.kind == "softmax"
        and head.model_output == "probabilities"
        and head.finding.activation == "linear"
    )

    def outputs(z: Any) -> list[Any]:
        if forced:  # --head softmax on an output that already holds probabilities
            return [z, ops.log(ops.maximum(z, 1e-30))]
        if head.kind == "binary":
            z = ops.reshape(z, (-1, 1))
            p = ops.sigmoid(z)
            return [ops.concatenate([1.0 - p, p], axis=-1), ops.concatenate([ops.zeros_like(z), z], axis=-1)]
        return [ops.softmax(z, axis=-1) if head.kind == "softmax" else ops.sigmoid(z), z]

    def compute(pixels: Any) -> list[Any]:
        scaled = scaling.apply(pixels)
        if cam is None:
            return outputs(pre(scaled))
        # One pass through the network: the logits and the maps come from the same features.
        features = cam.features(scaled)
        return [*outputs(cam.logits(features)), cam.maps(features, binary=head.kind == "binary")]

    return compute


def model_answer(model: Any, head: Head, scaling: InputScaling, pixels: np.ndarray) -> np.ndarray:
    """The Keras model's own output on ``pixels`` in the exported form (2 columns for binary)."""
    out = np.asarray(call(model, scaling.apply(pixels.astype(np.float32))), np.float64)
    if head.kind != "binary":
        return out
    p = out[:, :1] if head.model_output == "probabilities" else 1 / (1 + np.exp(-out[:, :1]))
    return np.concatenate([1 - p, p], axis=1)


def check_head(
    model: Any, head: Head, scaling: InputScaling, pixels: np.ndarray, exported: np.ndarray
) -> None:
    """Checks that the head's probabilities (or logits) are the Keras model's own answer.

    A wrong head would pass a Keras-vs-ONNX gate (both sides use the head); this compares
    with ``model(x)`` itself.

    Raises:
        SourceModelError: they differ by more than 1e-5 (relative to the output scale).
    """
    reference = model_answer(model, head, scaling, pixels)
    candidate = exported[1] if head.kind != "binary" and head.model_output == "logits" else exported[0]
    scale = max(1.0, float(np.abs(reference).max()))
    diff = float(np.abs(reference - np.asarray(candidate, np.float64)).max())
    if diff > 1e-5 * scale:
        raise SourceModelError(
            f"the {head.kind} head found at {head.finding.where} does not reproduce the model's output "
            f"(max difference {diff:.3g}); pass --head to say what the model ends in"
        )


_SCALING_OPS = ("Rescaling", "Normalization", "TrueDivide", "Divide", "Subtract", "Multiply")


def _operations(model: Any) -> list[Any]:
    """A model's operations in call order, nested models expanded."""
    import keras

    found = []
    for operation in getattr(model, "operations", None) or model.layers:
        nested = isinstance(operation, keras.Model) and not opaque(operation)
        found.extend(_operations(operation) if nested else [operation])
    return found


def starts_with_scaling(model: Any) -> bool:
    """Whether the model scales its pixels (a Rescaling or Normalization layer, or the
    arithmetic of a ``preprocess_input``) before its first layer with weights."""
    for operation in _operations(model):
        if opaque(operation):
            return True  # its inside cannot be seen: no warning that would be a guess
        if type(operation).__name__ in _SCALING_OPS:
            return True
        if hasattr(operation, "kernel") or hasattr(operation, "depthwise_kernel"):
            return False
    return False

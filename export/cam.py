"""Class activation maps inside the exported graph (Zhou et al. 2016).

For a classifier that ends in global average pooling followed by a Dense layer, the
logit of class k is the spatial mean of ``features @ W[:, k]`` plus a bias. That
product, before the mean, is a map of where the evidence for class k lies: the class
activation map. Export computes it in the graph as a third output ``class_maps``,
(N, h, w, classes), from the same features and weights, so the runtime can show where a
model looks with nothing but onnxruntime. For this head Grad-CAM gives the same maps up
to a positive factor (the gradient of the logit with respect to the features is
``W[:, k] / (h * w)`` everywhere).

A binary head (one unit, z) gets two maps, ``[-m, m]``, matching its logits ``[0, z]``
up to the constant that softmax ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnport.runtime.heatmap import CAM_HEADS

from .kgraph import between, chain, opaque, producer

__all__ = ["CAM_OUTPUT", "CamHead", "find_cam"]

CAM_OUTPUT = "class_maps"
SUPPORTED = f"{CAM_HEADS} (dropout between them is fine)"
_PASS_THROUGH = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "Identity",
)


@dataclass(frozen=True)
class CamHead:
    """Where the class maps come from: the pooled features and the classifier's weights."""

    features: Callable[[Any], Any]  # model input (float pixels) -> (N, h, w, C)
    dense: Any  # the Dense layer that makes the logits
    where: str

    def maps(self, features: Any, binary: bool = False) -> Any:
        """(N, h, w, classes) maps from the pooled features (``self.features(pixels)``)."""
        import keras

        # A 1x1 convolution: the same sums as features @ W, but one ONNX Conv rather than
        # tf2onnx's Reshape/Shape/Gather lowering of a rank-4 MatMul.
        kernel = keras.ops.reshape(self.dense.kernel, (1, 1, *self.dense.kernel.shape))
        maps = keras.ops.conv(features, kernel, strides=1, padding="valid")
        return keras.ops.concatenate([-maps, maps], axis=-1) if binary else maps

    def logits(self, features: Any) -> Any:
        """The Dense layer's pre-activation from the same features: the pooling and the
        Dense computed once for both outputs (calling the model again for the logits put
        a second copy of the whole network into the exported graph: 93 Conv nodes instead
        of MobileNetV2's 52, 1.7x the latency)."""
        import keras

        logits = keras.ops.matmul(keras.ops.mean(features, axis=(1, 2)), self.dense.kernel)
        return logits + self.dense.bias if self.dense.use_bias else logits


def _pooled_features(model: Any, tensor: Any, outer: Callable[[Any], Any]) -> tuple[Callable, str] | str:
    """Walks back from the Dense input to a global average pooling; its input is the features.

    Returns:
        (features function of the outermost input, description), or the reason there is none.
    """
    import keras

    while True:
        operation, source = producer(tensor)
        kind = type(operation).__name__
        if opaque(operation):
            return (
                f"the classifier's input comes from {kind} {operation.name!r}, whose layers are not a graph"
            )
        if isinstance(operation, keras.Model):
            inner = outer if source is None else chain(outer, between(model.inputs[0], source))
            return _pooled_features(operation, operation.outputs[0], inner)
        if kind in _PASS_THROUGH and source is not None:
            tensor = source
            continue
        if isinstance(operation, keras.layers.GlobalAveragePooling2D) and source is not None:
            if operation.keepdims or operation.data_format != "channels_last" or len(source.shape) != 4:
                return f"its {kind} {operation.name!r} keeps dims or is channels-first"
            return chain(outer, between(model.inputs[0], source)), f"{kind} {operation.name!r}"
        return f"the classifier's input comes from {kind} {operation.name!r}, not global average pooling"


def _classifier_dense(model: Any, outer: Callable[[Any], Any]) -> tuple[Any, Any, Any, Callable] | str:
    """The Dense that makes the logits: (dense, its input tensor, the graph it is in, prefix)."""
    import keras

    operation, source = producer(model.outputs[0])
    if opaque(operation):
        return f"it ends in {type(operation).__name__} {operation.name!r}, whose layers are not a Keras graph"
    if isinstance(operation, keras.Model):
        inner = outer if source is None else chain(outer, between(model.inputs[0], source))
        return _classifier_dense(operation, inner)
    if isinstance(operation, keras.layers.Activation | keras.layers.Softmax) and source is not None:
        operation, source = producer(source)
    if isinstance(operation, keras.layers.Dense) and source is not None and len(source.shape) == 2:
        return operation, source, model, outer
    return f"it ends in {type(operation).__name__} {operation.name!r}, not a Dense layer"


def find_cam(model: Any) -> CamHead | str:
    """The model's class-map head, or the reason it has none (naming what is supported)."""
    found = _classifier_dense(model, lambda x: x)
    if isinstance(found, str):
        return f"no class maps: {found}; supported: {SUPPORTED}"
    dense, source, graph, outer = found
    pooled = _pooled_features(graph, source, outer)
    if isinstance(pooled, str):
        return f"no class maps: {pooled}; supported: {SUPPORTED}"
    features, where = pooled
    return CamHead(features, dense, f"{where} -> Dense {dense.name!r}")

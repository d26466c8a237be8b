"""Grad-CAM (Selvaraju et al. 2017) on a Keras classifier, nested backbones included.

The feature map is the last 4-D tensor on the way back from the output (the last
convolutional stage, inside a nested backbone if there is one). The score of a class is
its logit: the input of the final softmax/sigmoid, recomputed for a Dense that applies
one itself. The map is ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of
d score / d A_k, divided by its maximum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnport.export.kgraph import between, call, chain, opaque, producer

__all__ = ["GradCam", "class_probabilities", "find_feature_map", "grad_cam"]


@dataclass(frozen=True)
class GradCam:
    """Grad-CAM of a batch: maps (N, h, w) in [0, 1], the class explained, its probability."""

    maps: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    layer: str  # which feature map, for captions


@dataclass(frozen=True)
class _FeaturePath:
    features: Callable[[Any], Any]  # model input -> feature map (N, h, w, C)
    tail: Callable[[Any], Any]  # feature map -> logits (N, classes)
    layer: str


def class_probabilities(model: Any, pixels: Any) -> np.ndarray:
    """The model's probabilities (N, classes) as the exported .onnx gives them: a softmax
    of a linear output (a model trained ``from_logits``), a sigmoid of a multilabel one, two
    columns (1 - p, p) for a one-unit binary output. Its raw output would put a logit (or a
    binary model's p of class 1 under class 0) where a probability belongs."""
    from cnnport.export.errors import SourceModelError
    from cnnport.export.heads import InputScaling, find_head, model_answer, resolve_head
    from cnnport.runtime.engine import softmax

    pixels = np.asarray(pixels, np.float32)
    try:
        head = resolve_head(find_head(model))
    except SourceModelError:  # an output export would refuse too: shown as it is
        return np.asarray(call(model, pixels), np.float32)
    out = model_answer(model, head, InputScaling(), pixels)  # binary: (1 - p, p) already
    if head.model_output == "logits" and head.kind != "binary":
        out = softmax(out) if head.kind == "softmax" else 1 / (1 + np.exp(-out))
    return out.astype(np.float32)


def _logits_tensor(model: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The tensor to differentiate, and how it becomes the logits (a Dense's own activation
    is undone by recomputing its linear part)."""
    import keras

    output = model.outputs[0]
    operation, source = producer(output)
    if isinstance(operation, keras.layers.Activation | keras.layers.Softmax) and source is not None:
        return source, lambda t: t
    if isinstance(operation, keras.layers.Dense) and source is not None:
        activation = operation.get_config().get("activation")
        if activation not in (None, "linear"):

            def linear(t: Any, dense: Any = operation) -> Any:
                z = keras.ops.matmul(t, dense.kernel)
                return z + dense.bias if dense.use_bias else z

            return source, linear
    return output, lambda t: t


def find_feature_map(model: Any) -> _FeaturePath | None:
    """The last 4-D tensor before the output, as features/tail functions; None if none."""
    import keras

    logits_source, finish = _logits_tensor(model)
    tensor = logits_source
    # Walk back one graph; a nested model is entered from its output.
    while True:
        if len(tensor.shape) == 4 and tensor is not model.inputs[0]:
            operation, _ = producer(tensor)
            return _FeaturePath(
                between(model.inputs[0], tensor),
                chain(between(tensor, logits_source), finish),
                f"{type(operation).__name__} {operation.name!r}",
            )
        operation, source = producer(tensor)
        if opaque(operation):  # a subclassed Model or a SavedModel: nothing inside to walk
            return None
        if isinstance(operation, keras.Model):
            inner = find_feature_map(operation) if source is not None else None
            if inner is None:
                return None
            return _FeaturePath(
                chain(between(model.inputs[0], source), inner.features),
                chain(chain(inner.tail, between(tensor, logits_source)), finish),
                f"{inner.layer} in {operation.name!r}",
            )
        if source is None or source is model.inputs[0]:
            return None
        tensor = source


def grad_cam(
    model: Any,
    pixels: np.ndarray,
    class_index: int | Sequence[int] | None = None,
    path: _FeaturePath | None = None,
) -> GradCam:
    """Grad-CAM for each image of ``pixels`` (N, H, W, C float, as the model takes them),
    for ``class_index`` (one for all images, or one per image) or, where None, each
    image's predicted class.

    Raises:
        ValueError: the model has no 4-D feature map to explain.
    """
    import tensorflow as tf

    path = path or find_feature_map(model)
    if path is None:
        raise ValueError("the model has no convolutional feature map before its output")
    x = tf.convert_to_tensor(pixels, tf.float32)
    features = tf.convert_to_tensor(path.features(x))
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = path.tail(features)
        if logits.shape[-1] == 1:  # binary: class 1 scores z, class 0 scores -z
            logits = tf.concat([-logits, logits], axis=-1)
        if class_index is None:
            classes = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
        else:
            classes = tf.constant(np.broadcast_to(np.asarray(class_index, np.int32), (len(pixels),)))
        score = tf.gather(logits, classes, axis=1, batch_dims=1)
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    peaks = cam.reshape(len(cam), -1).max(axis=1)
    cam = cam / np.where(peaks > 0, peaks, 1.0)[:, None, None]
    chosen = classes.numpy()
    scores = class_probabilities(model, pixels)[np.arange(len(chosen)), chosen]
    return GradCam(cam.astype(np.float32), chosen, scores.astype(np.float32), path.layer)

"""The walk-through: every convolution, activation and pooling stage of a model on one image.

Each stage is captioned as the course material draws it (the layer's kind, filters x
kernel size, stride, padding, activation, output shape) and shown as its first N feature
maps. Nested models (a keras.applications backbone used as a layer) are walked into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["Stage", "first_layer_filters", "stages_on", "tile"]

_CONV = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
_ACTIVATION = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
_POOL = ("MaxPooling2D", "AveragePooling2D")


@dataclass(frozen=True)
class Stage:
    """One stage of the walk-through and its output on one image (H, W, C)."""

    name: str
    kind: str
    caption: str
    output: np.ndarray


def _pair(value: Any) -> str:
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    return "x".join(str(v) for v in values)


def caption(layer: Any, shape: tuple) -> str:
    """ "Conv2D 32 filters 3x3, stride 1x1, padding same, relu -> (16, 16, 32)"."""
    kind = type(layer).__name__
    if _is_own(layer):  # its config is its author's: say what it is and what it gives
        return f"{kind} (the model's own layer) -> {tuple(shape[1:])}"
    config = layer.get_config()
    parts = [kind]
    if kind in _CONV:
        filters = config.get("filters") or f"x{config.get('depth_multiplier', 1)} depthwise"
        parts.append(f"{filters} filters {_pair(config['kernel_size'])}")
    if kind in _CONV or kind in _POOL:
        if kind in _POOL:
            parts.append(f"pool {_pair(config['pool_size'])}")
        parts.append(f"stride {_pair(config['strides'])}, padding {config['padding']}")
    activation = config.get("activation")
    if isinstance(activation, str) and activation != "linear":
        parts.append(activation)
    return ", ".join(parts) + f" -> {tuple(shape[1:])}"


# Packages whose layers are library layers, not the model's own (keras_cv and keras_hub
# build on Keras; tf_keras is Keras 2).
_LIBRARY_PACKAGES = frozenset({"keras", "keras_cv", "keras_hub", "keras_nlp", "tf_keras", "tensorflow"})


def _is_own(layer: Any) -> bool:
    """A layer class of the model's own code (--custom-objects), not a library's (a user's
    module named keras_blocks is the user's)."""
    return type(layer).__module__.split(".")[0] not in _LIBRARY_PACKAGES


def _is_stage(layer: Any) -> bool:
    """A built-in convolution, activation or pooling, or a layer of the model's own (a
    convolution block, an activation): shown where its output is an image of features."""
    kind = type(layer).__name__
    return kind in _CONV or kind in _ACTIVATION or kind in _POOL or _is_own(layer)


def _single_output(layer: Any) -> Any | None:
    """The layer's output tensor when it was called once (else None)."""
    try:
        return layer.output
    except (AttributeError, ValueError):
        return None


def stages_on(model: Any, image: np.ndarray) -> list[Stage]:
    """The stages of ``model`` (nested models walked into) on one model-input image."""
    import keras

    stages: list[Stage] = []
    _walk(keras, model, np.asarray(image, np.float32)[None], stages)
    return stages


def _walk(keras: Any, model: Any, x: np.ndarray, stages: list[Stage]) -> None:
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probes: list[tuple[Any, Any]] = []
    for layer in layers:
        if isinstance(layer, keras.Model):
            inbound = layer._inbound_nodes[0].input_tensors if layer._inbound_nodes else []
            if len(inbound) == 1:
                probes.append((layer, inbound[0]))
        elif _is_stage(layer):
            output = _single_output(layer)
            if output is not None and len(output.shape) == 4:
                probes.append((layer, output))
    if not probes:
        return
    probe = keras.Model(model.inputs[0], [tensor for _, tensor in probes])
    values = probe(x, training=False)
    values = values if isinstance(values, list | tuple) else [values]
    for (layer, tensor), value in zip(probes, values, strict=True):
        array = np.asarray(value)
        if isinstance(layer, keras.Model):
            _walk(keras, layer, array, stages)
        else:
            stages.append(Stage(layer.name, type(layer).__name__, caption(layer, tensor.shape), array[0]))


def first_layer_filters(model: Any) -> np.ndarray | None:
    """The first convolution's kernel (kh, kw, in, out), nested models included."""
    import keras

    for layer in _in_call_order(keras, model):
        if type(layer).__name__ in _CONV:
            kernel = getattr(layer, "kernel", None)
            if kernel is None:
                kernel = getattr(layer, "depthwise_kernel", None)
            if kernel is not None:
                return np.asarray(kernel)
    return None


def _in_call_order(keras: Any, model: Any) -> list[Any]:
    """The model's layers in the order they run, nested models expanded in place, and a
    layer of the model's own followed by the layers it holds (a block's Conv2D)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_in_call_order(keras, layer))
        elif _is_own(layer):
            found.extend([layer, *layer._flatten_layers(include_self=False, recursive=True)])
        else:
            found.append(layer)
    return found


def tile(maps: list[np.ndarray], cell: int = 96, columns: int = 8, gap: int = 4) -> np.ndarray:
    """Maps (each H x W, or H x W x 3 for color) side by side, each scaled to its own range,
    in the viridis color map (gray inputs) as a BGR image."""
    rows = -(-len(maps) // columns)
    sheet = np.full(
        (rows * (cell + gap) + gap, min(len(maps), columns) * (cell + gap) + gap, 3), 255, np.uint8
    )
    for index, feature in enumerate(maps):
        low, high = float(feature.min()), float(feature.max())
        scaled = ((feature - low) / (high - low) * 255 if high > low else np.zeros_like(feature)).astype(
            np.uint8
        )
        if scaled.ndim == 2:
            scaled = cv2.applyColorMap(scaled, cv2.COLORMAP_VIRIDIS)
        big = cv2.resize(scaled, (cell, cell), interpolation=cv2.INTER_NEAREST)
        y, x = gap + (index // columns) * (cell + gap), gap + (index % columns) * (cell + gap)
        sheet[y : y + cell, x : x + cell] = big
    return sheet

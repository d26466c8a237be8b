"""Walking a Keras functional graph: who made a tensor, and the computation between two.

A subclassed ``keras.Model`` or a SavedModel has no such graph: :func:`as_graph` calls
it once on a symbolic input, so that it becomes one opaque operation of a functional
model that everything else can walk up to (:func:`opaque` says which operations are).

Shared by the head finder (heads.py), the class-map finder (cam.py) and Grad-CAM
(cnnport.explain), which all walk back from a model's output, through nested models,
and need functions of the model's input that stop at a tensor inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["as_graph", "between", "call", "chain", "is_graph", "opaque", "producer"]


def producer(tensor: Any) -> tuple[Any, Any | None]:
    """The operation that made ``tensor``, and the single tensor it was called on (None
    when it took several)."""
    operation, node_index, _ = tensor._keras_history
    inputs = operation._inbound_nodes[node_index].input_tensors
    return operation, inputs[0] if len(inputs) == 1 else None


def call(model: Any, x: Any) -> Any:
    """``model(x)`` in inference mode, with ``x`` in the structure the model was built with
    (a list for ``keras.Model([inputs], ...)``, else the tensor): either mismatch makes
    Keras warn on every call."""
    structure = getattr(model, "_inputs_struct", None)
    return model([x] if isinstance(structure, list | tuple) else x, training=False)


def between(start: Any, end: Any) -> Callable[[Any], Any]:
    """The computation from tensor ``start`` to tensor ``end`` of one functional graph
    (inference mode); ``between(model.inputs[0], t)`` is the model up to ``t``."""
    import keras

    if start is end:
        return lambda x: x
    part = keras.Model(start, end)
    return lambda x: call(part, x)


def chain(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``second(first(x))``."""
    return lambda x: second(first(x))


def is_graph(model: Any) -> bool:
    """Whether ``model`` is a functional or Sequential graph (a subclassed Model is not)."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):  # subclassed: no such attribute; unbuilt Sequential
        return False


def opaque(operation: Any) -> bool:
    """Whether an operation's inside is not a Keras graph: a subclassed Model, a SavedModel."""
    import keras

    if isinstance(operation, keras.Model):
        return not is_graph(operation)
    return isinstance(operation, keras.layers.TFSMLayer)


def as_graph(model: Any, shape: tuple[int, ...]) -> Any:
    """``model`` itself when it is a graph; else a functional model of one input of
    ``shape`` (without the batch axis) that calls it.

    Raises:
        SourceModelError: the model cannot be called on a symbolic input of that shape.
    """
    import keras

    from .errors import SourceModelError

    if is_graph(model):
        return model
    inputs = keras.Input(shape, name="image")
    try:
        outputs = model(inputs, training=False)
    except Exception as exc:  # the user's call(): whatever it raises is the reason
        raise SourceModelError(
            f"calling {type(model).__name__} {model.name!r} on an input of shape {(None, *shape)} failed: "
            f"{type(exc).__name__}: {str(exc)[:300]}; accepted: a model whose call() takes one "
            "batch of images (batch, height, width, channels)"
        ) from exc
    if isinstance(outputs, dict) and len(outputs) == 1:  # a SavedModel signature's {name: tensor}
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=f"{model.name}_graph")

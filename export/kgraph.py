"""Walking a Keras functional graph: who made a tensor, and the computation between two.

Shared by the head finder (heads.py), the class-map finder (cam.py) and Grad-CAM
(cnnport.explain), which all walk back from a model's output, through nested models,
and need functions of the model's input that stop at a tensor inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["between", "call", "chain", "producer"]


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

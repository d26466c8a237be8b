"""A TensorFlow SavedModel folder (what ``model.export(DIR)`` writes) as a Keras model.

A SavedModel holds the traced graph and the weights, none of the user's Python code, so
it exports models whose .keras cannot be reloaded (layers without ``**kwargs`` in their
``__init__``, subclassed models). Its graph runs when the parity gate runs it, so before
anything runs every TensorFlow op of its serving function is checked: only the ops
tf2onnx converts (and the plumbing of variables and function calls) are accepted,
which leaves out file, Python and dataset ops; the model would not convert with them
anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SourceModelError

__all__ = ["ENDPOINTS", "is_saved_model", "load_saved_model"]

# keras' model.export() writes "serve"; tf.saved_model.save() writes "serving_default".
ENDPOINTS = ("serve", "serving_default")
# Graph plumbing that tf2onnx's freezing step removes before its op handlers run.
_PLUMBING = {
    "ReadVariableOp",
    "VarHandleOp",
    "StatefulPartitionedCall",
    "PartitionedCall",
    "Erfc",  # converted by cnnport's own handler (convert.py)
}


def is_saved_model(path: Path) -> bool:
    """Whether ``path`` is a SavedModel folder (it holds ``saved_model.pb``)."""
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _endpoint(loaded: Any, path: Path) -> tuple[str, Any]:
    for name in ENDPOINTS:
        function = getattr(loaded, name, None) if name == "serve" else loaded.signatures.get(name)
        if function is not None:
            return name, function
    raise SourceModelError(
        f"the SavedModel {str(path)!r} has no serving endpoint; accepted: an endpoint named "
        f"{' or '.join(ENDPOINTS)} (model.export(DIR) writes 'serve'); it has signatures "
        f"{list(loaded.signatures)}"
    )


def _concrete(function: Any) -> Any:
    concretes = getattr(function, "concrete_functions", None)
    if concretes:  # a restored tf.function: one concrete function per traced signature
        return concretes[0]
    return function  # a signature is a concrete function already


def _op_types(concrete: Any) -> set[str]:
    graph = concrete.graph.as_graph_def()
    return {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


def _convertible_ops() -> set[str]:
    from tf2onnx import handler, tfonnx  # noqa: F401  (importing tfonnx registers the handlers)

    ops: set[str] = set(_PLUMBING)
    for versions in handler.tf_op.get_opsets().values():
        for table in versions:
            ops.update(table)
    return ops


def _check_ops(concrete: Any, path: Path) -> None:
    unknown = sorted(_op_types(concrete) - _convertible_ops())
    if unknown:
        raise SourceModelError(
            f"refusing the SavedModel {str(path)!r}: its serving function uses TensorFlow op(s) "
            f"{', '.join(unknown)}, which tf2onnx does not convert; nothing of it was run; accepted: a "
            "SavedModel made only of ops that have an ONNX form (file, Python and dataset ops never do)"
        )


def _input_shape(concrete: Any, path: Path) -> tuple[Any, ...]:
    args, kwargs = concrete.structured_input_signature
    specs = [*args, *kwargs.values()]
    if len(specs) != 1 or not hasattr(specs[0], "shape"):
        raise SourceModelError(
            f"the SavedModel {str(path)!r} takes inputs {specs}; accepted: one image tensor "
            "(batch, height, width, channels)"
        )
    return tuple(specs[0].shape.as_list())


def load_saved_model(path: Path) -> tuple[Any, tuple[Any, ...]]:
    """The SavedModel as a Keras layer (``keras.layers.TFSMLayer``) and its input shape.

    Raises:
        SourceModelError: it cannot be loaded, has no serving endpoint, takes other than
            one tensor, or uses an op that cannot be converted.
    """
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many kinds: OSError, ValueError, its own errors
        raise SourceModelError(
            f"cannot load the SavedModel {str(path)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    name, function = _endpoint(loaded, path)
    concrete = _concrete(function)
    _check_ops(concrete, path)
    shape = _input_shape(concrete, path)
    try:
        layer = keras.layers.TFSMLayer(str(path), call_endpoint=name, trainable=False, name="saved_model")
    except Exception as exc:
        raise SourceModelError(
            f"cannot wrap the SavedModel {str(path)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return layer, shape

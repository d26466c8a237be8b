"""Checks a converted graph before anything is written: ops, checker, shapes, ORT load.

tf2onnx converts with ``continue_on_error``: an op it cannot map stays in the graph
under its TensorFlow name, and the file only fails when someone loads it. Here such an
op is an error naming it, found three ways: an op type that no ONNX or onnxruntime
schema defines, ``onnx.checker`` with its full check, and an actual onnxruntime session.
"""

from __future__ import annotations

from typing import Any

from .errors import GraphCheckError, UnsupportedOpError

__all__ = ["check_graph", "op_counts", "random_ops"]

# Domains onnxruntime's CPU provider implements; anything else came from a TF op
# that was not converted (tf2onnx leaves those in the default domain or "ai.onnx.converters.tensorflow").
_KNOWN_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
_RANDOM_OPS = (
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Dropout",
)


def op_counts(model: Any) -> dict[str, int]:
    """How many nodes of each (domain-qualified) op type the main graph holds."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        key = f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        counts[key] = counts.get(key, 0) + 1
    return counts


def random_ops(model: Any) -> list[str]:
    """Names of nodes that draw random numbers (augmentation or dropout left in the graph)."""
    return [node.name or node.op_type for node in model.graph.node if node.op_type in _RANDOM_OPS]


def _unknown_ops(model: Any, opset: int) -> list[str]:
    from onnx import defs

    unknown = []
    for node in model.graph.node:
        domain = node.domain or ""
        if domain not in _KNOWN_DOMAINS:
            unknown.append(f"{node.op_type} (domain {domain!r}, node {node.name!r})")
        elif domain in ("", "ai.onnx") and not defs.has(node.op_type, opset, ""):
            unknown.append(f"{node.op_type} (node {node.name!r})")
    return sorted(set(unknown))


def _session_error(data: bytes) -> str | None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/NotImplemented/InvalidGraph types
        return f"{type(exc).__name__}: {exc}"
    return None


def check_graph(model: Any, opset: int) -> Any:
    """Validates a ModelProto; returns it with inferred shapes.

    Raises:
        UnsupportedOpError: an op is unconverted, unknown, or onnxruntime cannot run it.
        GraphCheckError: onnx.checker or strict shape inference rejects the graph.
    """
    import onnx

    unknown = _unknown_ops(model, opset)
    if unknown:
        raise UnsupportedOpError(
            f"the converted graph holds op(s) that ONNX opset {opset} does not define "
            f"(unconverted by tf2onnx): {', '.join(unknown)}"
        )
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GraphCheckError(f"the converted graph is invalid: {exc}") from None
    error = _session_error(inferred.SerializeToString())
    if error is not None:
        raise UnsupportedOpError(f"onnxruntime {_ort_version()} cannot load the converted graph: {error}")
    return inferred


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__

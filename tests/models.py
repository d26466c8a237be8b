"""Tiny ONNX classifiers built with the onnx package, for tests that need no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cnnport.runtime import METADATA_KEY, InputSpec, ModelCard, OutputSpec, ResizeSpec

# onnxruntime 1.20+ reads IR 10; pinning it keeps these files loadable by any
# onnxruntime the project supports, whatever onnx writes by default.
IR_VERSION = 10
OPSET = 17


@dataclass(frozen=True)
class TinyModel:
    """A linear softmax classifier on raw pixels, and its weights for a numpy reference."""

    path: Path
    card: ModelCard | None
    weights: np.ndarray
    bias: np.ndarray

    def reference(self, tensor: np.ndarray) -> np.ndarray:
        """What the graph computes, in numpy: softmax(flatten(x) / 255 @ W + b)."""
        logits = tensor.reshape(len(tensor), -1).astype(np.float32) / 255.0 @ self.weights + self.bias
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def build_classifier(
    path: Path,
    *,
    height: int = 8,
    width: int = 8,
    channels: int = 3,
    labels: tuple[str, ...] = ("zero", "one", "two", "three"),
    dtype: str = "uint8",
    with_card: bool = True,
    batch: int | str = "N",
    card: ModelCard | None = None,
    seed: int = 0,
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    activation: str = "Softmax",
) -> TinyModel:
    """Writes the classifier; random weights unless ``weights`` and ``bias`` are given.

    ``activation`` "Sigmoid" makes a multi-label classifier (give it a multilabel card).
    """
    rng = np.random.default_rng(seed)
    features, classes = height * width * channels, len(labels)
    if weights is None or bias is None:
        weights = rng.normal(0, 1.0, (features, classes)).astype(np.float32)
        bias = rng.normal(0, 0.1, classes).astype(np.float32)
    elem = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    graph_input = helper.make_tensor_value_info("image", elem, [batch, height, width, channels])
    graph_output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, classes])
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["pixels", "scale"], ["scaled"]),
        helper.make_node("Flatten", ["scaled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)
        if activation == "Softmax"
        else helper.make_node(activation, ["logits"], ["probabilities"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(255.0, np.float32), "scale"),
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(bias, "b"),
    ]
    graph = helper.make_graph(nodes, "tiny", [graph_input], [graph_output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if with_card:
        card = card or ModelCard(
            labels=labels,
            input=InputSpec(
                height=height,
                width=width,
                channels=channels,
                color="GRAY" if channels == 1 else "RGB",
                dtype=dtype,
            ),
            resize=ResizeSpec(mode="stretch", interpolation="area"),
            output=OutputSpec(name="probabilities", logits_name="logits"),
        )
        helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return TinyModel(path, card if with_card else None, weights, bias)

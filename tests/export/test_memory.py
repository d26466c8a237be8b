"""The low-memory conversion: weights leave tf2onnx's optimizer loop and come back intact.

No timing or memory thresholds here (benchmarks/export_memory.py measures those); these
tests prove the mechanism: large constants are detached, re-attached bit-exactly, and
the result is the graph stock tf2onnx writes, computing the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import tiny_model

OPSET = 17
# Small enough that the tiny model's conv and dense kernels count as "large".
MIN_BYTES = 512


@pytest.fixture(scope="module")
def traced():
    """The tiny model, its traced classifier function and tf2onnx's tensor names."""
    from cnnport.export.convert import _tensor_names, classifier_function

    model = tiny_model(seed=3)
    function, signature = classifier_function(model, (32, 32, 1), "uint8")
    concrete = function.get_concrete_function()
    return model, function, signature, concrete, _tensor_names(concrete)


def _onnx_graph(traced):
    from cnnport.export.convert import _erfc_handler
    from cnnport.export.lowmem import _to_onnx_graph, freeze

    _, _, _, concrete, (inputs, outputs, renames) = traced
    graph_def = freeze(concrete, inputs, outputs)
    return _to_onnx_graph(
        graph_def,
        OPSET,
        inputs,
        outputs,
        custom_op_handlers={"Erfc": (_erfc_handler, [])},
        tensors_to_rename=renames,
    )


def test_large_constants_are_detached_and_reattached_bit_exactly(traced):
    from tf2onnx import optimizer

    from cnnport.export.lowmem import attach_weights, detach_weights

    graph = _onnx_graph(traced)
    originals = {
        node.output[0]: node.get_tensor_value(as_list=False).copy()
        for node in graph.get_nodes()
        if node.is_const()
    }
    detached = detach_weights(graph, min_bytes=MIN_BYTES)
    # Two conv kernels and the dense kernel; the 1-D biases stay in the graph.
    assert len(detached) == 3
    assert all(v.ndim >= 2 and v.nbytes >= MIN_BYTES for v in detached.values())
    left = [n.get_tensor_value(as_list=False) for n in graph.get_nodes() if n.is_const()]
    assert all(v.ndim < 2 or v.nbytes < MIN_BYTES for v in left)

    proto = optimizer.optimize_graph(graph, catch_errors=True).make_model("test")
    attach_weights(proto, detached)

    from onnx import numpy_helper

    assert [i.name for i in proto.graph.input] == ["image"]
    initializers = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for name in detached:
        assert initializers[name].dtype == originals[name].dtype
        assert initializers[name].tobytes() == originals[name].tobytes()


def test_convert_writes_the_graph_stock_tf2onnx_writes(traced):
    """Same ops, same weights (as bytes), same outputs bit for bit as from_function."""
    import onnxruntime as ort
    import tf2onnx
    from onnx import numpy_helper

    from cnnport.export.convert import _erfc_handler, convert
    from cnnport.export.graphcheck import op_counts

    model, function, signature, _, _ = traced
    stock, _ = tf2onnx.convert.from_function(
        function, input_signature=signature, opset=OPSET, custom_op_handlers={"Erfc": (_erfc_handler, [])}
    )
    ours = convert(model, (32, 32, 1), "uint8", OPSET)
    assert op_counts(ours) == op_counts(stock)

    def weights(proto) -> list[bytes]:
        return sorted(numpy_helper.to_array(t).tobytes() for t in proto.graph.initializer)

    assert weights(ours) == weights(stock)
    images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 1), dtype=np.uint8)
    runs = [
        ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            ["probabilities", "logits"], {"image": images}
        )
        for p in (ours, stock)
    ]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_convert_reports_its_phases(traced):
    from cnnport.export.convert import convert

    phases: list[str] = []
    convert(traced[0], (32, 32, 1), "uint8", OPSET, on_phase=phases.append)
    assert phases == [
        "trace",
        "freeze",
        "grappler",
        "tf2onnx-process",
        "detach-weights",
        "tf2onnx-optimize",
        "make-model",
        "attach-weights",
    ]

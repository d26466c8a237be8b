"""The export's graph rewrites: exact results, and no rewrite where it would not be exact."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnport.export.graphopt import fold_weight_layout, hoist_input_layout

RNG = np.random.default_rng(0)


def _model(nodes, initializers, channels=3, out_channels=2, input_type=TensorProto.UINT8):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", input_type, ["N", 6, 6, channels])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", out_channels, 4, 4])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def _input_chain(scale, layout, channels=3):
    """image -> Cast -> Mul(scale) -> Add(-1) -> layout -> Conv -> out, as tf2onnx writes it."""
    nodes = [
        helper.make_node("Cast", ["image"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["m", "offset"], ["a"]),
        layout,
        helper.make_node("Conv", ["nchw", "w"], ["out"], kernel_shape=[3, 3]),
    ]
    weights = {
        "scale": np.asarray(scale, np.float32),
        "offset": np.float32(-1.0),
        "shape": np.array([-1, channels, 6, 6], np.int64),
        "w": RNG.normal(size=(2, channels, 3, 3)).astype(np.float32),
    }
    return _model(nodes, weights, channels)


TRANSPOSE = helper.make_node("Transpose", ["a"], ["nchw"], perm=[0, 3, 1, 2])
RESHAPE = helper.make_node("Reshape", ["a", "shape"], ["nchw"])


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


@pytest.mark.parametrize(("layout", "channels"), [(TRANSPOSE, 3), (RESHAPE, 1)])
def test_input_layout_moves_before_the_cast_and_gives_the_same_bits(layout, channels):
    model = _input_chain(1 / 255, layout, channels)
    x = RNG.integers(0, 256, (3, 6, 6, channels), dtype=np.uint8)
    expected = _run(model, x)
    rewritten = hoist_input_layout(onnx.load_from_string(model.SerializeToString()))
    onnx.checker.check_model(rewritten, full_check=True)
    ops = [(n.op_type, list(n.input)[:1]) for n in rewritten.graph.node]
    assert ops[0] == (layout.op_type, ["image"])
    assert [op for op, _ in ops] == [layout.op_type, "Cast", "Mul", "Add", "Conv"]
    np.testing.assert_array_equal(_run(rewritten, x), expected)


def test_a_float_input_graph_moves_its_layout_before_the_scalar_ops():
    # float32 input: no Cast; the flowing tensor is the Mul's second operand here.
    nodes = [
        helper.make_node("Mul", ["scale", "image"], ["m"]),
        helper.make_node("Sub", ["m", "offset"], ["a"]),
        TRANSPOSE,
        helper.make_node("Conv", ["nchw", "w"], ["out"], kernel_shape=[3, 3]),
    ]
    weights = {
        "scale": np.float32(1 / 127.5),
        "offset": np.float32(1.0),
        "w": RNG.normal(size=(2, 3, 3, 3)).astype(np.float32),
    }
    model = _model(nodes, weights, input_type=TensorProto.FLOAT)
    x = RNG.integers(0, 256, (2, 6, 6, 3)).astype(np.float32)
    expected = _run(model, x)
    rewritten = hoist_input_layout(onnx.load_from_string(model.SerializeToString()))
    onnx.checker.check_model(rewritten, full_check=True)
    assert [n.op_type for n in rewritten.graph.node] == ["Transpose", "Mul", "Sub", "Conv"]
    np.testing.assert_array_equal(_run(rewritten, x), expected)


def test_a_per_channel_constant_keeps_the_graph_as_it_is():
    # A (3,) mean broadcasts over the last (channel) axis: after a transpose it would
    # meet the width axis instead, so the rewrite must not happen.
    model = _input_chain(np.array([0.1, 0.2, 0.3], np.float32), TRANSPOSE)
    rewritten = hoist_input_layout(onnx.load_from_string(model.SerializeToString()))
    assert rewritten.graph.node[0].op_type == "Cast"
    assert rewritten.SerializeToString() == model.SerializeToString()


def test_a_cast_with_two_consumers_keeps_the_graph_as_it_is():
    model = _input_chain(1 / 255, TRANSPOSE)
    model.graph.node.append(helper.make_node("Identity", ["c"], ["side"]))
    model.graph.output.append(helper.make_tensor_value_info("side", TensorProto.FLOAT, ["N", 6, 6, 3]))
    before = model.SerializeToString()
    assert hoist_input_layout(model).SerializeToString() == before


def test_weight_reshape_and_transpose_are_folded_exactly():
    # tf2onnx's depthwise kernel: HWC1 weight -> Reshape -> Transpose -> Conv(group=C).
    kernel = RNG.normal(size=(3, 3, 3, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Reshape", ["kernel", "kshape"], ["k1"]),
        helper.make_node("Transpose", ["k1"], ["k2"], perm=[2, 3, 0, 1]),
        helper.make_node("Conv", ["nchw", "k2"], ["out"], kernel_shape=[3, 3], group=3),
    ]
    model = _model(nodes, {"kernel": kernel, "kshape": np.array([3, 3, 3, 1], np.int64)}, out_channels=3)
    x = RNG.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    expected = _run(model, x)
    folded = fold_weight_layout(onnx.load_from_string(model.SerializeToString()))
    onnx.checker.check_model(folded, full_check=True)
    assert [n.op_type for n in folded.graph.node] == ["Cast", "Transpose", "Conv"]
    weights = {i.name: numpy_helper.to_array(i) for i in folded.graph.initializer}
    assert set(weights) == {"k2"}  # the kernel and its shape are gone with their nodes
    np.testing.assert_array_equal(weights["k2"], kernel.reshape(3, 3, 3, 1).transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(_run(folded, x), expected)


def _kernel_transpose_model(**extra_initializers):
    """image -> Cast -> Transpose -> Conv, whose kernel goes through a Transpose of its own."""
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Transpose", ["kernel"], ["k"], perm=[0, 1, 2, 3]),
        helper.make_node("Conv", ["nchw", "k"], ["out"], kernel_shape=[3, 3]),
    ]
    kernel = RNG.normal(size=(2, 3, 3, 3)).astype(np.float32)
    return _model(nodes, {"kernel": kernel, **extra_initializers})


def test_an_initializer_that_can_be_fed_is_not_folded():
    # IR 3 style: an initializer listed as a graph input is only a default value.
    model = _kernel_transpose_model()
    model.graph.input.append(helper.make_tensor_value_info("kernel", TensorProto.FLOAT, [2, 3, 3, 3]))
    folded = fold_weight_layout(model)
    assert [n.op_type for n in folded.graph.node] == ["Cast", "Transpose", "Transpose", "Conv"]


def test_a_one_element_constant_of_higher_rank_keeps_the_graph_as_it_is():
    # Mul by a [1, 1, 1, 1] constant also broadcasts the rank: after the move the
    # result would gain axes.
    model = _input_chain(np.full((1, 1, 1, 1), 1 / 255, np.float32), TRANSPOSE)
    before = model.SerializeToString()
    assert hoist_input_layout(model).SerializeToString() == before


def test_a_reshape_shape_made_by_a_node_keeps_the_graph_as_it_is():
    model = _input_chain(1 / 255, RESHAPE, channels=1)
    shape = helper.make_node(
        "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([-1, 1, 6, 6], np.int64))
    )
    model.graph.initializer.remove(next(i for i in model.graph.initializer if i.name == "shape"))
    model.graph.node.insert(3, shape)  # after the Cast: moving the Reshape first would break the order
    before = model.SerializeToString()
    assert hoist_input_layout(model).SerializeToString() == before


def test_the_moved_node_gets_a_name_nobody_uses():
    model = _input_chain(1 / 255, TRANSPOSE)
    for node in model.graph.node:  # the Cast's output takes the name the rewrite would pick
        node.input[:] = ["image__layout" if n == "c" else n for n in node.input]
        node.output[:] = ["image__layout" if n == "c" else n for n in node.output]
    x = RNG.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    expected = _run(model, x)
    rewritten = hoist_input_layout(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert rewritten.graph.node[0].output[0] == "image__layout_1"
    np.testing.assert_array_equal(_run(rewritten, x), expected)


def test_fold_keeps_initializers_it_did_not_touch():
    model = _kernel_transpose_model(spare=np.float32(1.0))
    folded = fold_weight_layout(model)
    assert {i.name for i in folded.graph.initializer} == {"k", "spare"}  # kernel went with its node


@pytest.mark.parametrize(
    ("pads", "kernel", "strides", "dilations", "ceil"),
    [
        ((1, 1, 1, 1), (3, 3), (2, 2), (1, 1), 0),  # ResNet50V2's stem
        ((0, 2, 1, 0), (2, 3), (1, 2), (1, 1), 0),
        ((2, 2, 2, 2), (3, 3), (1, 1), (2, 2), 0),
        ((1, 0, 1, 1), (2, 2), (2, 2), (1, 1), 0),
    ],
)
def test_zero_pad_before_maxpool_keeps_its_zeros_in_onnxruntime(pads, kernel, strides, dilations, ceil):
    """onnxruntime folds Pad(0) into MaxPool, whose padding acts as -inf: on windows of
    negative values the answer changed. The rewrite must equal the original graph's
    meaning (onnx's reference evaluator) with every onnxruntime optimization on."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from cnnport.export.padpool import protect_zero_padded_maxpool

    top, left, bottom, right = pads
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="constant"),
        helper.make_node(
            "MaxPool",
            ["padded"],
            ["y"],
            kernel_shape=kernel,
            strides=strides,
            dilations=dilations,
            ceil_mode=ceil,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "padpool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 7, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    x = -np.abs(np.random.default_rng(0).normal(size=(3, 2, 7, 6))).astype(np.float32)
    x[0, 0, 3, 3] = 2.0  # one positive value in the interior
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    assert (expected == 0).any(), "border windows of negative values must be 0 in the original graph"
    rewritten = protect_zero_padded_maxpool(onnx.load_from_string(model.SerializeToString()))
    assert [n.op_type for n in rewritten.graph.node] == ["MaxPool", "Max"]
    session = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], expected)

"""The int8 GEMM rewrite (runtime/int8gemm.py): which convolutions move, and that the
outputs stay bit-identical through onnxruntime and the Engine."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnport.runtime import METADATA_KEY, Engine, InputSpec, ModelCard, OutputSpec, ProviderError
from cnnport.runtime.int8gemm import (
    cpu_has_amx_int8,
    cpu_sums_int8_exactly,
    has_gemm_convolutions,
    move_to_gemm,
)

from ..models import IR_VERSION, OPSET

# Bit-identical outputs are what the rewrite promises where onnxruntime's int8 sums are
# exact (VNNI, AMX); on AVX2 alone both kernels saturate 16-bit pair sums, differently.
exact_int8 = pytest.mark.skipif(
    not cpu_sums_int8_exactly(), reason="this CPU has no VNNI or AMX-INT8: int8 sums saturate (AVX2)"
)

SIZE = 12


class _Graph:
    """A QDQ int8 network written the way onnxruntime's quantizer writes one."""

    def __init__(self, seed: int = 0, zero_points_as_ints: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.ints = zero_points_as_ints
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _zero_point(self, name: str, size: int) -> None:
        if self.ints:  # helper.make_tensor keeps small int8 tensors in int32_data
            self.inits.append(helper.make_tensor(name, TensorProto.INT8, [size], [0] * size))
        else:
            self.inits.append(numpy_helper.from_array(np.zeros(size, np.int8), name))

    def conv(
        self, x: str, cin: int, cout: int, k: int, *, group: int = 1, weights=None, zero_point=None
    ) -> str:
        i = self.count = self.count + 1
        depth = cin // group * k * k
        w = (
            self.rng.integers(-127, 128, (cout, cin // group, k, k)).astype(np.int8)
            if weights is None
            else weights
        )
        scale = (self.rng.uniform(0.5, 1.5, cout) / (np.sqrt(depth) * 73) * 3).astype(np.float32)
        zp = zero_point or f"wz{i}"
        if zero_point is None:
            self._zero_point(zp, cout)
        self.inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(scale, f"ws{i}")]
        self.inits += [
            numpy_helper.from_array(np.float32(0.02), f"ys{i}"),
            numpy_helper.from_array(np.uint8(0), f"yz{i}"),
        ]
        self.nodes += [
            helper.make_node("DequantizeLinear", [f"w{i}", f"ws{i}", zp], [f"wf{i}"], axis=0),
            # no Relu: zero point 0 clips at 0, as the quantizer folds a Relu
            helper.make_node("Conv", [x, f"wf{i}"], [f"c{i}"], pads=[k // 2] * 4, group=group),
            helper.make_node("QuantizeLinear", [f"c{i}", f"ys{i}", f"yz{i}"], [f"q{i}"]),
            helper.make_node("DequantizeLinear", [f"q{i}", f"ys{i}", f"yz{i}"], [f"a{i}"]),
        ]
        return f"a{i}"

    def model(self, last: str, channels: int, classes: int = 3) -> onnx.ModelProto:
        self.inits += [
            numpy_helper.from_array(self.rng.normal(0, 0.05, (channels, classes)).astype(np.float32), "fc"),
            numpy_helper.from_array(np.float32(1 / 255), "xs"),
            numpy_helper.from_array(np.uint8(0), "xz"),
        ]
        self.nodes += [
            helper.make_node("GlobalAveragePool", [last], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["flat"]),
            helper.make_node("MatMul", ["flat", "fc"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"]),
        ]
        graph = helper.make_graph(
            self.nodes,
            "int8",
            [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", SIZE, SIZE, 3])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])],
            self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
        )
        card = ModelCard(labels=tuple("abc"[:classes]), input=InputSpec(height=SIZE, width=SIZE, channels=3),
                         output=OutputSpec(name="probabilities"))  # fmt: skip
        helper.set_model_props(model, {METADATA_KEY: card.to_json()})
        return model


def _network(**kwargs) -> tuple[onnx.ModelProto, dict[str, bool]]:
    """A network with convolutions that must move and ones that must not (name -> moves)."""
    g = _Graph(**kwargs)
    g.nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
    g.nodes.append(helper.make_node("DequantizeLinear", ["nchw", "xs", "xz"], ["x"]))
    expected = {}
    a = g.conv("x", 3, 64, 3)  # depth 27
    expected["w1"] = False
    a = g.conv(a, 64, 128, 3)  # depth 576, 128 channels
    expected["w2"] = True
    a = g.conv(a, 128, 128, 3, group=128)  # depthwise
    expected["w3"] = False
    a = g.conv(a, 128, 64, 3)  # 64 channels: too narrow
    expected["w4"] = False
    a = g.conv(a, 64, 256, 1)  # depth 64: too shallow
    expected["w5"] = False
    a = g.conv(a, 256, 128, 1)  # depth 256
    expected["w6"] = True
    minus128 = g.rng.integers(-127, 128, (128, 128, 3, 3)).astype(np.int8)
    minus128[5, 0, 0, 0] = -128
    a = g.conv(a, 128, 128, 3, weights=minus128)  # w - 1 does not exist
    expected["w7"] = False
    g._zero_point("shared", 128)  # two deep convolutions sharing their zero point
    a = g.conv(a, 128, 128, 3, zero_point="shared")
    a = g.conv(a, 128, 128, 3, zero_point="shared")
    expected["w8"] = expected["w9"] = True
    g._zero_point("mixed", 128)  # shared by a deep convolution and a shallow one: neither moves
    a = g.conv(a, 128, 128, 3, zero_point="mixed")
    a = g.conv(a, 128, 128, 1, zero_point="mixed")  # depth 128
    expected["w10"] = expected["w11"] = False
    return g.model(a, 128), expected


def _session(data: bytes, threads: int = 1, profile: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = profile
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("zero_points_as_ints", [True, False], ids=["int32_data", "raw_data"])
def test_moves_the_deep_wide_convolutions_and_nothing_else(zero_points_as_ints):
    model, expected = _network(zero_points_as_ints=zero_points_as_ints)
    data = model.SerializeToString()
    moved_data, moved = move_to_gemm(data)
    assert moved == sum(expected.values()) == 4
    after = onnx.load_from_string(moved_data)
    onnx.checker.check_model(after)
    before = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    changed = {
        t.name
        for t in after.graph.initializer
        if not np.array_equal(numpy_helper.to_array(t), before[t.name])
    }
    weights = {name for name, moves in expected.items() if moves}
    assert {name for name in changed if name.startswith("w") and not name.startswith("wz")} == weights
    for t in after.graph.initializer:
        if t.name in weights:
            assert np.array_equal(numpy_helper.to_array(t).astype(int), before[t.name].astype(int) - 1)
    assert [n.SerializeToString() for n in after.graph.node] == [
        n.SerializeToString() for n in model.graph.node
    ]
    assert {p.key: p.value for p in after.metadata_props} == {p.key: p.value for p in model.metadata_props}


@exact_int8
@pytest.mark.parametrize("threads", [1, 2])
def test_outputs_are_bit_identical_and_the_int8_kernels_ran(threads, tmp_path):
    model, _ = _network()
    data = model.SerializeToString()
    moved_data, _ = move_to_gemm(data)
    images = np.random.default_rng(1).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    plain = _session(data, threads).run(None, {"image": images})[0]
    gemm = _session(moved_data, threads, profile=True)
    after = gemm.run(None, {"image": images})[0]
    assert np.array_equal(plain, after)
    # a network whose answer depends on the image (one 8-bit step anywhere would show)
    assert plain.std(axis=0).max() > 1e-3
    with open(gemm.end_profiling()) as handle:
        ops = {e["args"].get("op_name") for e in json.load(handle) if e.get("cat") == "Node"}
    assert "QLinearConv" in ops  # onnxruntime fused the QDQ pairs into its int8 convolution


@exact_int8
def test_qoperator_convolutions_move_too():
    rng = np.random.default_rng(2)
    w = rng.integers(-127, 128, (128, 64, 3, 3)).astype(np.int8)
    inits = [
        numpy_helper.from_array(np.float32(0.02), "xs"), numpy_helper.from_array(np.uint8(100), "xz"),
        numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.full(128, 0.002, np.float32), "ws"),
        helper.make_tensor("wz", TensorProto.INT8, [128], [0] * 128),
        numpy_helper.from_array(np.float32(0.05), "ys"), numpy_helper.from_array(np.uint8(128), "yz"),
    ]  # fmt: skip
    node = helper.make_node(
        "QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], pads=[1] * 4
    )
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 64, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 128, 10, 10])], inits,
    )  # fmt: skip
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    data = data.SerializeToString()
    moved_data, moved = move_to_gemm(data)
    assert moved == 1
    x = rng.integers(0, 256, (1, 64, 10, 10), dtype=np.uint8)
    before, after = (_session(d).run(None, {"x": x})[0] for d in (data, moved_data))
    assert np.array_equal(before, after)
    assert before.std() > 5


def test_models_it_cannot_use_come_back_unchanged():
    float_model, _ = _network()
    for t in float_model.graph.initializer:  # the same graph with float weights: nothing int8
        if t.data_type == TensorProto.INT8 and t.name.startswith("w") and not t.name.startswith("wz"):
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    data = float_model.SerializeToString()
    assert move_to_gemm(data) == (data, 0)
    garbage = b"\x0a\xff\xff\xff\x0f not protobuf"
    assert move_to_gemm(garbage) == (garbage, 0)


def test_engine_gives_the_same_probabilities_either_way(tmp_path):
    model, _ = _network()
    path = tmp_path / "int8.onnx"
    path.write_bytes(model.SerializeToString())
    assert has_gemm_convolutions(path)
    images = np.random.default_rng(3).integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
    direct = Engine(path, providers="cpu", int8_gemm=False)
    if cpu_sums_int8_exactly():
        gemm = Engine(path, providers="cpu", int8_gemm=True)
        assert (direct.int8_gemm, gemm.int8_gemm) == (False, True)
        assert np.array_equal(direct.run(images), gemm.run(images))
    else:  # forced on where it would change the outputs: refused
        with pytest.raises(ProviderError, match="int8_gemm needs a CPU with VNNI or AMX-INT8"):
            Engine(path, providers="cpu", int8_gemm=True)
    auto = Engine(path, providers="cpu", threads=1)
    if cpu_has_amx_int8():  # timed at load, the choice is whichever was faster
        assert auto.int8_gemm_ms is not None
        assert min(auto.int8_gemm_ms) > 0
        assert auto.int8_gemm == (auto.int8_gemm_ms[1] < 0.97 * auto.int8_gemm_ms[0])
    else:  # nothing to gain without AMX: not timed, not moved
        assert auto.int8_gemm is False
        assert auto.int8_gemm_ms is None
    assert np.array_equal(auto.run(images), direct.run(images))


def test_int8_gemm_is_refused_for_openvino(tmp_path):
    model, _ = _network()
    path = tmp_path / "int8.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ProviderError, match="int8_gemm is onnxruntime's"):
        Engine(path, providers="openvino", int8_gemm=True)


def test_int8_gemm_forced_on_a_cpu_without_vnni_is_refused(tmp_path, monkeypatch):
    # On an AVX2-only Zen 2 EPYC the forced rewrite moved a convolution's outputs by up to
    # 5 levels: the "identical outputs" held only where int8 sums are exact.
    model, _ = _network()
    path = tmp_path / "int8.onnx"
    path.write_bytes(model.SerializeToString())
    monkeypatch.setattr("cnnport.runtime.engine.cpu_sums_int8_exactly", lambda: False)
    with pytest.raises(ProviderError, match="int8_gemm needs a CPU with VNNI or AMX-INT8"):
        Engine(path, providers="cpu", int8_gemm=True)
    assert Engine(path, providers="cpu", int8_gemm=False).int8_gemm is False


@pytest.mark.parametrize(
    ("flags", "exact"),
    [
        (set(), True),  # nothing known (not Linux): not refused
        ({"fp", "asimd", "asimddp"}, True),  # Arm: no vpmaddubsw
        ({"sse2", "avx2", "fma"}, False),  # x86 AVX2 alone: saturating pairs
        ({"sse2", "avx2", "avx512_vnni"}, True),
        ({"sse2", "avx2", "avx_vnni"}, True),
    ],
)
def test_only_an_x86_cpu_without_vnni_or_amx_counts_as_saturating(monkeypatch, flags, exact):
    from cnnport.runtime import int8gemm

    monkeypatch.setattr(int8gemm, "_cpu_flags", lambda: flags)
    assert int8gemm.cpu_sums_int8_exactly() is exact

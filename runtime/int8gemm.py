"""int8 convolutions on onnxruntime's GEMM kernels, where the CPU has AMX (issue #22).

onnxruntime runs an int8 convolution whose weights have zero point 0 (how cnnport,
and onnxruntime's quantizer, write them: symmetric weights) on its direct "symmetric
convolution" kernels, which use AVX-512 VNNI at most. A convolution whose weight zero
point is not 0 goes to im2col and onnxruntime's int8 GEMM instead, and that GEMM runs
on Intel's AMX tiles where the CPU has them (MLAS asks Linux for the tile state at
start). On a 2-core Xeon with AMX, moving the deep, wide convolutions there took
ResNet50 int8 from 8.16 to 6.15 ms at 2 threads and from 13.9 to 10.3 ms at one;
the shallow and narrow ones are slower there, depthwise convolutions have no GEMM path,
and for a small network the move can lose at 2 threads (a 96 px convnet: 0.31 -> 0.35
ms, while 0.43 -> 0.37 at one), so the Engine times both at load before it keeps it
(docs/performance.md#session-11-int8-convolutions-on-amx).

The move is exact on a CPU with VNNI or AMX (:func:`cpu_sums_int8_exactly`; without them
onnxruntime's int8 kernels saturate pairs of products at 16 bits, each kernel its own
way, and the Engine refuses the move): each chosen weight tensor w (int8, zero point 0) becomes w - 1 with
zero point -1, so w' - z = w for every weight and the integer sums are the same (both
kernels then requantize the same sums with the same float scales): the outputs were
bit-identical in every case tried (tests/runtime/test_int8gemm.py: QDQ and QOperator
graphs at 1 and 2 threads; ResNet50 and a trained convnet's int8 exports).
A weight of -128 has no w - 1, so such a tensor is left as it is.

The rewrite works on the serialized bytes, with the protobuf reader of
:mod:`.modelfile`, because the runtime does not depend on the onnx package: the weights
are patched in place (same length), and each zero-point tensor is written again with
its values as raw bytes, the graph's length prefix following.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from .modelfile import _fields, _MalformedError, _text, _varint

__all__ = [
    "MIN_GEMM_CHANNELS",
    "MIN_GEMM_DEPTH",
    "cpu_has_amx_int8",
    "cpu_sums_int8_exactly",
    "has_gemm_convolutions",
    "move_to_gemm",
]

# Which convolutions move: at least this many weights per output channel (input channels
# x kernel height x width) and this many output channels. Per convolution in
# onnxruntime's profiler on the AMX Xeon, the shallower and the narrower ones were slower
# on the GEMM path (ResNet50's 64 -> 256 1x1 at 56x56, its 3x3 64 -> 64, convnet's 32-
# and 64-channel stages); of the rules tried end to end (depth 256 or 512, channels 1,
# 128 or 256), this one was fastest on ResNet50 int8 at 2 threads (6.15 ms, from 8.16).
MIN_GEMM_DEPTH = 256
MIN_GEMM_CHANNELS = 128

_INT8 = 3  # TensorProto.DataType
_GRAPH, _NODE, _INITIALIZER = 7, 1, 5


@functools.cache
@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's flags as Linux reports them in /proc/cpuinfo (read once); empty elsewhere."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    return next(
        (frozenset(line.split()) for line in text.splitlines() if line.startswith("flags")), frozenset()
    )


def cpu_has_amx_int8() -> bool:
    """True where the kernel reports AMX-INT8 (Linux's /proc/cpuinfo flags); False elsewhere."""
    return "amx_int8" in _cpu_flags()


# Where onnxruntime's x86 int8 kernels sum u8 x s8 products in 32 bits (VNNI's vpdpbusd,
# AMX tiles). Without them (AVX2, AVX-512 without VNNI) MLAS multiplies with vpmaddubsw,
# whose pairs of products saturate at 16 bits, and its direct and GEMM kernels pair them
# differently: on an AVX2 Zen 2 EPYC a 3x3 convolution of random full-range int8 weights
# came out up to 5 levels apart between the two, so the rewrite is exact only here.
_EXACT_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_sums_int8_exactly() -> bool:
    """False only where the CPU is known to saturate int8 sums: an x86 CPU whose flags Linux
    reports, without VNNI or AMX-INT8 (where :func:`move_to_gemm` is not exact). True where
    it has them, and where nothing could be read (not Linux, or an Arm CPU: onnxruntime's
    Arm int8 kernels do not use vpmaddubsw)."""
    flags = _cpu_flags()
    if "sse2" not in flags:  # not an x86 CPU Linux described: nothing known against it
        return True
    return bool(_EXACT_INT8_FLAGS & flags)


@dataclass
class _Tensor:
    field: tuple[int, int] = (0, 0)  # the whole initializer field in the graph, key included
    dtype: int = 0
    dims: list[int] = dataclass_field(default_factory=list)
    raw: tuple[int, int] | None = None
    ints: list[int] | None = None  # int32_data, where small tensors keep int8 values


@dataclass
class _Node:
    op: str = ""
    inputs: list[str] = dataclass_field(default_factory=list)
    outputs: list[str] = dataclass_field(default_factory=list)
    group: int = 1


def _varints(buf: memoryview, wire: int, value) -> list[int]:
    """A repeated integer field's values, packed (LEN) or not."""
    if wire == 0:
        return [value]
    values, pos = [], value[0]
    while pos < value[1]:
        number, pos = _varint(buf, pos, value[1])
        values.append(number)
    return values


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _field_start(buf: memoryview, number: int, span: tuple[int, int]) -> int:
    """Where the LEN field whose payload is ``span`` begins (its key), assuming the minimal
    varints every protobuf writer emits; checked against the bytes."""
    prefix = _encode_varint(number << 3 | 2) + _encode_varint(span[1] - span[0])
    start = span[0] - len(prefix)
    if start < 0 or bytes(buf[start : span[0]]) != prefix:
        raise _MalformedError(f"field {number} at byte {span[0]} has a non-minimal prefix")
    return start


def _read_tensor(buf: memoryview, span: tuple[int, int]) -> tuple[str, _Tensor]:
    name, tensor = "", _Tensor(field=(_field_start(buf, _INITIALIZER, span), span[1]))
    for number, wire, value in _fields(buf, *span):
        if number == 8 and wire == 2:
            name = _text(buf, value)
        elif number == 2 and wire == 0:
            tensor.dtype = value
        elif number == 1 and wire in (0, 2):
            tensor.dims += _varints(buf, wire, value)
        elif number == 9 and wire == 2:
            tensor.raw = value
        elif number == 5 and wire in (0, 2):
            tensor.ints = (tensor.ints or []) + _varints(buf, wire, value)
    return name, tensor


def _read_node(buf: memoryview, span: tuple[int, int]) -> _Node:
    node = _Node()
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            node.inputs.append(_text(buf, value))
        elif number == 2:
            node.outputs.append(_text(buf, value))
        elif number == 4:
            node.op = _text(buf, value)
        elif number == 5:
            name, integer = "", None
            for sub, sub_wire, sub_value in _fields(buf, *value):
                if sub == 1 and sub_wire == 2:
                    name = _text(buf, sub_value)
                elif sub == 3 and sub_wire == 0:
                    integer = sub_value
            if name == "group" and integer is not None:
                node.group = integer
    return node


def _graph(buf: memoryview) -> tuple[tuple[int, int], list[_Node], dict[str, _Tensor]]:
    """The model's graph field (key to end), its nodes and its initializers."""
    graphs = [value for number, wire, value in _fields(buf, 0, len(buf)) if number == _GRAPH and wire == 2]
    if len(graphs) != 1:
        raise _MalformedError(f"{len(graphs)} graph fields")
    span = graphs[0]
    nodes, tensors = [], {}
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == _NODE:
            nodes.append(_read_node(buf, value))
        elif number == _INITIALIZER:
            name, tensor = _read_tensor(buf, value)
            tensors[name] = tensor
    return (_field_start(buf, _GRAPH, span), span[1]), nodes, tensors


def _int8_values(buf: memoryview, tensor: _Tensor | None) -> np.ndarray | None:
    if tensor is None or tensor.dtype != _INT8:
        return None
    if tensor.raw is not None:
        return np.frombuffer(buf[tensor.raw[0] : tensor.raw[1]], np.int8)
    if tensor.ints is not None:  # int32 varints: negative ones are 64-bit two's complement
        return np.array([v - (1 << 64) if v >= 1 << 63 else v for v in tensor.ints], np.int64).astype(np.int8)
    return None


def _candidates(
    nodes: list[_Node], tensors: dict[str, _Tensor], min_depth: int, min_channels: int
) -> dict[str, list[str]]:
    """The weights of the convolutions to move, by their zero point's name."""
    users: dict[str, list[tuple[_Node, int]]] = {}
    for node in nodes:
        for slot, name in enumerate(node.inputs):
            users.setdefault(name, []).append((node, slot))
    chosen: dict[str, list[str]] = {}
    for node in nodes:
        if node.op == "DequantizeLinear" and len(node.inputs) >= 3 and node.outputs:
            convs = users.get(node.outputs[0], [])
            if not convs or any(user.op != "Conv" or slot != 1 or user.group != 1 for user, slot in convs):
                continue
            weight, zero_point = node.inputs[0], node.inputs[2]
        elif node.op == "QLinearConv" and len(node.inputs) >= 6 and node.group == 1:
            weight, zero_point = node.inputs[3], node.inputs[5]
        else:
            continue
        w = tensors.get(weight)
        if w is None or w.raw is None or w.dtype != _INT8 or zero_point not in tensors:
            continue
        if len(w.dims) < 3 or int(np.prod(w.dims[1:])) < min_depth or w.dims[0] < min_channels:
            continue
        if len(users[weight]) != 1:
            continue
        chosen.setdefault(zero_point, []).append(weight)
    # A zero point shared with a weight that is not moved would move that one too.
    return {z: ws for z, ws in chosen.items() if len(ws) == len(users[z])}


def move_to_gemm(
    data: bytes, min_depth: int = MIN_GEMM_DEPTH, min_channels: int = MIN_GEMM_CHANNELS
) -> tuple[bytes, int]:
    """The serialized model with its int8 convolutions of depth >= ``min_depth`` moved to
    onnxruntime's GEMM kernels (see the module doc), and how many were moved. Returns
    ``data`` itself and 0 when none qualifies or the bytes are not a model it can read."""
    buf = memoryview(data)
    try:
        (graph_start, graph_end), nodes, tensors = _graph(buf)
        groups = _candidates(nodes, tensors, min_depth, min_channels)
        out = bytearray(data)
        replaced: list[tuple[int, int, bytes]] = []  # zero-point fields written again
        moved = 0
        for zero_point_name, weight_names in groups.items():
            zero_points = _int8_values(buf, tensors[zero_point_name])
            weights = [_int8_values(buf, tensors[name]) for name in weight_names]
            if (
                zero_points is None
                or np.any(zero_points != 0)
                or any(w.size == 0 or w.min() == -128 for w in weights)
            ):
                continue  # no w - 1 for a weight of -128: the whole group stays
            for name, w in zip(weight_names, weights, strict=True):
                start, end = tensors[name].raw
                out[start:end] = (w.astype(np.int16) - 1).astype(np.int8).tobytes()
            replaced.append(
                (*tensors[zero_point_name].field, _zero_point_field(buf, tensors[zero_point_name]))
            )
            moved += len(weight_names)
    except _MalformedError:
        return data, 0
    if not moved:
        return data, 0
    graph = bytearray()
    pos = _payload_start(buf, graph_start)
    for start, end, field_bytes in sorted(replaced):
        graph += out[pos:start] + field_bytes
        pos = end
    graph += out[pos:graph_end]
    return bytes(out[:graph_start] + _len_field(_GRAPH, bytes(graph)) + out[graph_end:]), moved


def _payload_start(buf: memoryview, field_start: int) -> int:
    """Where a LEN field's payload begins, given where its key is."""
    _, pos = _varint(buf, field_start, len(buf))
    _, pos = _varint(buf, pos, len(buf))
    return pos


def _zero_point_field(buf: memoryview, tensor: _Tensor) -> bytes:
    """The initializer field again, its values -1 as raw bytes (int32_data dropped)."""
    payload_start = _payload_start(buf, tensor.field[0])
    size = int(np.prod(tensor.dims)) if tensor.dims else 1
    kept = bytearray()
    for number, wire, value in _fields(buf, payload_start, tensor.field[1]):
        if number in (5, 9):
            continue
        kept += _copy_field(buf, number, wire, value)
    kept += _len_field(9, b"\xff" * size)
    return _len_field(_INITIALIZER, bytes(kept))


def _copy_field(buf: memoryview, number: int, wire: int, value) -> bytes:
    key = _encode_varint(number << 3 | wire)
    if wire == 0:
        return key + _encode_varint(value)
    if wire == 2:
        return key + _encode_varint(value[1] - value[0]) + bytes(buf[value[0] : value[1]])
    raise _MalformedError(f"field {number} of an int8 zero point has wire type {wire}")


def has_gemm_convolutions(path: Path) -> bool:
    """Whether :func:`move_to_gemm` would move any convolution of the .onnx at ``path``."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return move_to_gemm(data)[1] > 0

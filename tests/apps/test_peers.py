"""The peers benchmark's machinery: workers in fresh processes, interleaved rounds, cells.

No timing assertions. The peer runtimes themselves (ai-edge-litert, openvino) are the
optional ``peers`` extra; without it their rows must say so, not crash.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from cnnport.apps.benchmark.peers import PEER_RUNTIMES, PeerTiming, Setting, peak_gops, time_group

QUICK = PeerTiming(rounds=2, calls=3, min_s=0.0, max_s=0.5, settle_s=0.0)


@pytest.fixture
def peer_folder(tiny_model, tmp_path):
    """A peers model folder holding only the .onnx (no .tflite, no int8)."""
    shutil.copy(tiny_model.path, tmp_path / "model.onnx")
    (tmp_path / "meta.json").write_text(json.dumps({"input": list(tiny_model.card.input.shape), "macs": 192}))
    return tmp_path


def test_workers_are_timed_in_rounds_at_every_batch_size(peer_folder):
    keys = [("engine", "fp32"), ("ort", "fp32")]
    cells = time_group(peer_folder, Setting(threads=1, batches=(1, 4)), keys, QUICK)
    assert set(cells) == {(runtime, "fp32", batch) for runtime in ("engine", "ort") for batch in (1, 4)}
    for cell in cells.values():
        assert cell.status == "ok"
        assert len(cell.rounds) == QUICK.rounds
        assert len(cell.times) >= QUICK.rounds * QUICK.calls
        assert cell.median_ms > 0
        assert "-" in cell.spread()


def test_a_runtime_that_cannot_load_is_a_row_with_its_reason(peer_folder):
    keys = [("engine", "int8"), ("litert", "fp32"), ("ort", "fp32")]
    cells = time_group(peer_folder, Setting(threads=1, batches=(1,)), keys, QUICK)
    assert cells[("ort", "fp32", 1)].status == "ok"
    for key in (("engine", "int8", 1), ("litert", "fp32", 1)):
        assert cells[key].status.startswith("unsupported: "), cells[key]
        assert not cells[key].times
    if importlib.util.find_spec("ai_edge_litert") is None:
        assert "ai_edge_litert" in cells[("litert", "fp32", 1)].status


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs the peers extra (openvino)")
def test_openvino_runs_the_same_onnx(peer_folder):
    cells = time_group(peer_folder, Setting(threads=1, batches=(1,)), [("openvino-f32", "fp32")], QUICK)
    assert cells[("openvino-f32", "fp32", 1)].status == "ok"


def test_the_registry_names_every_peer_runtime():
    assert PEER_RUNTIMES.names() == [
        "engine",
        "ort",
        "engine-openvino",
        "engine-openvino-bf16",
        "ort-options",
        "litert",
        "openvino-f32",
        "openvino",
    ]


def test_peak_is_cores_times_lanes_times_ops_times_clock():
    # 2 cores x 16 fp32 lanes x 2 FLOP (one FMA) x 2.6 GHz
    assert peak_gops(2, 2.6, 16, 2) == pytest.approx(166.4)


def test_multiply_accumulates_count_conv_depthwise_and_dense():
    keras = pytest.importorskip("keras")
    from cnnport.apps.benchmark.peer_models import multiply_accumulates

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 * 3*3*3*4 = 6912
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8*8 * 3*3*4 = 2304
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)  # 4*10 = 40
    assert multiply_accumulates(keras.Model(inputs, outputs)) == 6912 + 2304 + 40

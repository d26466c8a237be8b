"""Where onnxruntime's time goes: its own profiler, per operator type, at 1 and 2 threads.

Opens each model of cnnport.apps.benchmark.peer_models (built by peers.py) as the Engine
opens it (graph optimization level all, spinning bounded to the Engine's 20 us), runs ``--warmup`` calls, then
``--calls`` profiled calls at batch 1, and sums the kernel time of each operator type
(after onnxruntime's fusions: FusedConv, QLinearConv, ...) per call. Convolutions are
split by kind, read from the optimized graph: depthwise, pointwise (1x1), spatial. The 2T/1T column is how much the
second thread gives that operator; ``other`` is the run's wall time not spent inside a
kernel (the executor, thread hand-offs).

LiteRT 2.3's Python package exposes no per-operator profiler (the profiling protos
ship, the benchmark binary that fills them does not), so LiteRT appears by its total.

    python benchmarks/peers_profile.py [--cache bench-models/peers] [--models mobilenet_v2-224,resnet50-224]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cnnport.runtime.modelfile import SPIN_DURATION_US

_CONVS = ("Conv", "FusedConv", "QLinearConv", "ConvInteger")


def conv_kinds(model_path: Path) -> dict[str, str]:
    """Node name -> 'depthwise', 'pointwise' or 'spatial' for every convolution of the
    optimized graph onnxruntime saved (its own fused and NHWC nodes included), read from
    the attributes: group > 1 is depthwise (MobileNet's), a 1x1 kernel is pointwise.

    Attributes, not the profiler's shapes: a prepacked int8 weight shows no shape there.
    """
    import onnx

    kinds = {}
    for node in onnx.load(model_path).graph.node:
        if node.op_type not in _CONVS:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("group", 1) > 1:
            kinds[node.name] = "depthwise"
        elif list(attrs.get("kernel_shape", [])) == [1, 1]:
            kinds[node.name] = "pointwise"
        else:
            kinds[node.name] = "spatial"
    return kinds


def profile(path: Path, threads: int, calls: int, warmup: int) -> dict[str, float]:
    """Milliseconds per call of each operator type (and 'other', and 'total'), batch 1."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # The Engine's spinning (runtime/modelfile.py), so the profile is of what the Engine runs.
    options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_DURATION_US))
    folder = tempfile.mkdtemp(prefix="cnnport-profile-")
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "ort")
    options.optimized_model_filepath = os.path.join(folder, "optimized.onnx")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    x = np.random.default_rng(0).integers(0, 256, (1, *spec.shape[1:]), dtype=np.uint8)
    for _ in range(warmup + calls):
        session.run(None, {spec.name: x})
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[warmup:]
    start = runs[0]["ts"]
    kinds = conv_kinds(Path(folder) / "optimized.onnx")
    per_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time") or event["ts"] < start:
            continue
        op = event["args"].get("op_name", "?")
        kind = kinds.get(event["name"].removesuffix("_kernel_time"))
        per_op[f"{op} ({kind})" if kind else op] += event["dur"] / 1000 / len(runs)
    total = sum(r["dur"] for r in runs) / 1000 / len(runs)
    per_op["other"] = total - sum(per_op.values())
    per_op["total"] = total
    return dict(per_op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="bench-models/peers")
    parser.add_argument("--models", default="mobilenet_v2-224,resnet50-224")
    parser.add_argument(
        "--variants", default="fp32,int8", help="comma-separated: fp32, int8, or int8-RECIPE (peers_int8.py)"
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    print(f"command: python benchmarks/peers_profile.py {' '.join(sys.argv[1:])}")
    for name in args.models.split(","):
        for variant in args.variants.split(","):
            path = Path(args.cache) / name / ("model.onnx" if variant == "fp32" else f"model.{variant}.onnx")
            one, two = (profile(path, t, args.calls, args.warmup) for t in (1, 2))
            print(f"\n### {name} {variant}, onnxruntime {ort.__version__}, batch 1, ms per call\n")
            print("| operator | 1 thread | 2 threads | 2T/1T gain | share at 2T |")
            print("|---|---|---|---|---|")
            for op in sorted(one, key=lambda k: (k == "total", -one[k])):
                a, b = one[op], two.get(op, 0.0)
                gain = f"{a / b:.2f}x" if b > 0 else "-"
                print(f"| {op} | {a:.3f} | {b:.3f} | {gain} | {b / two['total']:.0%} |")


if __name__ == "__main__":
    main()

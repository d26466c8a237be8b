"""Peak memory and time of exporting keras.applications models: cnnport vs stock tf2onnx.

Each (model, method) pair runs in a fresh subprocess, so that one's allocations do not
count against the next; peak memory is the child's peak resident set size (ru_maxrss).
A thread in the child samples the resident set every 10 ms and attributes it to the
phase running then, for a timeline (tracemalloc would miss TensorFlow's and protobuf's
C++ allocations). Stock tf2onnx is one opaque call, so it has a single phase.
Models use weights=None (no download); the size of the weights is the same.

    .venv/bin/python benchmarks/export_memory.py [--models mobilenet_v2,resnet50] [--size 224] [--timeline]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODELS = {"mobilenet_v2": "MobileNetV2", "resnet50": "ResNet50", "vgg16": "VGG16"}
DEFAULT_MODELS = "mobilenet_v2,resnet50"

_CHILD = r"""
import json, os, resource, sys, threading, time
PAGE = os.sysconf("SC_PAGE_SIZE")
phases = []  # [name, start seconds, RSS at start, peak RSS]

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

def enter(name):
    now = rss()
    if phases:
        phases[-1][3] = max(phases[-1][3], now)
    phases.append([name, time.perf_counter(), now, now])

def sample():
    # The machine is shared: an export past the cap stops here instead of swapping.
    while True:
        now = rss()
        phases[-1][3] = max(phases[-1][3], now)
        if now > cap:
            sys.stderr.write(f"over the {cap / 2**30:g} GiB cap in phase {phases[-1][0]}\n")
            os._exit(3)
        time.sleep(0.01)

cap = float(sys.argv[4]) * 2**30
enter("import")
threading.Thread(target=sample, daemon=True).start()
import keras, tensorflow as tf
name, size, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
enter("build-keras")
model = getattr(keras.applications, name)(input_shape=(size, size, 3), weights=None, classes=1000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if method == "cnnport":
    from cnnport.export.convert import convert
    from cnnport.export.graphcheck import check_graph
    from cnnport.export.graphopt import optimize_graph
    proto = convert(model, (size, size, 3), "uint8", 17, on_phase=enter)
    enter("graphopt")
    proto = optimize_graph(proto)
    enter("check-graph")
    proto = check_graph(proto, 17)
else:
    import tf2onnx
    enter("tf2onnx.from_keras")
    spec = [tf.TensorSpec((None, size, size, 3), tf.float32, name="image")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
enter("serialize")
size_bytes = len(proto.SerializeToString())
seconds = time.perf_counter() - start
enter("end")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
timeline = [{"phase": p[0], "seconds": (phases[i + 1][1] if i + 1 < len(phases) else p[1]) - p[1],
             "start_kib": p[2] // 1024, "peak_kib": p[3] // 1024} for i, p in enumerate(phases[:-1])]
print(json.dumps({"seconds": seconds, "peak_kib": peak, "model_kib": before, "timeline": timeline,
                  "nodes": len(proto.graph.node), "bytes": size_bytes}))
"""


def measure(model: str, size: int, method: str, cap_gib: float) -> dict:
    """One export in a fresh Python process; returns its figures (or the error)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, MODELS[model], str(size), method, str(cap_gib)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _gib(kib: float) -> str:
    return f"{kib / 2**20:.2f}"


def print_timeline(model: str, method: str, figures: dict) -> None:
    """One row per phase: duration, resident set at its start, and its peak."""
    print(f"  {model} / {method}: {'phase':<20} {'s':>6} {'start GiB':>10} {'peak GiB':>9}")
    for row in figures["timeline"]:
        print(
            f"  {'':<{len(model) + len(method) + 3}} {row['phase']:<20} {row['seconds']:>6.1f} "
            f"{_gib(row['start_kib']):>10} {_gib(row['peak_kib']):>9}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument(
        "--methods", default="cnnport,tf2onnx-stock", help="comma list of cnnport, tf2onnx-stock"
    )
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--timeline", action="store_true", help="print each export's phase timeline")
    parser.add_argument("--max-gib", type=float, default=12.0, help="stop an export past this resident set")
    args = parser.parse_args()
    header = (
        f"{'model':<14} {'method':<16} {'time s':>7} {'peak RSS GiB':>13} {'after load GiB':>15} {'nodes':>6}"
    )
    print(header)
    print("-" * len(header))
    for model in args.models.split(","):
        for method in args.methods.split(","):
            r = measure(model, args.size, method, args.max_gib)
            if "error" in r:
                print(f"{model:<14} {method:<16} {r['error']}", flush=True)
                continue
            print(
                f"{model:<14} {method:<16} {r['seconds']:>7.1f} {_gib(r['peak_kib']):>13} "
                f"{_gib(r['model_kib']):>15} {r['nodes']:>6}",
                flush=True,
            )
            if args.timeline:
                print_timeline(model, method, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())

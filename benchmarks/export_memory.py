"""Peak memory and time of exporting keras.applications models: cnnport vs stock tf2onnx.

Each (model, method) pair runs in a fresh subprocess, so that one's allocations do not
count against the next; peak memory is the child's peak resident set size (ru_maxrss).
Models use weights=None (no download); the size of the weights is the same.

    .venv/bin/python benchmarks/export_memory.py [--models mobilenet_v2,resnet50] [--size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODELS = {"mobilenet_v2": "MobileNetV2", "resnet50": "ResNet50"}

_CHILD = r"""
import json, resource, sys, time
import keras, tensorflow as tf
name, size, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = getattr(keras.applications, name)(input_shape=(size, size, 3), weights=None, classes=1000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if method == "cnnport":
    from cnnport.export.convert import convert
    from cnnport.export.graphcheck import check_graph
    proto = check_graph(convert(model, (size, size, 3), "uint8", 17), 17)
else:
    import tf2onnx
    spec = [tf.TensorSpec((None, size, size, 3), tf.float32, name="image")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "model_kib": before,
                  "nodes": len(proto.graph.node), "bytes": proto.ByteSize()}))
"""


def measure(model: str, size: int, method: str) -> dict:
    """One export in a fresh Python process; returns its figures (or the error)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, MODELS[model], str(size), method],
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    args = parser.parse_args()
    header = (
        f"{'model':<14} {'method':<16} {'time s':>7} {'peak RSS GiB':>13} {'after load GiB':>15} {'nodes':>6}"
    )
    print(header)
    print("-" * len(header))
    for model in args.models.split(","):
        for method in ("cnnport", "tf2onnx-stock"):
            r = measure(model, args.size, method)
            if "error" in r:
                print(f"{model:<14} {method:<16} {r['error']}")
                continue
            print(
                f"{model:<14} {method:<16} {r['seconds']:>7.1f} {r['peak_kib'] / 2**20:>13.2f} "
                f"{r['model_kib'] / 2**20:>15.2f} {r['nodes']:>6}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

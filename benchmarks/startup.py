"""Cold start of an edge app: import the runtime, load a model, predict once.

Each row is a fresh Python process, timed from spawn to exit, with its own peak
resident memory (VmHWM, read by the process itself as its last act: ru_maxrss would
include the parent's memory copied at fork). Rows run interleaved in one run so they can
be compared; medians over --repeats.

    python benchmarks/startup.py [--model model.onnx] [--repeats 7]

Without --model it builds a LeNet-5-shaped ONNX (random weights, 32x32 gray, 10
classes) with the onnx package, so it runs before any model has been trained.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = {
    "python -c pass (interpreter floor)": "pass",
    "cnnport: import runtime + load + predict once": (
        "import numpy as np\n"
        "from cnnport.runtime import Engine\n"
        "engine = Engine({model!r}, providers='cpu')\n"
        "engine.predict(np.zeros((480, 640, 3), np.uint8))\n"
    ),
    "import tensorflow (alone)": "import tensorflow",
}


def lenet_onnx(path: Path) -> Path:
    """A LeNet-5-shaped classifier graph with random weights and a cnnport card."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cnnport.runtime import METADATA_KEY, InputSpec, ModelCard

    rng = np.random.default_rng(0)

    def weight(name, *shape):
        return numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Cast", ["image"], ["x0"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x0"], ["x1"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x1", "c1w", "c1b"], ["x2"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["x2"], ["x3"]),
        helper.make_node("MaxPool", ["x3"], ["x4"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["x4", "c2w", "c2b"], ["x5"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["x5"], ["x6"]),
        helper.make_node("MaxPool", ["x6"], ["x7"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["x7"], ["x8"]),
        helper.make_node("Gemm", ["x8", "f1w", "f1b"], ["x9"]),
        helper.make_node("Relu", ["x9"], ["x10"]),
        helper.make_node("Gemm", ["x10", "f2w", "f2b"], ["x11"]),
        helper.make_node("Relu", ["x11"], ["x12"]),
        helper.make_node("Gemm", ["x12", "f3w", "f3b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"]),
    ]
    weights = [
        weight("c1w", 6, 1, 5, 5), weight("c1b", 6), weight("c2w", 16, 6, 5, 5), weight("c2b", 16),
        weight("f1w", 400, 120), weight("f1b", 120), weight("f2w", 120, 84), weight("f2b", 84),
        weight("f3w", 84, 10), weight("f3b", 10),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "lenet5",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 32, 32, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    card = ModelCard(labels=tuple(str(i) for i in range(10)), input=InputSpec(32, 32, 1, "GRAY"))
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.save(model, str(path))
    return path


PEAK = "\nprint('VmHWM', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"


def measure(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one fresh interpreter running ``code``."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code + PEAK], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark process failed: {code!r}\n{result.stderr}")
    peak_kib = int(result.stdout.split("VmHWM")[-1].split()[0])
    return elapsed, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an .onnx with a card (default: a generated LeNet-5)")
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(lenet_onnx(Path(tmp) / "lenet5.onnx"))
        rows = {name: [] for name in SCRIPTS}
        for _ in range(args.repeats):  # interleaved, so drift hits every row alike
            for name, code in SCRIPTS.items():
                rows[name].append(measure(code.format(model=model)))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"model: {Path(model).name if args.model else 'generated LeNet-5 (32x32 gray, 10 classes)'}")
    print(f"{'process':<48} {'median s':>9} {'min s':>7} {'peak MiB':>9}")
    for name, samples in rows.items():
        seconds = [s for s, _ in samples]
        memory = [m for _, m in samples]
        print(
            f"{name:<48} {statistics.median(seconds):>9.3f} {min(seconds):>7.3f} {statistics.median(memory):>9.1f}"
        )


if __name__ == "__main__":
    main()

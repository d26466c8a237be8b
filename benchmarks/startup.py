"""Cold start of an edge app: import the runtime, load a model, predict once.

Each row is a fresh Python process, timed from spawn to exit, with its own peak
resident memory (VmHWM, read by the process itself as its last act: ru_maxrss would
include the parent's memory copied at fork). Rows run interleaved in one run so they can
be compared; medians over --repeats.

    python benchmarks/startup.py [--model model.onnx] [--cache DIR] [--repeats 7]

Without --model it uses the default demo model: LeNet-5 trained on digits and exported
by cnnport.apps.benchmark.models (about a minute to build; reused from --cache).
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

from cnnport.apps.benchmark.models import digits_lenet

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
    parser.add_argument("--model", default=None, help="an .onnx with a card (default: the demo's LeNet-5)")
    parser.add_argument("--cache", default=None, help="folder to build the default model into and reuse")
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = args.model
        else:
            folder = Path(args.cache or tmp)
            folder.mkdir(parents=True, exist_ok=True)
            model = str(digits_lenet(folder))
        rows = {name: [] for name in SCRIPTS}
        for _ in range(args.repeats):  # interleaved, so drift hits every row alike
            for name, code in SCRIPTS.items():
                rows[name].append(measure(code.format(model=model)))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"model: {model if args.model else 'the demo model, LeNet-5 trained on digits (32x32 gray, 10 classes)'}"
    )
    print(f"{'process':<48} {'median s':>9} {'min s':>7} {'peak MiB':>9}")
    for name, samples in rows.items():
        seconds = [s for s, _ in samples]
        memory = [m for _, m in samples]
        print(
            f"{name:<48} {statistics.median(seconds):>9.3f} {min(seconds):>7.3f} {statistics.median(memory):>9.1f}"
        )


if __name__ == "__main__":
    main()

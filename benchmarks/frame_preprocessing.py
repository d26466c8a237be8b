"""The frame model's preprocessing against Python's, on real frames: pixels and cost.

For each card (gray 32 px area like LeNet-5 on digits, RGB 96 px area like convnet, RGB
224 px linear and center-crop like the keras.applications zoo) and each frame color (BGR
from OpenCV, RGBA from a canvas), on real photographs (matplotlib's sample
``grace_hopper.jpg`` and this repository's screenshots, resized to 640x480, 1280x720,
480x640 portrait and 320x240):

- **pixels**: the graph's input tensor against :func:`cnnport.runtime.preprocess` (what
  training and the Engine use): the largest difference in gray levels and how many values
  differ;
- **cost** at batch 1 on a 640x480 frame, one thread, rounds interleaved, medians:
  Python's preprocessing (OpenCV) against the graph's (onnxruntime), preprocessing only,
  in wall time and in CPU time (which a shared machine disturbs less).
  The whole-model comparison is `cnnport bench MODEL.onnx --runners engine-predict,engine-frame`.

    .venv/bin/python benchmarks/frame_preprocessing.py [--rounds 15] [--calls 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from cnnport.export.frame import preprocessing_model
from cnnport.runtime import InputSpec, ModelCard, ResizeSpec, preprocess
from cnnport.runtime.preprocess import to_frame_color

SIZES = ((480, 640), (720, 1280), (640, 480), (240, 320))
CARDS = {
    "gray 32 area (lenet5)": (
        InputSpec(height=32, width=32, channels=1, color="GRAY"),
        ResizeSpec("stretch", "area"),
    ),
    "rgb 96 area (convnet)": (InputSpec(height=96, width=96), ResizeSpec("stretch", "area")),
    "rgb 224 linear crop (zoo)": (InputSpec(height=224, width=224), ResizeSpec("center_crop", "linear")),
}
COLORS = ("BGR", "RGBA")


def photographs() -> list[np.ndarray]:
    """Real photographs (BGR) this machine has without a download."""
    import matplotlib

    sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    root = Path(__file__).resolve().parents[1] / "docs"
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in [sample, *sorted(root.glob("*.png"))]]
    return [i for i in images if i is not None]


def frames_of(photo: np.ndarray) -> list[np.ndarray]:
    return [cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA) for h, w in SIZES]


def session(card: ModelCard, color: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        preprocessing_model(card, color).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def pixel_rows(photos: list[np.ndarray]) -> list[str]:
    rows = []
    for name, (spec, resize) in CARDS.items():
        card = ModelCard(labels=("a", "b"), input=spec, resize=resize)
        for color in COLORS:
            graph = session(card, color)
            worst = differ = total = 0
            for photo in photos:
                for frame in frames_of(photo):
                    python = preprocess(frame, spec, resize)
                    ours = graph.run(None, {"frame": to_frame_color(frame, color)[None]})[0]
                    gap = np.abs(python.astype(np.int32) - ours.astype(np.int32))
                    worst, differ, total = (
                        max(worst, int(gap.max())),
                        differ + int((gap > 0).sum()),
                        total + gap.size,
                    )
            rows.append(f"{name:<28} {color:<5} {worst:>9} {differ:>10,} {total:>12,} {differ / total:>8.2%}")
    return rows


def cost_rows(photo: np.ndarray, rounds: int, calls: int) -> list[str]:
    frame = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    cv2.setNumThreads(1)
    rows = []
    for name, (spec, resize) in CARDS.items():
        card = ModelCard(labels=("a", "b"), input=spec, resize=resize)
        runs = {"python (OpenCV)": lambda spec=spec, resize=resize: preprocess(frame, spec, resize)}
        for color in COLORS:
            graph, fed = session(card, color), to_frame_color(frame, color)[None]
            runs[f"graph {color}"] = lambda graph=graph, fed=fed: graph.run(None, {"frame": fed})
        wall: dict[str, list[float]] = {k: [] for k in runs}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(rounds):
            for key, run in runs.items():
                run()
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    run()
                wall[key].append((time.perf_counter() - start) / calls * 1000)
                cpu[key].append((time.process_time() - start_cpu) / calls * 1000)
        base, base_cpu = statistics.median(wall["python (OpenCV)"]), statistics.median(cpu["python (OpenCV)"])
        for key in runs:
            median, median_cpu = statistics.median(wall[key]), statistics.median(cpu[key])
            rows.append(
                f"{name:<28} {key:<16} {median:>9.3f} {median / base:>7.2f}x {median_cpu:>9.3f} {median_cpu / base_cpu:>7.2f}x"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    photos = photographs()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}"
    )
    print(f"{len(photos)} photographs x {len(SIZES)} sizes {', '.join(f'{w}x{h}' for h, w in SIZES)}\n")
    print(f"{'card':<28} {'frame':<5} {'max level':>9} {'differ':>10} {'values':>12} {'share':>8}")
    print("\n".join(pixel_rows(photos)))
    print(
        f"\ncost on one 640x480 frame, 1 thread, median of {args.rounds} rounds x {args.calls} calls "
        "(wall time, and CPU time of the process, which a shared machine disturbs less)"
    )
    print(f"{'card':<28} {'path':<16} {'wall ms':>9} {'ratio':>8} {'cpu ms':>9} {'ratio':>8}")
    print("\n".join(cost_rows(photos[0], args.rounds, args.calls)))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Frames per second of `cnnport webcam --headless` next to its two limits, in one run.

- decode only: reading the video with OpenCV, nothing else;
- engine only: ``Engine.predict`` on frames already in memory (preprocess + inference);
- app --jsonl: the whole headless app as a server runs it (capture thread, engine,
  smoothing, one JSON line per frame; no drawing, since nobody sees the pixels);
- app --jsonl --save: the same, also drawing the overlay and encoding the annotated
  video (MJPG, in its own thread).

Target: the app reaches at least 0.8 x the slower of decode-only and engine-only,
i.e. the pipeline adds little beyond its slowest stage. Medians over --repeats.

    python benchmarks/webcam_fps.py [--model model.onnx] [--cache DIR] [--frames 300] [--repeats 3]

Without --model it uses the default demo model: LeNet-5 trained on digits and exported
by cnnport.apps.benchmark.models (about a minute to build; reused from --cache).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from cnnport.apps.benchmark.clips import make_video
from cnnport.apps.benchmark.models import digits_lenet
from cnnport.apps.benchmark.report import cpu_name
from cnnport.apps.webcam import WebcamApp, WebcamConfig
from cnnport.runtime import Engine


def decode_fps(video: Path) -> float:
    capture = cv2.VideoCapture(str(video))
    started, count = time.perf_counter(), 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count / (time.perf_counter() - started)


def engine_fps(engine: Engine, frames: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for frame in frames:
        engine.predict(frame, top_k=3)
    return len(frames) / (time.perf_counter() - started)


def app_fps(engine: Engine, video: Path, folder: Path, save: bool) -> float:
    """The headless app writing JSON lines, and with ``save`` the annotated video too."""
    config = WebcamConfig(
        source=str(video),
        headless=True,
        jsonl=str(folder / "out.jsonl"),
        save=str(folder / "out.avi") if save else None,
    )
    return WebcamApp(engine, config).run().fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an .onnx with a card (default: the demo's LeNet-5)")
    parser.add_argument("--cache", default=None, help="folder to build the default model into and reuse")
    parser.add_argument("--frames", type=int, default=300, help="frames in the generated 640x480 video")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; medians reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = Path(args.model) if args.model else digits_lenet(Path(args.cache or tmp))
        video = make_video(folder / "clip.avi", args.frames)
        capture = cv2.VideoCapture(str(video))
        frames = [capture.read()[1] for _ in range(min(args.frames, 100))]
        capture.release()
        engine = Engine(model, providers="cpu", spinning=False)
        rows: dict[str, list[float]] = {
            "decode only": [],
            "engine only": [],
            "app --jsonl": [],
            "app --jsonl --save": [],
        }
        counts = {"decode only": args.frames, "engine only": len(frames)}
        cpu: dict[str, list[float]] = {name: [] for name in rows}
        runs = {
            "decode only": lambda: decode_fps(video),
            "engine only": lambda: engine_fps(engine, frames),
            "app --jsonl": lambda: app_fps(engine, video, folder, save=False),
            "app --jsonl --save": lambda: app_fps(engine, video, folder, save=True),
        }
        for _ in range(args.repeats):  # interleaved, so drift affects every row alike
            for name, run in runs.items():
                # CPU time of the whole process (all threads) per frame: unlike FPS, it
                # does not depend on how many cores other programs leave free.
                started = time.process_time()
                rows[name].append(run())
                cpu[name].append((time.process_time() - started) * 1000 / counts.get(name, args.frames))
    medians = {name: statistics.median(values) for name, values in rows.items()}
    cpu_ms = {name: statistics.median(values) for name, values in cpu.items()}
    floor = min(medians["decode only"], medians["engine only"])
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}; OpenCV {cv2.__version__}")
    print(f"model: {model.name}; video: {args.frames} frames 640x480 MJPG; medians of {args.repeats}")
    print(f"load average before: {load:.2f} (other programs competing for the CPUs)")
    print(f"{'measurement':<22} {'FPS':>8} {'x slower limit':>15} {'CPU ms/frame':>13}")
    for name, value in medians.items():
        print(f"{name:<22} {value:>8.1f} {value / floor:>15.2f} {cpu_ms[name]:>13.2f}")
    verdict = "meets" if medians["app --jsonl"] >= 0.8 * floor else "MISSES"
    print(f"target app >= 0.8 x min(decode, engine) = {0.8 * floor:.1f} FPS: {verdict}")


if __name__ == "__main__":
    main()

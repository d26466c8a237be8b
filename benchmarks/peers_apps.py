"""What the webcam app and `cnnport predict` gain from issue 22's Engine changes, side by side.

On one model (a peers model, e.g. MobileNetV2 at 224 from benchmarks/peers.py), rows:

- ``predict``: ``Engine.predict`` on 640x480 BGR frames (decode done; what `cnnport
  predict` does per image after reading it, and what a custom app does per frame),
  milliseconds per frame, batch 1;
- ``webcam``: the headless app on a 640x480 MJPG video (capture thread, engine,
  smoothing, a JSON line per frame), frames per second;

each with the Engine as it was before issue 22 (onnxruntime's own unbounded spinning:
predict only; the app already ran with spinning off), as it is now on the CPU provider
(spinning 20 us for predict, off for the app, as the commands open it), and on the
``openvino`` and ``openvino-bf16`` providers. Repeats are interleaved (every row once,
then again), medians reported, /proc/loadavg before and after.

    python benchmarks/peers_apps.py --model bench-models/peers/mobilenet_v2-224/model.onnx [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from cnnport.apps.benchmark.clips import make_video
from cnnport.apps.webcam import WebcamApp, WebcamConfig
from cnnport.runtime import Engine, ProviderError


def _before(path: Path, threads: int | None) -> Engine:
    """The Engine before issue 22: a session with onnxruntime's own spinning (no bound)."""
    import onnxruntime as ort

    engine = Engine(path, providers="cpu", threads=threads)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    engine._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return engine


def _engines(path: Path, threads: int | None) -> dict[str, Callable[[bool], Engine | None]]:
    """Row name -> engine factory taking ``live`` (the webcam app's engine: spinning off)."""
    return {
        "before (cpu, onnxruntime spinning)": lambda live: None if live else _before(path, threads),
        "cpu (the Engine now)": lambda live: Engine(
            path, providers="cpu", threads=threads, spinning=not live
        ),
        "openvino": lambda live: Engine(path, providers="openvino", threads=threads),
        "openvino-bf16 (reduced precision)": lambda live: Engine(
            path, providers="openvino-bf16", threads=threads
        ),
    }


def _predict_ms(engine: Engine, frames: list[np.ndarray]) -> float:
    engine.predict(frames[0])
    times = []
    for frame in frames:
        started = time.perf_counter()
        engine.predict(frame, top_k=3)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _webcam_fps(engine: Engine, video: Path, folder: Path) -> float:
    config = WebcamConfig(source=str(video), headless=True, jsonl=str(folder / "out.jsonl"))
    return WebcamApp(engine, config).run().fps


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an .onnx with a card")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the runtime's)")
    parser.add_argument("--frames", type=int, default=120, help="frames of the video, and predict calls")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.model)
    print(f"command: python benchmarks/peers_apps.py {' '.join(sys.argv[1:])}")
    before = _loadavg()
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = make_video(folder / "clip.avi", args.frames)
        capture = cv2.VideoCapture(str(video))
        frames = [capture.read()[1] for _ in range(args.frames)]
        capture.release()
        engines = {}
        for name, make in _engines(path, args.threads).items():
            try:
                engines[name] = (make(False), make(True))
            except ProviderError as exc:
                print(f"{name}: {exc}")
        for _ in range(args.repeats):  # interleaved: drift in the load hits every row alike
            for name, (batch, live) in engines.items():
                results.setdefault((name, "predict"), []).append(_predict_ms(batch, frames))
                if live is not None:
                    results.setdefault((name, "webcam"), []).append(_webcam_fps(live, video, folder))
    print(
        f"\n{path}, threads {args.threads or 'default'}, medians of {args.repeats}; loadavg {before} -> {_loadavg()}\n"
    )
    print(
        "| Engine | predict ms/frame (640x480 BGR) | vs before | webcam --headless --jsonl FPS | vs cpu now |"
    )
    print("|---|---|---|---|---|")
    first = statistics.median(results[(next(iter(engines)), "predict")])
    webcam_cpu = results.get(("cpu (the Engine now)", "webcam"))
    for name in engines:
        ms = statistics.median(results[(name, "predict")])
        fps = results.get((name, "webcam"))
        fps_cell = f"{statistics.median(fps):.1f}" if fps else "same as cpu (spinning was already off)"
        gain = f"{statistics.median(fps) / statistics.median(webcam_cpu):.2f}x" if fps and webcam_cpu else "-"
        print(f"| {name} | {ms:.2f} | {first / ms:.2f}x faster | {fps_cell} | {gain} |")


if __name__ == "__main__":
    main()

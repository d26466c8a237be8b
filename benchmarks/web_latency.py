"""The page's latency in headless Chromium beside native onnxruntime, in one run.

LeNet-5 (32x32 gray) and keras.applications MobileNetV2 at 224x224 (cnnport's
``mobilenet_v2``, weights=None: latency does not depend on the weights) are exported with
``--frame RGBA``, then timed at batch 1, one thread and several, side by side:

- ``native``: onnxruntime in Python, ``session.run`` on the tensor model;
- ``ort-web``: onnxruntime-web WASM in headless Chromium, ``session.run`` on the same
  tensor model, timed inside the page (no DevTools round trip);
- ``native frame``: the Engine's session on the RGBA frame model, a 640x480 frame;
- ``page``: the cnnport page itself (`cnnport web`'s site, served cross-origin isolated),
  ``model.classify`` of a 640x480 RGBA frame: what the live view waits for per frame.

    .venv/bin/python benchmarks/web_latency.py [--repeats 50] [--threads N] [--models lenet5,mobilenet_v2]

Target (issue 21): WASM with threads within 2x of native.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = {"lenet5": (32, 1), "mobilenet_v2": (224, 3)}
FRAME = (480, 640)


def _export(folder: Path, name: str) -> tuple[Path, Path]:
    import keras

    from cnnport.apps.cli import main as cnnport
    from cnnport.runtime import InputSpec
    from cnnport.train import TrainConfig, build_model

    size, channels = SIZES[name]
    keras.utils.set_random_seed(0)
    spec = InputSpec(height=size, width=size, channels=channels, color="GRAY" if channels == 1 else "RGB")
    model = build_model(name, spec, 10, TrainConfig(model=name))
    model.save(folder / f"{name}.keras")
    onnx_path = folder / f"{name}.onnx"
    if cnnport(["-q", "export", str(folder / f"{name}.keras"), "-o", str(onnx_path), "--frame", "RGBA"]) != 0:
        raise SystemExit(f"export of {name} failed")
    return onnx_path, folder / f"{name}.frame-rgba.onnx"


def _native(path: Path, feed: np.ndarray, threads: int, repeats: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    times = []
    for i in range(10 + repeats):
        started = time.perf_counter()
        session.run([output], {name: feed})
        if i >= 10:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _ort_web(path: Path, feed: np.ndarray, threads: int, repeats: int) -> float:
    from cnnport.export.webbackend import WebSession

    session = WebSession(path, threads=threads)
    try:
        return statistics.median(session.time(feed, session.outputs[0], warmup=10, repeats=repeats))
    finally:
        session.close()


def _page(site: Path, threads: int, repeats: int) -> tuple[float, str]:
    from cnnport.export.chromium import Chromium
    from cnnport.export.webserver import SiteServer

    with SiteServer(site) as server, Chromium(camera=False, timeout=600) as browser:
        page = browser.open(f"{server.url}?camera=off&backend=wasm&threads={threads}")
        page.wait_for("window.cnnport && (window.cnnport.ready || window.cnnport.failed)", timeout=300)
        if page.evaluate("window.cnnport.failed"):
            raise SystemExit(f"the page failed: {page.evaluate('window.cnnport.failed')}")
        ms = page.evaluate(
            f"import('./backend.js').then(m => m.timeModel(window.cnnport.state.model, {repeats}, 10))",
            timeout=600,
        )
        return ms, browser.version


def _rows(name: str, folder: Path, threads: int, repeats: int) -> tuple[list[tuple], str]:
    from cnnport.apps.web import SiteConfig, write_site

    tensor, frame_model = _export(folder, name)
    size, channels = SIZES[name]
    rng = np.random.default_rng(0)
    tensor_feed = rng.integers(0, 256, (1, size, size, channels), dtype=np.uint8)
    frame_feed = rng.integers(0, 256, (1, *FRAME, 4), dtype=np.uint8)
    site = write_site(tensor, folder / f"{name}-site", SiteConfig(webgpu=False))
    rows, version = [], ""
    for n in sorted({1, threads}):
        native = _native(tensor, tensor_feed, n, repeats)
        rows.append((name, f"{size}x{size}x{channels}", "native onnxruntime", n, native, native))
        rows.append(
            (
                name,
                f"{size}x{size}x{channels}",
                "ort-web WASM",
                n,
                _ort_web(tensor, tensor_feed, n, repeats),
                native,
            )
        )
        native_frame = _native(frame_model, frame_feed, n, repeats)
        rows.append((name, "640x480 RGBA frame", "native onnxruntime", n, native_frame, native_frame))
        page_ms, version = _page(site.root, n, repeats)
        rows.append((name, "640x480 RGBA frame", "page (cnnport JS)", n, page_ms, native_frame))
    return rows, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--models", default="lenet5,mobilenet_v2")
    args = parser.parse_args()
    rows, version = [], ""
    with tempfile.TemporaryDirectory(prefix="cnnport-web-latency-") as folder:
        for name in args.models.split(","):
            made, version = _rows(name, Path(folder), args.threads, args.repeats)
            rows += made
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}; "
        f"{version}, headless, WASM; batch 1, median of {args.repeats} after 10 warm-up"
    )
    print("| model | input | runtime | threads | median ms | vs native, same input and threads |")
    print("|---|---|---|---:|---:|---:|")
    for model, feed, runtime, n, ms, native in rows:
        print(f"| {model} | {feed} | {runtime} | {n} | {ms:.2f} | {ms / native:.2f}x |")


if __name__ == "__main__":
    main()

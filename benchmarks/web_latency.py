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

    .venv/bin/python benchmarks/web_latency.py [--repeats 50] [--rounds 10] [--threads N] [--models lenet5,mobilenet_v2]

Every row is opened first and then timed in interleaved rounds (as `cnnport bench` does),
so a busy moment of a shared machine falls on all rows alike.

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


def _native(path: Path, feed: np.ndarray, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name

    def timed(runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            session.run([output], {name: feed})
            times.append((time.perf_counter() - started) * 1000)
        return times

    return timed, session


def _ort_web(path: Path, feed: np.ndarray, threads: int):
    from cnnport.export.webbackend import WebSession

    session = WebSession(path, threads=threads)
    return (lambda runs: session.time(feed, session.outputs[0], warmup=0, repeats=runs)), session


class _Page:
    """The cnnport page in its own Chromium, on ``threads`` WASM threads."""

    def __init__(self, site: Path, threads: int) -> None:
        from cnnport.export.chromium import Chromium
        from cnnport.export.webserver import SiteServer

        self.server = SiteServer(site).start()
        self.browser = Chromium(camera=False, timeout=600)
        self.page = self.browser.open(f"{self.server.url}?camera=off&backend=wasm&threads={threads}")
        self.page.wait_for("window.cnnport && (window.cnnport.ready || window.cnnport.failed)", timeout=300)
        if self.page.evaluate("window.cnnport.failed"):
            raise SystemExit(f"the page failed: {self.page.evaluate('window.cnnport.failed')}")

    def __call__(self, runs: int) -> list[float]:
        # timeModel returns the median; one call per run keeps every time.
        return [
            self.page.evaluate(
                "import('./backend.js').then(m => m.timeModel(window.cnnport.state.model, 1, 0))", timeout=600
            )
            for _ in range(runs)
        ]

    def close(self) -> None:
        self.browser.close()
        self.server.close()


def _rows(name: str, folder: Path, threads: int, repeats: int, rounds: int) -> tuple[list[tuple], str]:
    """Every row opened first, then timed in interleaved rounds, so a busy moment of the
    machine falls on all rows alike."""
    from cnnport.apps.web import SiteConfig, write_site

    tensor, frame_model = _export(folder, name)
    size, channels = SIZES[name]
    rng = np.random.default_rng(0)
    tensor_feed = rng.integers(0, 256, (1, size, size, channels), dtype=np.uint8)
    frame_feed = rng.integers(0, 256, (1, *FRAME, 4), dtype=np.uint8)
    site = write_site(tensor, folder / f"{name}-site", SiteConfig(webgpu=False))
    rows, keep = [], []
    shape = f"{size}x{size}x{channels}"
    for n in sorted({1, threads}):
        native, session = _native(tensor, tensor_feed, n)
        web, web_session = _ort_web(tensor, tensor_feed, n)
        native_frame, frame_session = _native(frame_model, frame_feed, n)
        page = _Page(site.root, n)
        keep += [session, web_session, frame_session, page]
        rows += [
            [name, shape, "native onnxruntime", n, native, []],
            [name, shape, "ort-web WASM", n, web, []],
            [name, "640x480 RGBA frame", "native onnxruntime", n, native_frame, []],
            [name, "640x480 RGBA frame", "page (cnnport JS)", n, page, []],
        ]
    version = keep[1].browser_version
    for row in rows:
        row[4](10)  # warm-up
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for row in rows:
            row[5] += row[4](per_round)
    for thing in keep:
        if hasattr(thing, "close"):
            thing.close()
    table = []
    for i, row in enumerate(rows):
        native_row = rows[i - i % 2]  # the native row of the same input and threads
        table.append((*row[:4], statistics.median(row[5]), statistics.median(native_row[5])))
    return table, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per row, in all rounds")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds over all rows")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--models", default="lenet5,mobilenet_v2")
    args = parser.parse_args()
    rows, version = [], ""
    with tempfile.TemporaryDirectory(prefix="cnnport-web-latency-") as folder:
        for name in args.models.split(","):
            made, version = _rows(name, Path(folder), args.threads, args.repeats, args.rounds)
            rows += made
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}; "
        f"{version}, headless, WASM; batch 1, median of {args.repeats} runs in {args.rounds} interleaved "
        "rounds after 10 warm-up"
    )
    print("| model | input | runtime | threads | median ms | vs native, same input and threads |")
    print("|---|---|---|---:|---:|---:|")
    for model, feed, runtime, n, ms, native in rows:
        print(f"| {model} | {feed} | {runtime} | {n} | {ms:.2f} | {ms / native:.2f}x |")


if __name__ == "__main__":
    main()

"""The page's latency in headless Chromium beside native onnxruntime, in one run.

LeNet-5 (32x32 gray) and keras.applications MobileNetV2 at 224x224 (cnnport's
``mobilenet_v2``, weights=None: latency does not depend on the weights) are exported with
``--frame RGBA``, then timed at batch 1, one thread and several, side by side:

- ``native``: onnxruntime in Python, ``session.run`` on the tensor model (and its
  variants: no spinning, int8);
- ``ort-web ...``: onnxruntime-web in headless Chromium, ``session.run`` on the same tensor
  model timed inside the page (no DevTools round trip), one row per option tried
  (VARIANTS: static shapes, proxy worker, no spinning, no memory pattern, parallel
  execution, the .ort model, the int8 model, the WebGPU build's WASM, WebGPU on the
  browser's adapter: SwiftShader's software one on a machine without a GPU);
- ``native frame``: ``Engine.run`` on the RGBA frame model, an opaque 640x480 frame (as a
  camera's is; after two such frames the Engine runs them on a session with that size
  fixed, and so does the page);
- ``page``: the cnnport page itself (`cnnport web`'s site, served cross-origin isolated),
  ``model.classify`` of a 640x480 RGBA frame: what the live view waits for per frame.

    .venv/bin/python benchmarks/web_latency.py [--repeats 40] [--rounds 8] [--threads N]
        [--models lenet5,mobilenet_v2] [--variants wasm,proxy,...] [--no-page]

Every row is opened first and then timed in interleaved rounds (as `cnnport bench` does),
so a busy moment of a shared machine falls on all rows alike; /proc/loadavg is printed at
the start and the end of each model's rounds, and each row gets its 10th-90th percentile.
Each ort-web row's first output is compared with native onnxruntime's (max |dp|).

Target (issue 21): WASM with threads within 2x of native.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = {"lenet5": (32, 1), "mobilenet_v2": (224, 3)}
FRAME = (480, 640)
NO_SPINNING = {"extra": {"session": {"intra_op": {"allow_spinning": "0"}}}}
# ort-web options tried, each a row: WebSession keyword arguments, and which model file
# ("onnx", "ort", "int8"). "static" is filled per model with its batch axis' name.
VARIANTS: dict[str, dict] = {
    "wasm": {},
    "static": {"options": "static"},
    "no-spin": {"options": NO_SPINNING},
    "proxy": {"proxy": True},
    "no-mempattern": {"options": {"enableMemPattern": False}},
    "parallel": {"options": {"executionMode": "parallel"}},
    "ort-format": {"model": "ort"},
    "int8": {"model": "int8"},
    "webgpu-build": {"build": "webgpu"},
    "webgpu": {"ep": "webgpu"},
}
SLOW = {"webgpu"}  # a software adapter: one timed run per round


@dataclass
class Row:
    model: str
    input: str
    runtime: str
    threads: int
    timed: Callable[[int], list[float]]
    first: Callable[[], np.ndarray] | None = None  # the first output, for max |dp|
    baseline: str = "native"  # the native row this one is divided by
    slow: bool = False
    dp: float | None = None
    times: list[float] = field(default_factory=list)


def _export(folder: Path, name: str) -> dict[str, Path]:
    import keras
    import onnx

    from cnnport.apps.cli import main as cnnport
    from cnnport.export.ortformat import to_ort
    from cnnport.export.variants import to_int8
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
    ort_path, _ = to_ort(onnx_path).write(onnx_path)
    calibration = np.random.default_rng(1).integers(0, 256, (32, size, size, channels), dtype=np.uint8)
    int8_path = folder / f"{name}.int8.onnx"
    onnx.save(to_int8(onnx.load(str(onnx_path)), calibration), str(int8_path))
    return {
        "onnx": onnx_path,
        "ort": ort_path,
        "int8": int8_path,
        "frame": folder / f"{name}.frame-rgba.onnx",
    }


def _batch_axes(path: Path) -> dict[str, int]:
    import onnx

    graph_input = onnx.load(str(path), load_external_data=False).graph.input[0]
    return {d.dim_param: 1 for d in graph_input.type.tensor_type.shape.dim if d.dim_param}


def _native(path: Path, feed: np.ndarray, threads: int, spinning: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name

    def first() -> np.ndarray:
        return session.run([output], {name: feed})[0]

    return _timer(first), first, session


def _timer(call: Callable[[], object]) -> Callable[[int], list[float]]:
    """ms of each of ``runs`` calls."""

    def timed(runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return times

    return timed


def _engine_frame(path: Path, feed: np.ndarray, threads: int):
    """The Engine on the frame model: after two frames of one size it runs them on a
    session with that size fixed, as the page's module does."""
    from cnnport.runtime import Engine

    engine = Engine(path, providers="cpu", threads=threads)

    def first() -> np.ndarray:
        return engine.run(feed)

    return _timer(first), first, engine


def _ort_web(path: Path, feed: np.ndarray, threads: int, variant: dict):
    from cnnport.export.webbackend import WebSession

    options = variant.get("options") or {}
    if options == "static":
        options = {"freeDimensionOverrides": _batch_axes(path)}
    kwargs = {k: v for k, v in variant.items() if k not in ("options", "model")}
    session = WebSession(path, threads=threads, options=options, **kwargs)

    def timed(runs: int) -> list[float]:
        return session.time(feed, session.outputs[0], warmup=0, repeats=runs)

    return timed, lambda: session.run(feed, [session.outputs[0]])[session.outputs[0]], session


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


def _open_rows(name: str, files: dict[str, Path], threads: list[int], variants: list[str], page: bool):
    from cnnport.apps.web import SiteConfig, write_site

    size, channels = SIZES[name]
    rng = np.random.default_rng(0)
    feed = rng.integers(0, 256, (1, size, size, channels), dtype=np.uint8)
    frame_feed = rng.integers(0, 256, (1, *FRAME, 4), dtype=np.uint8)
    frame_feed[..., 3] = 255  # opaque, as a camera frame drawn on a canvas is
    site = (
        write_site(files["onnx"], files["onnx"].parent / f"{name}-site", SiteConfig(webgpu=False))
        if page
        else None
    )
    shape = f"{size}x{size}x{channels}"
    rows, keep = [], []

    def add(row: Row, made) -> None:
        rows.append(row)
        keep.append(made)

    for n in threads:
        timed, first, session = _native(files["onnx"], feed, n)
        add(Row(name, shape, "native", n, timed, first), session)
        timed, first, session = _native(files["onnx"], feed, n, spinning=False)
        add(Row(name, shape, "native no-spin", n, timed, first), session)
        if "int8" in variants:
            timed, first, session = _native(files["int8"], feed, n)
            add(Row(name, shape, "native int8", n, timed, first), session)
        for variant in variants:
            spec = VARIANTS[variant]
            timed, first, session = _ort_web(files[spec.get("model", "onnx")], feed, n, spec)
            baseline = "native int8" if variant == "int8" else "native"
            add(Row(name, shape, f"ort-web {variant}", n, timed, first, baseline, variant in SLOW), session)
        if page:
            timed, first, engine = _engine_frame(files["frame"], frame_feed, n)
            add(Row(name, "640x480 RGBA", "native frame", n, timed, first, "native frame"), engine)
            made = _Page(site.root, n)
            add(Row(name, "640x480 RGBA", "page (cnnport JS)", n, made, None, "native frame"), made)
    return rows, keep


def _measure(name: str, folder: Path, args: argparse.Namespace) -> tuple[list[Row], str, tuple[str, str]]:
    files = _export(folder, name)
    threads = sorted({1, args.threads})
    rows, keep = _open_rows(name, files, threads, args.variants, not args.no_page)
    version = next((k.browser_version for k in keep if hasattr(k, "browser_version")), "")
    reference = {(r.runtime, r.threads): r.first() for r in rows if r.runtime in ("native", "native int8")}
    for row in rows:
        if row.runtime.startswith("ort-web"):
            row.dp = float(np.abs(row.first() - reference[(row.baseline, row.threads)]).max())
        row.timed(2 if row.slow else 10)  # warm-up
    # Opening 20-odd browsers loads the machine for a while: let it settle first.
    time.sleep(args.settle)
    load_before = Path("/proc/loadavg").read_text().strip()
    per_round = max(1, args.repeats // args.rounds)
    for _ in range(args.rounds):
        for row in rows:
            row.times += row.timed(1 if row.slow else per_round)
    load_after = Path("/proc/loadavg").read_text().strip()
    for thing in keep:
        if hasattr(thing, "close"):
            thing.close()
    return rows, version, (load_before, load_after)


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| model | input | runtime | threads | median ms | p10-p90 ms | vs native, same threads | max dp vs native |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    medians = {(r.runtime, r.threads, r.model): float(np.median(r.times)) for r in rows}
    for r in rows:
        median = medians[(r.runtime, r.threads, r.model)]
        p10, p90 = np.percentile(r.times, [10, 90])
        ratio = median / medians[(r.baseline, r.threads, r.model)]
        against = "" if r.baseline in ("native", "native frame") else f" ({r.baseline})"
        dp = "" if r.dp is None else f"{r.dp:.1e}"
        lines.append(
            f"| {r.model} | {r.input} | {r.runtime} | {r.threads} | {median:.2f} | {p10:.2f}-{p90:.2f} "
            f"| {ratio:.2f}x{against} | {dp} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed runs per row, in all rounds")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds over all rows")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--models", default="lenet5,mobilenet_v2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="ort-web rows: " + ", ".join(VARIANTS))
    parser.add_argument("--settle", type=float, default=30, help="seconds to wait after opening every row")
    parser.add_argument("--no-page", action="store_true", help="leave out the frame model and page rows")
    args = parser.parse_args()
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="cnnport-web-latency-") as folder:
        for name in args.models.split(","):
            rows, version, (before, after) = _measure(name, Path(folder), args)
            print(
                f"\n{name}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {version}, "
                f"headless; batch 1, median of {args.repeats} runs in {args.rounds} interleaved rounds after "
                f"10 warm-up; /proc/loadavg {before} (start), {after} (end)"
            )
            print("\n".join(_table(rows)), flush=True)


if __name__ == "__main__":
    main()

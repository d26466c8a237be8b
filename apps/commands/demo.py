"""`cnnport demo`: the whole pipeline on the embedded digits, with progress all the way.

train LeNet-5 -> export to ONNX through the parity gate -> int8 variant -> a short
benchmark (Keras vs the engine) -> classify a clip of held-out digits with the webcam
app (headless, or in a window when a display is present) -> the same model as a web
page (`cnnport web`) -> a summary of what was made and where, with the command that
serves the page.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from cnnport.runtime import CnnportError

from ..command import Command, command

__all__ = ["Demo"]

CLIP_FRAMES = {"quick": 20, "full": 60}
CLIP_SIZE = 480  # square frames: the card's stretch resize keeps digits undistorted


class _Progress:
    """Prints numbered steps with the time each took."""

    def __init__(self, total: int) -> None:
        self.total, self.index, self.started = total, 0, time.perf_counter()
        self._step_started = self.started

    def step(self, text: str) -> None:
        self.index += 1
        self._step_started = time.perf_counter()
        print(f"\n[{self.index}/{self.total}] {text}", flush=True)

    def done(self, text: str) -> None:
        print(f"      {text}  ({time.perf_counter() - self._step_started:.1f} s)", flush=True)


def _train(out: Path, quick: bool):
    from cnnport.train import TrainConfig, fit

    config = TrainConfig(
        data="digits", model="lenet5", out=str(out / "run"), epochs=3 if quick else 40,
        verbose=0 if quick else 2, tensorboard=not quick,
    )  # fmt: skip
    return fit(config)


def _export(run_dir: Path, out: Path):
    from cnnport.export import ExportConfig, export_model, load_source

    return export_model(load_source(run_dir), out / "digits.onnx", ExportConfig(variants=("int8",)))


def _benchmark(
    model_path: Path, onnx_path: Path, shape: tuple[int, int, int], repeats: int
) -> dict[str, float]:
    """Median batch-1 latency in ms of Keras (tf.function) and the engine, measured by
    `cnnport bench`'s own runners (interleaved, after warm-up)."""
    from ..benchmark import BenchConfig, Target, bench_rows

    target = Target(onnx=onnx_path, provider="cpu", keras=model_path)
    rows = bench_rows(
        [("fp32", target, ("keras-function", "engine"))],
        shape,
        BenchConfig(batch_sizes=(1,), repeats=repeats),
    )
    failed = [f"{row.runner}: {row.status}" for row in rows if row.median_ms is None]
    if failed:
        raise CnnportError("the benchmark could not run: " + "; ".join(failed))
    median = {row.runner: row.median_ms for row in rows}
    return {"keras": median["keras-function"], "engine": median["engine"]}


def _clip(run_dir: Path, out: Path, frames: int) -> tuple[Path, np.ndarray]:
    """An MJPG video of held-out test digits, one per frame, and their labels."""
    import cv2

    test = np.load(run_dir / "data" / "test.npz")
    images, labels = test["x"][:frames], test["y"][:frames]
    path = out / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (CLIP_SIZE, CLIP_SIZE))
    for image in images:
        big = cv2.resize(image, (CLIP_SIZE, CLIP_SIZE), interpolation=cv2.INTER_NEAREST)
        writer.write(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path, labels


def _classify_clip(onnx_path: Path, clip: Path, out: Path, window: bool) -> int:
    from ..cli import main

    args = ["webcam", str(onnx_path), "--source", str(clip), "--jsonl", str(out / "predictions.jsonl"),
            "--save", str(out / "annotated.avi"), "--provider", "cpu"]  # fmt: skip
    return main([*args] if window else [*args, "--headless"])


def _clip_accuracy(predictions: Path, labels: np.ndarray) -> float:
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    scored = [r for r in records if "label" in r]
    return sum(r["label"] == str(y) for r, y in zip(scored, labels, strict=False)) / max(1, len(labels))


@command
class Demo(Command):
    name = "demo"
    help = "the whole pipeline on the embedded digits: train, export, int8, benchmark, live clip"
    description = (
        "Trains LeNet-5 on scikit-learn's digits, exports it to ONNX through the parity gate, makes "
        "the int8 variant, compares Keras and the engine, and classifies a clip of held-out digits "
        "with the webcam app. About a minute or two on a 2-core CPU; --quick for a shorter run."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--out", default=None, help="folder for everything made (default: runs/demo-<time>)"
        )
        parser.add_argument(
            "--quick", action="store_true", help="3 training epochs and a short clip (for tests)"
        )
        parser.add_argument(
            "--headless", action="store_true", help="never open a window, even with a display"
        )

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.runtime import require

        require("tensorflow", purpose="cnnport demo")
        out = Path(args.out or f"runs/demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        out.mkdir(parents=True, exist_ok=True)
        progress = _Progress(6)
        mode = "quick" if args.quick else "full"
        progress.step(f"training lenet5 on the embedded digits ({'3' if args.quick else 'up to 40'} epochs)")
        run = _train(out, args.quick)
        progress.done(
            f"test accuracy {run.metrics['test_accuracy']:.4f} after {run.metrics['epochs_run']} epochs"
        )
        progress.step("exporting to ONNX with the parity gate, and the int8 variant")
        result = _export(run.directory, out)
        fp32, int8 = result.reports["fp32"]["all"], result.reports["int8"]["all"]
        progress.done(
            f"fp32 max|dp| {fp32.max_abs_diff:.1e}, top-1 agreement {fp32.top1_agreement:.2%}; int8 accuracy "
            f"{int8.accuracy_candidate:.2%} vs fp32 {int8.accuracy_reference:.2%}"
        )
        progress.step("benchmark at batch 1 on the CPU: Keras (tf.function) vs the cnnport engine")
        latency = _benchmark(
            run.model_path, result.paths["fp32"], run.card.input.shape, 50 if args.quick else 300
        )
        progress.done(
            f"Keras {latency['keras']:.3f} ms, engine {latency['engine']:.3f} ms: "
            f"{latency['keras'] / latency['engine']:.1f}x faster (median)"
        )
        window = not args.headless and bool(os.environ.get("DISPLAY"))
        progress.step(
            f"classifying a clip of held-out digits with the webcam app ({'window' if window else 'headless'})"
        )
        clip, labels = _clip(run.directory, out, CLIP_FRAMES[mode])
        status = _classify_clip(result.paths["fp32"], clip, out, window)
        accuracy = _clip_accuracy(out / "predictions.jsonl", labels)
        progress.done(f"{accuracy:.0%} of {len(labels)} frames classified correctly")
        progress.step("writing the live classifier as a web page (cnnport web)")
        site = _site(result.paths["fp32"], out)
        progress.done(f"{site}/ ({_size_mb(site):.0f} MB)" if isinstance(site, Path) else f"skipped: {site}")
        progress.step("summary")
        _summary(out, run, result, time.perf_counter() - progress.started, site)
        return status


def _site(onnx_path: Path, out: Path) -> Path | str:
    """The web site of the demo model, or why it could not be written (onnxruntime-web's
    files are an npm install away, and the demo must not fail for want of them)."""
    from cnnport.export.webassets import WebAssetsError

    from ..web import SiteConfig, write_site

    try:
        return write_site(onnx_path, out / "site", SiteConfig(webgpu=False)).root
    except WebAssetsError as exc:
        return str(exc)


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _summary(out: Path, run, result, seconds: float, site: Path | str) -> None:
    from cnnport.export import report_path

    lines = [
        f"      everything is in {out}/ ({seconds:.0f} s in all)",
        f"      run directory   {run.directory}  (model.keras, card.json, curves.png, confusion.png, metrics.json)",
    ]
    for kind, path in result.paths.items():
        lines.append(f"      {kind:<15} {path}  (report: {report_path(path).name})")
    lines += [
        f"      clip            {out / 'clip.avi'} -> {out / 'annotated.avi'}, {out / 'predictions.jsonl'}",
        "      next: cnnport webcam " + str(result.paths["fp32"]) + "   (live, camera 0)",
    ]
    if isinstance(site, Path):
        lines.append(f"      web page: cnnport web {site} --serve   (then open http://127.0.0.1:8000/)")
    else:
        lines.append(f"      web page: not written ({site})")
    print("\n".join(lines))

"""Where the trained network looks, measured: the pointing game on cluttered digits.

Generates a training folder of digits pasted at random places on cluttered canvases
(``cnnport.train.synthetic.cluttered_digits``, each digit's box known), trains cnnport's
``convnet`` on it with `cnnport train`'s defaults, exports it with `cnnport export`
(class_maps output), then generates held-out images with another seed and counts how
often the heatmap's peak falls inside the digit's box, for the true class: with Grad-CAM
on the Keras model (as `cnnport explain` computes it) and with the class maps of the
.onnx through the Engine (as `predict --heatmap` and `webcam --heatmap` show them).

    .venv/bin/python benchmarks/pointing_game.py [--classes 10] [--per-class 150] [--size 96] [--held-out 300]

Target (issue 14): at least 85% for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--held-out", type=int, default=300, help="held-out images, spread over the classes")
    parser.add_argument(
        "--out", default=None, help="keep the data, run and model here (default: a temp folder)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from cnnport.apps.cli import main as cnnport
    from cnnport.explain.pointing import score_run
    from cnnport.train.synthetic import cluttered_digits

    with tempfile.TemporaryDirectory(prefix="cnnport-pointing-") as tmp:
        out = Path(args.out or tmp)
        cluttered_digits(
            out / "data", classes=args.classes, per_class=args.per_class, size=args.size, seed=args.seed
        )
        per_class = max(1, args.held_out // args.classes)
        boxes = cluttered_digits(
            out / "heldout", classes=args.classes, per_class=per_class, size=args.size, seed=args.seed + 1000
        )
        started = time.perf_counter()
        train = [
            "-q",
            "train",
            "--data",
            str(out / "data"),
            "--model",
            "convnet",
            "--img-size",
            str(args.size),
        ]
        if cnnport([*train, "--out", str(out / "run"), "--verbose", "0"]) != 0:
            raise SystemExit("training failed")
        seconds = time.perf_counter() - started
        if cnnport(["-q", "export", str(out / "run"), "-o", str(out / "model.onnx")]) != 0:
            raise SystemExit("export failed")
        result = score_run(out / "run", out / "model.onnx", out / "heldout", boxes)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    print(
        f"convnet on {args.classes} classes x {args.per_class} cluttered {args.size}x{args.size} images, "
        f"trained with the defaults in {seconds:.0f} s"
    )
    print(f"{'held-out images':<34} {result.grad_cam.images}")
    print(f"{'accuracy':<34} {result.accuracy:.1%}")
    print(f"{'pointing game, Grad-CAM (Keras)':<34} {result.grad_cam.score:.1%}")
    print(f"{'pointing game, class maps (ONNX)':<34} {result.onnx_maps.score:.1%}")
    print(f"{'chance (mean box area)':<34} {result.grad_cam.chance:.1%}")


if __name__ == "__main__":
    main()

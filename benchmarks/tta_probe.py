"""Test-time augmentation, probed: a trained run's test accuracy with averaged views.

Reads the test split `cnnport train` saved (RUN/data/test.npz, the model-sized images)
and RUN/model.keras, and prints the test accuracy of the model alone and of the mean
probabilities over a few views of each image: shifts by a sixteenth of the side, zooms
in and out by 15%, rotations by 10 degrees (reflected borders), and all of them. No
horizontal flips: they swap classes such as left and right arrows.

    cnnport train --data FOLDER --model convnet --img-size 64 --out RUN
    .venv/bin/python benchmarks/tta_probe.py RUN [RUN ...]

A probe for docs/small-data.md, not a cnnport feature: the Engine and the exported
models classify one view.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def _warp(images: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    h, w = images.shape[1:3]
    out = [cv2.warpAffine(im, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
           for im in images]  # fmt: skip
    return np.stack(out).reshape(images.shape)


def views(images: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The augmented copies of ``images`` (N, H, W[, C]), by family; each list holds the
    original first where the family includes it."""
    import cv2

    h, w = images.shape[1:3]
    d = max(2, h // 16)
    center = (w / 2 - 0.5, h / 2 - 0.5)
    shift = [
        _warp(images, np.float32([[1, 0, dx], [0, 1, dy]])) for dy, dx in ((d, 0), (-d, 0), (0, d), (0, -d))
    ]
    zoom = [_warp(images, cv2.getRotationMatrix2D(center, 0, f)) for f in (1.15, 0.87)]
    rotate = [_warp(images, cv2.getRotationMatrix2D(center, a, 1.0)) for a in (10, -10)]
    return {
        "shift": [images, *shift],
        "zoom": [images, *zoom],
        "rotate": [images, *rotate],
        "all": [images, *shift, *zoom, *rotate],
    }


def _accuracy(model, batches: list[np.ndarray], labels: np.ndarray) -> float:
    """Top-1 accuracy of the mean probabilities over ``batches`` (views of the same images)."""
    mean = np.mean([model.predict(b, verbose=0, batch_size=64) for b in batches], axis=0)
    return float((mean.argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories written by cnnport train")
    args = parser.parse_args()
    import keras

    names = ["one view", "shift", "zoom", "rotate", "all"]
    print(f"{'run':<28} {'test':>5} " + " ".join(f"{n:>8}" for n in names))
    for run in args.runs:
        data = np.load(run / "data" / "test.npz")
        x, y = data["x"], data["y"]
        model = keras.models.load_model(run / "model.keras", compile=False)

        figures = [_accuracy(model, [x], y)] + [_accuracy(model, v, y) for v in views(x).values()]
        print(f"{run.name:<28} {len(y):>5} " + " ".join(f"{f:>8.3f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()

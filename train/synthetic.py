"""Generated folder data sets: the embedded digits pasted on cluttered canvases.

A stand-in for the small folders users bring (a few hundred photos of objects in a
room): the class is a small object anywhere in the frame, and most pixels are
clutter. Used by the training benchmark and the tests; each digit's bounding box is
written to ``boxes.json`` beside the class folders, so localization (Grad-CAM) can be
scored on the same images.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ["Box", "cluttered_digits", "digit_folder"]


@dataclass(frozen=True)
class Box:
    """Where the digit of one generated image lies, in pixels (x, y: top-left corner)."""

    path: str  # relative to the data set folder: "<class>/<file>.png"
    label: str
    x: int
    y: int
    width: int
    height: int


def cluttered_digits(
    root: str | Path,
    *,
    classes: int = 10,
    per_class: int = 150,
    size: int = 96,
    digit_size: tuple[float, float] = (0.35, 0.55),
    clutter: tuple[int, int] = (2, 5),
    seed: int = 0,
) -> list[Box]:
    """Writes ``root/<digit>/<n>.png`` color images of scikit-learn digits on clutter.

    Each canvas has a random two-color gradient background (dark to mid levels), random
    lines, rectangles and circles in any color, and pixel noise; one digit (of the 1,797 embedded ones, scaled to
    ``digit_size`` of the canvas side, in a random color) is pasted at a random place.

    Args:
        root: folder to create (must not hold class folders already).
        classes: how many digit classes, 2..10 (digits 0..classes-1).
        per_class: images per class.
        size: canvas height and width in pixels.
        digit_size: smallest and largest digit side, as fractions of ``size`` (larger is easier).
        clutter: fewest and most shapes drawn on each canvas ((0, 0): none).
        seed: the same seed writes the same images.

    Returns:
        One Box per image; also written to ``root/boxes.json``.

    Raises:
        DatasetError: a bad argument, or ``root`` already holds images.

    Example:
        >>> boxes = cluttered_digits("data/clutter10", classes=10, per_class=150)  # doctest: +SKIP
    """
    low, high = digit_size
    if not 2 <= classes <= 10 or per_class < 1 or size < 32 or not 0.1 <= low <= high <= 1:
        raise DatasetError(
            "cluttered_digits needs classes in 2..10, per_class >= 1, size >= 32 and 0.1 <= digit_size[0] <= "
            f"digit_size[1] <= 1; received classes={classes}, per_class={per_class}, size={size}, "
            f"digit_size={digit_size}"
        )
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        raise DatasetError(f"{str(root)!r} is not empty; choose a new folder for the generated data set")
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    boxes = []
    for label in range(classes):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pool = np.flatnonzero(digits.target == label)
        for n in range(per_class):
            glyph = digits.images[rng.choice(pool)] / 16.0
            canvas, (x, y, w, h) = _compose(glyph, size, digit_size, clutter, rng)
            name = f"{label}/{n:04d}.png"
            _write_png(root / name, canvas)
            boxes.append(Box(name, str(label), x, y, w, h))
    text = json.dumps([asdict(b) for b in boxes], indent=1)
    (root / "boxes.json").write_text(text + "\n")
    return boxes


def digit_folder(root: str | Path, *, classes: int = 3, per_class: int = 100, size: int = 32) -> None:
    """Writes the first ``per_class`` embedded digits of each class 0..classes-1 as
    ``root/<digit>/<n>.png``, gray, light on black, scaled to ``size`` pixels: the
    easy end of small folders (a convnet is above chance within two or three epochs).

    Raises:
        DatasetError: a bad argument, too few digits of a class, or ``root`` not empty.
    """
    import cv2
    from sklearn.datasets import load_digits

    root = Path(root)
    if not 2 <= classes <= 10 or not 1 <= per_class <= 170 or size < 8:
        raise DatasetError(
            "digit_folder needs classes in 2..10, per_class in 1..170 (the embedded set's smallest class "
            f"has 174) and size >= 8; received classes={classes}, per_class={per_class}, size={size}"
        )
    if root.is_dir() and any(root.iterdir()):
        raise DatasetError(f"{str(root)!r} is not empty; choose a new folder for the generated data set")
    digits = load_digits()
    for label in range(classes):
        (root / str(label)).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(digits.target == label)[:per_class]):
            pixels = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)
            cv2.imwrite(str(root / str(label) / f"{n:04d}.png"), cv2.resize(pixels, (size, size)))


def _compose(
    glyph: np.ndarray,
    size: int,
    digit_size: tuple[float, float],
    clutter: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple]:
    import cv2

    canvas = _background(size, rng)
    _clutter(canvas, int(rng.integers(clutter[0], clutter[1] + 1)), rng)
    side = int(rng.integers(int(size * digit_size[0]), int(size * digit_size[1]) + 1))
    mask = cv2.resize(glyph.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    region = canvas[y : y + side, x : x + side]
    color = _contrasting(rng.uniform(0, 255, 3), region.mean(), rng)
    canvas[y : y + side, x : x + side] = region * (1 - mask[..., None]) + color * mask[..., None]
    canvas += rng.normal(0, 8, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8), (x, y, side, side)


def _contrasting(color: np.ndarray, background: float, rng: np.random.Generator) -> np.ndarray:
    """``color`` shifted so its mean level is 80-140 above the background's: a random
    hue, lighter than its surroundings, as the embedded digits are (light strokes on dark).
    With the polarity random too, a convnet from scratch stayed at chance for 16 epochs."""
    gap = rng.uniform(80, 140)
    target = min(255.0, background + gap)
    return np.clip(color + (target - color.mean()), 0, 255)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.uniform(0, 150, 3), rng.uniform(0, 150, 3)  # darker than most digits
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = (np.cos(angle) * xx + np.sin(angle) * yy - min(0, np.cos(angle)) - min(0, np.sin(angle))) / 2
    return (a * (1 - t[..., None]) + b * t[..., None]).astype(np.float64)


def _clutter(canvas: np.ndarray, shapes: int, rng: np.random.Generator) -> None:
    import cv2

    size = canvas.shape[0]
    for _ in range(shapes):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p, q = (tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2))
        kind = rng.integers(3)
        thickness = int(rng.integers(1, 3))
        if kind == 0:
            cv2.line(canvas, p, q, color, thickness)
        elif kind == 1:
            cv2.rectangle(canvas, p, q, color, thickness)
        else:
            cv2.circle(canvas, p, int(rng.integers(3, size // 4)), color, thickness)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise DatasetError(f"could not write {str(path)!r}")

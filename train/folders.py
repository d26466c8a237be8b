"""A family of small generated folders that look like a user's photos, not like our digits.

Each kind is 3 classes x 100 JPEG photos at 160x120 (4:3), the size of a folder that
`cnnport collect` gives, and differs in what the network must learn:

- ``shapes``: a filled circle, square or triangle of a random color (color must be ignored);
- ``outlines``: the same shapes drawn as outlines of random thickness;
- ``textures``: a patch of stripes, dots or checks at a random scale, angle and colors;
- ``letters``: A, B or C in one of OpenCV's Hershey fonts at a random size, angle and place;
- ``digits``: the embedded scikit-learn digits 0, 1, 2, scaled and pasted on the clutter;
- ``colors``: a filled shape of any of the three kinds whose color is the class (red, green,
  blue at any saturation and brightness): the one kind where color must *not* be ignored.

Every photo has the same clutter: a two-color gradient in any colors, soft out-of-focus
blobs, thin lines and arcs, an uneven illumination, a slight blur, sensor noise and JPEG
compression at a random quality. The object has a random color that differs from what is
under it by a random amount in either direction (darker or lighter). Seeded: the same
kind and seed write the same files; ``HELD_OUT_SEED`` is the seed that defaults are
never tuned on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnport.runtime import Registry

from .errors import DatasetError

__all__ = ["FOLDER_KINDS", "HELD_OUT_SEED", "TUNED_SEED", "FolderKind", "small_folder"]

TUNED_SEED = 0  # the seed the defaults were chosen on
HELD_OUT_SEED = 1  # the seed they are judged on, never tuned on

Draw = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]  # (canvas, class, rng) -> mask 0..1
Color = Callable[[int, np.random.Generator], np.ndarray]  # (class, rng) -> RGB 0..255


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder: its class names and how one object is drawn as a mask."""

    classes: tuple[str, ...]
    draw: Draw
    index: int  # mixed into the seed, so kinds drawn with one seed differ
    color: Color | None = None  # the object's color from its class; None: random, whatever the class


FOLDER_KINDS: Registry[FolderKind] = Registry("folder kind")


def _kind(name: str, classes: tuple[str, ...], color: Color | None = None) -> Callable[[Draw], Draw]:
    def add(draw: Draw) -> Draw:
        FOLDER_KINDS.add(name, FolderKind(classes, draw, len(FOLDER_KINDS), color))
        return draw

    return add


def small_folder(
    root: str | Path,
    kind: str,
    *,
    per_class: int = 100,
    size: tuple[int, int] = (160, 120),
    seed: int = TUNED_SEED,
) -> None:
    """Writes ``root/<class>/<n>.jpg``: ``per_class`` photo-like images of each class of ``kind``.

    Args:
        root: folder to create (must be empty or absent).
        kind: a name of :data:`FOLDER_KINDS` (shapes, outlines, textures, letters, digits).
        per_class: images per class.
        size: width and height of each photo in pixels.
        seed: the same seed writes the same files.

    Raises:
        DatasetError: a bad argument, or ``root`` already holds files.

    Example:
        >>> small_folder("data/shapes", "shapes", seed=HELD_OUT_SEED)  # doctest: +SKIP
    """
    import cv2

    spec = FOLDER_KINDS.get(kind)
    width, height = size
    if per_class < 1 or min(width, height) < 48:
        raise DatasetError(
            f"small_folder needs per_class >= 1 and both sides >= 48 px; received per_class={per_class}, "
            f"size={size}"
        )
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        raise DatasetError(f"{str(root)!r} is not empty; choose a new folder for the generated data set")
    rng = np.random.default_rng([seed, spec.index])
    for label, name in enumerate(spec.classes):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            photo = _photo(spec, label, width, height, rng)
            quality = int(rng.integers(60, 96))
            path = root / name / f"{n:04d}.jpg"
            bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise DatasetError(f"could not write {str(path)!r}")


def _photo(spec: FolderKind, label: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    canvas = _scene(width, height, rng)
    mask = np.clip(spec.draw(canvas, label, rng), 0.0, 1.0)
    covered = mask > 0.5
    under = canvas[covered].mean(axis=0) if covered.any() else canvas.mean(axis=(0, 1))
    color = _object_color(under, rng) if spec.color is None else spec.color(label, rng)
    canvas = canvas * (1 - mask[..., None]) + color * mask[..., None]
    # The camera: uneven light, a little defocus, sensor noise (JPEG comes at write time).
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) - 0.5
    canvas = canvas * (1 + rng.uniform(0.0, 0.5) * ramp)[..., None] * rng.uniform(0.8, 1.15)
    sigma = rng.uniform(0.3, 1.0)
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    canvas = canvas + rng.normal(0, rng.uniform(2, 8), canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _object_color(under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random color whose mean level is 60-130 away from what it covers, darker or lighter."""
    color = rng.uniform(0, 255, 3)
    level = under.mean()
    gap = rng.uniform(60, 130)
    darker, lighter = level - gap, level + gap
    go_lighter = darker < 0 or (lighter <= 255 and rng.random() < 0.5)
    target = min(255.0, lighter) if go_lighter else max(0.0, darker)
    return np.clip(color + (target - color.mean()), 0, 255)


def _scene(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered room, out of focus: gradient, soft blobs, thin lines and arcs; no crisp shapes
    that a class could be mistaken for."""
    import cv2

    a, b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1.5) / 3
    canvas = a * (1 - t[..., None]) + b * t[..., None]
    blobs = np.zeros_like(canvas)
    weight = np.zeros((height, width), np.float64)
    for _ in range(int(rng.integers(2, 6))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, width // 3)), int(rng.integers(8, height // 3)))
        one = np.zeros((height, width), np.float64)
        cv2.ellipse(one, center, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        blobs += one[..., None] * rng.uniform(0, 255, 3)
        weight += one
    soft = cv2.GaussianBlur(np.dstack([blobs, weight]), (0, 0), rng.uniform(4, 9))
    alpha = np.clip(soft[..., 3], 0, 1)[..., None]
    canvas = canvas * (1 - alpha) + soft[..., :3] / np.maximum(soft[..., 3:], 1e-6) * alpha
    for _ in range(int(rng.integers(2, 7))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        thickness = int(rng.integers(1, 3))
        p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.6:
            q = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, p, q, color, thickness, cv2.LINE_AA)
        else:  # a short arc: less than a third of a turn, never a closed outline
            axes = (int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2)))
            start = rng.uniform(0, 360)
            cv2.ellipse(canvas, p, axes, rng.uniform(0, 180), start, start + rng.uniform(30, 110), color,
                        thickness, cv2.LINE_AA)  # fmt: skip
    return canvas


def _place(canvas: np.ndarray, rng: np.random.Generator, low: float = 0.3, high: float = 0.6):
    """A random object size (a fraction of the shorter side) and a center keeping it inside."""
    height, width = canvas.shape[:2]
    side = rng.uniform(low, high) * min(height, width)
    half = side / 2
    center = (rng.uniform(half, width - half), rng.uniform(half, height - half))
    return side, center


def _polygon(label: int, side: float, center, rng: np.random.Generator) -> np.ndarray:
    """Circle (0), square (1) or equilateral triangle (2) of about ``side`` pixels, any rotation."""
    turn = rng.uniform(0, 2 * np.pi)
    corners = {0: 48, 1: 4, 2: 3}[label]
    radius = side / 2 * {0: 1.0, 1: 1.0, 2: 1.1}[label]
    angles = turn + np.arange(corners) * 2 * np.pi / corners
    points = np.stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)], 1)
    return np.rint(points * 16).astype(np.int32)  # 4 fractional bits for cv2's shift


def _mask(canvas: np.ndarray) -> np.ndarray:
    return np.zeros(canvas.shape[:2], np.float64)


@_kind("shapes", ("circle", "square", "triangle"))
def _filled_shape(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    side, center = _place(canvas, rng)
    mask = _mask(canvas)
    cv2.fillPoly(mask, [_polygon(label, side, center, rng)], 1.0, cv2.LINE_AA, shift=4)
    return mask


@_kind("outlines", ("circle", "square", "triangle"))
def _outlined_shape(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    side, center = _place(canvas, rng)
    mask = _mask(canvas)
    thickness = int(rng.integers(2, 5))
    cv2.polylines(mask, [_polygon(label, side, center, rng)], True, 1.0, thickness, cv2.LINE_AA, shift=4)
    return mask


@_kind("textures", ("stripes", "dots", "checks"))
def _texture_patch(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    height, width = canvas.shape[:2]
    period = rng.uniform(9, 16)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u = (np.cos(angle) * xx + np.sin(angle) * yy) / period
    v = (-np.sin(angle) * xx + np.cos(angle) * yy) / period
    if label == 0:
        pattern = (np.abs(u - np.round(u)) < rng.uniform(0.18, 0.3)).astype(np.float64)
    elif label == 1:
        distance = np.hypot(u - np.round(u), v - np.round(v))
        pattern = (distance < rng.uniform(0.2, 0.32)).astype(np.float64)
    else:
        pattern = ((np.floor(u * 2) + np.floor(v * 2)) % 2).astype(np.float64)
    # The patch: an ellipse or a rotated rectangle covering a good part of the frame.
    region = _mask(canvas)
    side, center = _place(canvas, rng, 0.55, 0.9)
    axes = (int(side / 2 * rng.uniform(1.0, 1.4)), int(side / 2))
    if rng.random() < 0.5:
        cv2.ellipse(region, (int(center[0]), int(center[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    else:
        box = cv2.boxPoints(((center[0], center[1]), (2 * axes[0], 2 * axes[1]), rng.uniform(0, 180)))
        cv2.fillPoly(region, [np.rint(box).astype(np.int32)], 1.0)
    return cv2.GaussianBlur(pattern, (0, 0), 0.6) * region


LETTER_FONTS = ("FONT_HERSHEY_SIMPLEX", "FONT_HERSHEY_DUPLEX", "FONT_HERSHEY_COMPLEX", "FONT_HERSHEY_TRIPLEX")


@_kind("letters", ("A", "B", "C"))
def _letter(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    height, width = canvas.shape[:2]
    font = getattr(cv2, LETTER_FONTS[int(rng.integers(len(LETTER_FONTS)))])
    if rng.random() < 0.3:
        font |= cv2.FONT_ITALIC
    text = "ABC"[label]
    target = rng.uniform(0.3, 0.6) * height
    (w, h), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = target / h
    thickness = max(1, round(scale * rng.uniform(1.2, 2.5)))
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    mask = np.zeros((height, width), np.uint8)  # putText draws on 8-bit images only
    cv2.putText(mask, text, ((width - w) // 2, (height + h) // 2), font, scale, 255, thickness, cv2.LINE_AA)
    # Rotate about the frame center, then move: the glyph stays whole inside the frame.
    reach = np.hypot(w, h + base) / 2 + thickness
    dx = rng.uniform(-1, 1) * max(0.0, width / 2 - reach)
    dy = rng.uniform(-1, 1) * max(0.0, height / 2 - reach)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-30, 30), 1.0)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(mask.astype(np.float64) / 255, matrix, (width, height), flags=cv2.INTER_LINEAR)


@_kind("digits", ("0", "1", "2"))
def _digit(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    glyphs = digit_glyphs()
    pool = glyphs[label]
    glyph = pool[int(rng.integers(len(pool)))]
    side, center = _place(canvas, rng, 0.35, 0.65)
    s = max(8, int(side))
    x, y = int(center[0] - s / 2), int(center[1] - s / 2)
    mask = _mask(canvas)
    mask[y : y + s, x : x + s] = cv2.resize(glyph, (s, s), interpolation=cv2.INTER_LINEAR)
    return mask


_GLYPHS: dict[int, np.ndarray] = {}


def digit_glyphs() -> dict[int, np.ndarray]:
    """The embedded scikit-learn digits as 8x8 masks 0..1, by digit (loaded once)."""
    if not _GLYPHS:
        from sklearn.datasets import load_digits

        digits = load_digits()
        for label in range(10):
            _GLYPHS[label] = (digits.images[digits.target == label] / 16.0).astype(np.float32)
    return _GLYPHS


def _hue_color(label: int, rng: np.random.Generator) -> np.ndarray:
    """Red, green or blue (hue 0, 120 or 240 degrees, +-15), of any saturation from 0.6 and value from 0.45."""
    import cv2

    hue = (label * 120 + rng.uniform(-15, 15)) % 360
    hsv = np.array([[[hue / 2, rng.uniform(0.6, 1.0) * 255, rng.uniform(0.45, 1.0) * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


@_kind("colors", ("red", "green", "blue"), color=_hue_color)
def _colored_shape(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """A filled circle, square or triangle (at random, whatever the class) whose color is the class:
    the kind that checks that features which ignore color for shapes can still learn it."""
    import cv2

    side, center = _place(canvas, rng)
    mask = _mask(canvas)
    cv2.fillPoly(mask, [_polygon(int(rng.integers(3)), side, center, rng)], 1.0, cv2.LINE_AA, shift=4)
    return mask

"""cnnport's own pretraining set: procedural pictures of many shape, stroke, glyph and texture classes.

Offline users cannot download ImageNet weights, and a network trained from scratch on a
folder of a few hundred photos memorizes their colors instead of finding the object
(docs/small-data.md). convnet's embedded weights (``--weights synthetic``,
train/pretrained.py) are learnt on this set instead: tens of thousands of generated
pictures in which only the geometry tells the classes apart, so the features that
transfer are edges, corners, strokes and periodic patterns of any color and either
polarity.

What it contains, and what it leaves out on purpose:

- filled and outlined geometric primitives (regular polygons from 3 to 8 corners, a
  circle, ellipses, stars, crosses, rings, crescents, arrows, L and T shapes, half
  disks), each its own class;
- periodic textures (stripes, dots, checks, a grid, zigzags, concentric rings) and
  random strokes;
- glyphs: Hershey-font letters D-Z and the embedded digits 3-9. The letters A-C and the
  digits 0-2 of the small-folder family (train/folders.py) are never drawn, so the
  family's letters and digits kinds measure transfer to unseen symbols.

The pictures are made differently from the family's photos: "dead leaves" backgrounds
(overlapping disks and boxes of random colors and sizes), low-frequency color noise or
flat colors, then one object whose color differs from what it covers by a random
contrast, either way, at a random aspect ratio stretched to the square (as a 4:3 photo
is stretched at training time), blur, noise and JPEG at random.

``scenes="busy"`` (session 11) makes the scenes harder in the ways a user's photo is: the
object 20-75% of the side instead of 30-75%; crisp dead leaves and multi-octave noise
(detail at every scale, like a photograph's texture) as well as the soft backgrounds;
1-4 distractors that are no class (irregular blobs and straight lines) behind the object;
and now and then a blob over part of the object (occlusion). The default, ``plain``, is
what the shipped weights were learnt on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .folders import digit_glyphs

__all__ = ["PRETRAINING_CLASSES", "SCENES", "pretraining_images"]

SCENES = ("plain", "busy")

Shape = Callable[[np.ndarray, float, tuple[float, float], np.random.Generator], None]  # draws 1.0 in a mask


def _regular(corners: int, stretch: float = 1.0) -> Callable:
    def points(side: float, center, rng: np.random.Generator) -> np.ndarray:
        angles = rng.uniform(0, 2 * np.pi) + np.arange(corners) * 2 * np.pi / corners
        xy = np.stack([np.cos(angles) * stretch, np.sin(angles)], 1) * side / 2
        return _turned(xy, center, rng)

    return points


def _turned(xy: np.ndarray, center, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.rint((xy @ rotation.T + np.asarray(center)) * 16).astype(np.int32)


def _outline(name: str) -> Callable:
    xy = {
        "star5": [(np.cos(a) * r, np.sin(a) * r) for a, r in zip(np.arange(10) * np.pi / 5, [1, 0.42] * 5, strict=True)],
        "star6": [(np.cos(a) * r, np.sin(a) * r) for a, r in zip(np.arange(12) * np.pi / 6, [1, 0.55] * 6, strict=True)],
        "cross": [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1),
                  (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)],
        "arrow": [(-1, -0.25), (0.2, -0.25), (0.2, -0.7), (1, 0), (0.2, 0.7), (0.2, 0.25), (-1, 0.25)],
        "ell": [(-0.8, -1), (-0.2, -1), (-0.2, 0.4), (0.8, 0.4), (0.8, 1), (-0.8, 1)],
        "tee": [(-1, -1), (1, -1), (1, -0.45), (0.28, -0.45), (0.28, 1), (-0.28, 1), (-0.28, -0.45),
                (-1, -0.45)],
        "half": [(np.cos(a), np.sin(a) + 0.3) for a in np.linspace(np.pi, 2 * np.pi, 24)],
        "diamond": [(0, -1), (0.55, 0), (0, 1), (-0.55, 0)],
    }[name]  # fmt: skip
    outline = np.asarray(xy, np.float64)

    def points(side: float, center, rng: np.random.Generator) -> np.ndarray:
        return _turned(outline * side / 2, center, rng)

    return points


POLYGONS: dict[str, Callable] = {
    "triangle": _regular(3), "square": _regular(4), "pentagon": _regular(5), "hexagon": _regular(6),
    "octagon": _regular(8), "circle": _regular(48), "ellipse": _regular(48, 0.5),
    "rectangle": _regular(4, 0.45), **{n: _outline(n) for n in
    ("star5", "star6", "cross", "arrow", "ell", "tee", "half", "diamond")},
}  # fmt: skip


def _polygon_class(points: Callable, filled: bool) -> Shape:
    def draw(mask: np.ndarray, side: float, center, rng: np.random.Generator) -> None:
        import cv2

        if filled:
            cv2.fillPoly(mask, [points(side, center, rng)], 1.0, cv2.LINE_AA, shift=4)
        else:
            thickness = int(rng.integers(1, max(2, round(side / 12)) + 1))
            cv2.polylines(mask, [points(side, center, rng)], True, 1.0, thickness, cv2.LINE_AA, shift=4)

    return draw


def _ring(mask, side, center, rng) -> None:
    import cv2

    c = tuple(int(v) for v in center)
    cv2.circle(mask, c, int(side / 2), 1.0, -1, cv2.LINE_AA)
    cv2.circle(mask, c, int(side / 2 * rng.uniform(0.45, 0.7)), 0.0, -1, cv2.LINE_AA)


def _crescent(mask, side, center, rng) -> None:
    import cv2

    c = np.asarray(center)
    cv2.circle(mask, tuple(int(v) for v in c), int(side / 2), 1.0, -1, cv2.LINE_AA)
    angle = rng.uniform(0, 2 * np.pi)
    shift = c + side * 0.3 * np.array([np.cos(angle), np.sin(angle)])
    cv2.circle(mask, tuple(int(v) for v in shift), int(side / 2 * 0.85), 0.0, -1, cv2.LINE_AA)


def _texture(kind: str) -> Shape:
    def draw(mask, side, center, rng) -> None:
        import cv2

        height, width = mask.shape
        period = rng.uniform(0.1, 0.22) * min(height, width)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        u = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        v = (-np.sin(angle) * xx + np.cos(angle) * yy) / period
        if kind == "stripes":
            pattern = np.abs(u - np.round(u)) < rng.uniform(0.15, 0.3)
        elif kind == "dots":
            pattern = np.hypot(u - np.round(u), v - np.round(v)) < rng.uniform(0.18, 0.32)
        elif kind == "checks":
            pattern = (np.floor(u * 2) + np.floor(v * 2)) % 2 == 1
        elif kind == "grid":
            pattern = (np.abs(u - np.round(u)) < 0.12) | (np.abs(v - np.round(v)) < 0.12)
        elif kind == "zigzag":
            pattern = np.abs((u + np.abs((v % 1) - 0.5)) % 1 - 0.5) < 0.18
        else:  # concentric rings about the patch center
            r = np.hypot(xx - center[0], yy - center[1]) / period
            pattern = np.abs(r - np.round(r)) < 0.22
        region = np.zeros_like(mask)
        axes = (int(side / 2 * rng.uniform(0.9, 1.4)), int(side / 2))
        cv2.ellipse(region, (int(center[0]), int(center[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        mask[:] = np.maximum(mask, pattern.astype(np.float64) * region)

    return draw


def _strokes(mask, side, center, rng) -> None:
    """A scribble: three to five connected strokes (a class of its own: 'not a shape')."""
    import cv2

    points = np.asarray(center) + rng.uniform(-side / 2, side / 2, (int(rng.integers(4, 7)), 2))
    thickness = int(rng.integers(1, 4))
    cv2.polylines(mask, [np.rint(points * 16).astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA, shift=4)


GLYPH_LETTERS = "DEFGHJKLMNPQRSTUVWXYZ"  # not A, B, C (the family's letters kind); I and O look like 1 and 0
GLYPH_DIGITS = (3, 4, 5, 6, 7, 8, 9)  # not 0, 1, 2 (the family's digits kind)
FONTS = ("FONT_HERSHEY_SIMPLEX", "FONT_HERSHEY_DUPLEX", "FONT_HERSHEY_COMPLEX", "FONT_HERSHEY_TRIPLEX",
         "FONT_HERSHEY_PLAIN")  # fmt: skip


def _letter(text: str) -> Shape:
    def draw(mask, side, center, rng) -> None:
        import cv2

        font = getattr(cv2, FONTS[int(rng.integers(len(FONTS)))]) | (
            cv2.FONT_ITALIC if rng.random() < 0.3 else 0
        )
        (w, h), _ = cv2.getTextSize(text, font, 1.0, 1)
        scale = side / max(h, 1)
        thickness = max(1, round(scale * rng.uniform(1.0, 2.5)))
        (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
        glyph = np.zeros(mask.shape, np.uint8)
        origin = (int(center[0] - w / 2), int(center[1] + h / 2))
        cv2.putText(glyph, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
        turn = cv2.getRotationMatrix2D(tuple(float(v) for v in center), rng.uniform(-30, 30), 1.0)
        glyph = cv2.warpAffine(glyph, turn, mask.shape[::-1], flags=cv2.INTER_LINEAR)
        mask[:] = np.maximum(mask, glyph / 255.0)

    return draw


def _digit(digit: int) -> Shape:
    def draw(mask, side, center, rng) -> None:
        import cv2

        pool = digit_glyphs()[digit]
        s = max(8, int(side))
        x, y = int(center[0] - s / 2), int(center[1] - s / 2)
        glyph = cv2.resize(pool[int(rng.integers(len(pool)))], (s, s), interpolation=cv2.INTER_LINEAR)
        height, width = mask.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + s), min(height, y + s)
        mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], glyph[y0 - y : y1 - y, x0 - x : x1 - x])

    return draw


def _classes() -> dict[str, Shape]:
    classes: dict[str, Shape] = {}
    for name, points in POLYGONS.items():
        classes[f"filled_{name}"] = _polygon_class(points, True)
        classes[f"outlined_{name}"] = _polygon_class(points, False)
    classes["ring"], classes["crescent"], classes["strokes"] = _ring, _crescent, _strokes
    for kind in ("stripes", "dots", "checks", "grid", "zigzag", "rings"):
        classes[f"texture_{kind}"] = _texture(kind)
    classes.update({f"letter_{c}": _letter(c) for c in GLYPH_LETTERS})
    classes.update({f"digit_{d}": _digit(d) for d in GLYPH_DIGITS})
    return classes


PRETRAINING_CLASSES: dict[str, Shape] = _classes()


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    style = rng.random()
    if style < 0.45:  # dead leaves: overlapping disks and boxes, large to small
        canvas = np.empty((height, width, 3), np.float64)
        canvas[:] = rng.uniform(0, 255, 3)
        for _ in range(int(rng.integers(5, 40))):
            color = tuple(float(c) for c in rng.uniform(0, 255, 3))
            size = max(2, int(min(height, width) * rng.uniform(0.03, 0.4) ** 1.5 * 2))
            p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            if rng.random() < 0.5:
                cv2.circle(canvas, p, size, color, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(canvas, p, (p[0] + size, p[1] + int(size * rng.uniform(0.3, 2))), color, -1)
        return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 3.0))
    if style < 0.8:  # low-frequency color noise
        cells = int(rng.integers(2, 5))
        noise = rng.uniform(0, 255, (cells, cells, 3))
        return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255)
    canvas = np.empty((height, width, 3), np.float64)  # flat
    canvas[:] = rng.uniform(0, 255, 3)
    return canvas


def _octaves(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Color value noise summed over octaves (2 to 32 cells across), amplitude falling as 1/f."""
    import cv2

    canvas = np.zeros((height, width, 3), np.float64)
    for cells in (2, 4, 8, 16, 32):
        layer = rng.uniform(-1, 1, (cells, cells, 3))
        canvas += cv2.resize(layer, (width, height), interpolation=cv2.INTER_LINEAR) * (2 / cells) ** 0.7
    low, high = canvas.min(), canvas.max()
    span = rng.uniform(80, 255)
    base = rng.uniform(0, 255 - span)
    return base + (canvas - low) / max(high - low, 1e-9) * span


def _busy_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    style = rng.random()
    if style < 0.35:  # crisp dead leaves: many shapes, little blur
        canvas = np.empty((height, width, 3), np.float64)
        canvas[:] = rng.uniform(0, 255, 3)
        for _ in range(int(rng.integers(15, 60))):
            color = tuple(float(c) for c in rng.uniform(0, 255, 3))
            size = max(1, int(min(height, width) * rng.uniform(0.02, 0.35) ** 1.5 * 2))
            p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            if rng.random() < 0.5:
                cv2.circle(canvas, p, size, color, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(canvas, p, (p[0] + size, p[1] + int(size * rng.uniform(0.3, 2))), color, -1)
        sigma = rng.uniform(0, 1.0)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma) if sigma > 0.2 else canvas
    elif style < 0.65:
        canvas = _octaves(height, width, rng)
    elif style < 0.9:
        canvas = _background(height, width, rng)
    else:
        canvas = np.empty((height, width, 3), np.float64)
        canvas[:] = rng.uniform(0, 255, 3)
    side = min(height, width)
    for _ in range(int(rng.integers(1, 5)) if rng.random() < 0.7 else 0):  # distractors: no class
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.6:  # an irregular blob: no class is irregular
            corners = int(rng.integers(5, 10))
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
            radii = side * rng.uniform(0.03, 0.2) * rng.uniform(0.4, 1.0, corners)
            center = rng.uniform(0, (width, height))
            points = center + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], color, cv2.LINE_AA)
        else:
            ends = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
            cv2.line(canvas, ends[0], ends[1], color, int(rng.integers(1, 4)), cv2.LINE_AA)
    return canvas


def _picture(draw: Shape, side_px: int, rng: np.random.Generator, scenes: str = "plain") -> np.ndarray:
    import cv2

    busy = scenes == "busy"
    aspect = float(rng.choice([1.0, 4 / 3, 3 / 4]))
    height = side_px
    width = round(side_px * aspect)
    canvas = (_busy_background if busy else _background)(height, width, rng)
    mask = np.zeros((height, width), np.float64)
    side = rng.uniform(0.2 if busy else 0.3, 0.75) * min(height, width)
    half = side / 2
    center = (rng.uniform(half, max(half + 1, width - half)), rng.uniform(half, max(half + 1, height - half)))
    draw(mask, side, center, rng)
    mask = np.clip(mask, 0, 1)
    covered = mask > 0.5
    under = canvas[covered].mean(axis=0) if covered.any() else canvas.mean(axis=(0, 1))
    color = rng.uniform(0, 255, 3)
    gap = rng.uniform(35, 140) * (1 if rng.random() < 0.5 else -1)
    target = np.clip(under.mean() + gap, 0, 255)
    if abs(target - under.mean()) < 30:  # no room that way: go the other way
        target = np.clip(under.mean() - gap, 0, 255)
    color = np.clip(color + (target - color.mean()), 0, 255)
    canvas = canvas * (1 - mask[..., None]) + color * mask[..., None]
    if busy and covered.any() and rng.random() < 0.25:  # a blob over an edge of the object
        ys, xs = np.nonzero(covered)
        pick = int(rng.integers(0, len(xs)))
        radius = max(1, int(side * rng.uniform(0.08, 0.18)))
        blob = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.circle(canvas, (int(xs[pick]), int(ys[pick])), radius, blob, -1, cv2.LINE_AA)
    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 1.2))
    canvas = canvas + rng.normal(0, rng.uniform(0, 8), canvas.shape)
    picture = np.clip(canvas, 0, 255).astype(np.uint8)
    picture = cv2.resize(picture, (side_px, side_px), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        _, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 95))])
        picture = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return picture


def pretraining_images(
    count: int, size: int = 64, seed: int = 0, scenes: str = "plain"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``count`` pictures (uint8 RGB, ``size`` x ``size``), their class indices and the class names.

    Classes are drawn uniformly; the same count, size, seed and scenes (see the module doc)
    give the same pictures.

    Example:
        >>> images, labels, names = pretraining_images(8, size=32)
        >>> images.shape, labels.shape, len(names) > 40
        ((8, 32, 32, 3), (8,), True)
    """
    if scenes not in SCENES:
        raise ValueError(f"scenes must be one of {', '.join(SCENES)}; received {scenes!r}")
    names = list(PRETRAINING_CLASSES)
    draws = list(PRETRAINING_CLASSES.values())
    rng = np.random.default_rng([seed, 23])
    labels = rng.integers(0, len(names), count)
    images = np.empty((count, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        images[i] = _picture(draws[label], size, rng, scenes)
    return images, labels.astype(np.int32), names

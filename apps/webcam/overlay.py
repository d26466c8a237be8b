"""Drawing the live overlay; every size is relative to the frame, so it reads alike
on a 320x240 stream and a 4K camera."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from cnnport.runtime import Candidate
from cnnport.runtime.heatmap import blend_heatmap

from .smoothing import Decision

__all__ = ["OverlayState", "Scale", "draw_counts", "draw_overlay"]

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
GREEN, AMBER, RED, GRAY = (80, 200, 60), (0, 190, 255), (60, 60, 230), (150, 150, 150)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Scale:
    """Font and spacing for a frame, designed at 480 pixels of height."""

    factor: float

    @classmethod
    def of(cls, frame: np.ndarray) -> Scale:
        return cls(max(0.35, min(frame.shape[0], frame.shape[1] * 0.75) / 480.0))

    def px(self, value: float) -> int:
        return max(1, round(value * self.factor))

    @property
    def font(self) -> float:
        return 0.55 * self.factor


@dataclass
class OverlayState:
    """Everything the overlay shows for one frame."""

    top_k: Sequence[Candidate] = ()
    decision: Decision | None = None
    threshold: float = 0.5
    fps: float = 0.0
    latency_ms: float = 0.0
    provider: str = ""
    status: str = ""  # "reconnecting", "paused", or empty
    notes: list[str] = field(default_factory=list)
    heatmap: np.ndarray | None = None  # where the model looks, [0, 1] at the frame's size
    smoothing: float = 1.0  # weight of the newest frame in the smoothed headline (1: none)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: Scale, color=WHITE, size=1.0) -> None:
    # A dark outline keeps text legible on any background. It is the same glyphs drawn at
    # small offsets: a thicker stroke would also widen OpenCV's letter spacing, and the
    # outline would drift right of the text (it did: a ghost copy after every word).
    font, thick = scale.font * size, scale.px(1.2)
    step = max(1, scale.px(1.5))
    x, y = origin
    for dx, dy in (
        (-step, 0),
        (step, 0),
        (0, -step),
        (0, step),
        (-step, -step),
        (step, step),
        (-step, step),
        (step, -step),
    ):
        cv2.putText(image, text, (x + dx, y + dy), FONT, font, BLACK, thick, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, font, color, thick, cv2.LINE_AA)


def _panel(image: np.ndarray, top_left: tuple[int, int], bottom_right: tuple[int, int]) -> None:
    x0, y0 = max(0, top_left[0]), max(0, top_left[1])
    x1, y1 = min(image.shape[1], bottom_right[0]), min(image.shape[0], bottom_right[1])
    if x1 > x0 and y1 > y0:
        region = image[y0:y1, x0:x1]
        # convertScaleAbs darkens in place at a tenth of numpy's float round trip.
        region[:] = cv2.convertScaleAbs(region, alpha=0.35)


def _bars(image: np.ndarray, top_k: Sequence[Candidate], scale: Scale, top: int) -> None:
    row, width, pad = scale.px(26), scale.px(150), scale.px(10)
    caption = scale.px(20)
    _panel(image, (0, top - pad - caption), (pad * 2 + width + scale.px(150), top + row * len(top_k) + pad))
    # The bars are this frame's scores; the headline above is smoothed over frames.
    _text(image, "this frame", (pad, top - scale.px(6)), scale, GRAY, size=0.8)
    for i, candidate in enumerate(top_k):
        y = top + i * row
        filled = round(width * min(1.0, max(0.0, candidate.score)))
        cv2.rectangle(image, (pad, y + scale.px(4)), (pad + width, y + row - scale.px(4)), GRAY, 1)
        cv2.rectangle(image, (pad, y + scale.px(4)), (pad + filled, y + row - scale.px(4)), GREEN, -1)
        label = f"{candidate.label} {candidate.score:.2f}"
        _text(image, label, (pad * 2 + width, y + row - scale.px(8)), scale)


def draw_overlay(frame: np.ndarray, state: OverlayState) -> np.ndarray:
    """A copy of ``frame`` (BGR) with the prediction, bars and status drawn on it."""
    image = np.ascontiguousarray(frame).copy()
    if state.heatmap is not None and state.heatmap.shape == image.shape[:2]:
        image = blend_heatmap(image, state.heatmap)
    scale = Scale.of(image)
    height, width = image.shape[:2]
    header = scale.px(44)
    _panel(image, (0, 0), (width, header))
    if state.decision is not None:
        text, color = _headline(state.decision, state)
        _text(image, text, (scale.px(10), scale.px(32)), scale, color, size=1.4)
    if state.top_k:
        _bars(image, state.top_k, scale, header + scale.px(34))
    footer = f"{state.fps:5.1f} FPS  {state.latency_ms:5.1f} ms  {state.provider}  thr {state.threshold:.2f}"
    _panel(image, (0, height - scale.px(30)), (width, height))
    _text(image, footer, (scale.px(10), height - scale.px(9)), scale)
    notes = [*state.notes, *(["heatmap (h)"] if state.heatmap is not None else [])]
    for i, note in enumerate(notes):
        y = height - scale.px(40 + 24 * i)
        (text_w, _), _ = cv2.getTextSize(note, FONT, scale.font, scale.px(1.2))
        _panel(image, (0, y - scale.px(18)), (scale.px(20) + text_w, y + scale.px(6)))
        _text(image, note, (scale.px(10), y), scale, AMBER)
    if state.status:
        _status_banner(image, state.status.upper(), scale)
    return image


def _headline(decision: Decision, state: OverlayState) -> tuple[str, tuple[int, int, int]]:
    """The smoothed answer; the word "smoothed" says why it can differ from this frame's bars."""
    smoothed = "smoothed" if state.smoothing < 1.0 else "score"
    # A score under the threshold is cut, not rounded, to two places: 0.4996 read
    # "uncertain: smoothed 0.50 < 0.50".
    below = f"{math.floor(decision.score * 100 + 1e-9) / 100:.2f}"
    if decision.uncertain and decision.multilabel:
        return f"no class >= {state.threshold:.2f} ({smoothed} best {below})", AMBER
    if decision.uncertain:
        return f"uncertain: {smoothed} {below} < {state.threshold:.2f}", AMBER
    return f"{decision.label}  {decision.score:.2f} {smoothed}", GREEN


def _status_banner(image: np.ndarray, text: str, scale: Scale) -> None:
    height, width = image.shape[:2]
    (text_w, text_h), _ = cv2.getTextSize(text, FONT, scale.font * 2, scale.px(2))
    x, y = (width - text_w) // 2, (height + text_h) // 2
    _panel(
        image, (x - scale.px(12), y - text_h - scale.px(12)), (x + text_w + scale.px(12), y + scale.px(12))
    )
    _text(image, text, (x, y), scale, RED, size=2.0)


def draw_counts(
    frame: np.ndarray, classes: Sequence[str], counts: dict[str, int], flash: str = ""
) -> np.ndarray:
    """A copy of ``frame`` listing each class's key and saved-image count (for collect)."""
    image = np.ascontiguousarray(frame).copy()
    scale = Scale.of(image)
    row = scale.px(26)
    _panel(image, (0, 0), (scale.px(260), row * (len(classes) + 1) + scale.px(10)))
    for i, name in enumerate(classes):
        color = GREEN if name == flash else WHITE
        _text(image, f"[{i + 1}] {name}: {counts.get(name, 0)}", (scale.px(10), row * (i + 1)), scale, color)
    hint = "keys 1-9 save (hold for burst), m mirror, q quit"
    _text(image, hint, (scale.px(10), image.shape[0] - scale.px(10)), scale, GRAY)
    return image

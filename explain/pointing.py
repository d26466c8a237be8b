"""The pointing game (Zhang et al. 2016): does a heatmap's peak fall on the object?

A heatmap is a hit when its maximum lies inside the object's bounding box. The score is
the share of hits. On the generated cluttered-digit sets (``cnnport.train.synthetic``),
each image's digit box is known, so a classifier that looks at the digit and not at the
clutter scores high; random peaks score about the box's share of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PointingResult", "RunPointing", "peak", "pointing_game", "score_run"]


@dataclass(frozen=True)
class PointingResult:
    """Hits out of images, and the chance level (mean box area over image area)."""

    hits: int
    images: int
    chance: float

    @property
    def score(self) -> float:
        return self.hits / self.images if self.images else 0.0


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    """(x, y) of the heatmap's maximum (the first one, row by row, on ties)."""
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(x), int(y)


def pointing_game(heatmaps: Sequence[np.ndarray], boxes: Sequence[object]) -> PointingResult:
    """Scores heatmaps (each at its image's size) against boxes with x, y, width, height.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(heatmaps) != len(boxes):
        raise ValueError(f"{len(heatmaps)} heatmaps but {len(boxes)} boxes")
    hits, area = 0, 0.0
    for heat, box in zip(heatmaps, boxes, strict=True):
        x, y = peak(heat)
        hits += box.x <= x < box.x + box.width and box.y <= y < box.y + box.height
        area += box.width * box.height / heat.size
    return PointingResult(hits, len(boxes), area / len(boxes) if boxes else 0.0)


@dataclass(frozen=True)
class RunPointing:
    """The pointing game of one trained run on held-out images with known boxes."""

    accuracy: float
    grad_cam: PointingResult  # Grad-CAM on the Keras model (cnnport explain's)
    onnx_maps: PointingResult  # the exported graph's class_maps through the Engine


def score_run(run_dir, onnx_path, root, boxes: Sequence[object]) -> RunPointing:
    """Plays the pointing game for the true class of each boxed image under ``root``, with
    Grad-CAM on ``run_dir/model.keras`` and with the class maps of ``onnx_path``.

    Raises:
        InputError: the .onnx has no class_maps output.
    """
    from pathlib import Path

    import cv2

    from cnnport.export.source import load_keras
    from cnnport.runtime import Engine, decode_image
    from cnnport.runtime.heatmap import heatmap_for

    from .gradcam import grad_cam

    engine = Engine(onnx_path, providers="cpu")
    model = load_keras(Path(run_dir) / "model.keras")
    frames = [decode_image(Path(root) / box.path) for box in boxes]
    classes = [engine.labels.index(box.label) for box in boxes]
    tensor = engine.preprocess(frames)
    probabilities, maps = engine.run_with_maps(tensor)
    # One Grad-CAM pass over the whole batch, each image for its own true class.
    cams = grad_cam(model, tensor.astype(np.float32), classes).maps
    onnx_heat, gradcam_heat = [], []
    for index, (frame, class_index) in enumerate(zip(frames, classes, strict=True)):
        size = frame.shape[:2]
        onnx_heat.append(
            heatmap_for(maps[index][..., class_index], size, engine.card.input, engine.card.resize)
        )
        gradcam_heat.append(cv2.resize(cams[index], (size[1], size[0]), interpolation=cv2.INTER_LINEAR))
    accuracy = float((probabilities.argmax(axis=1) == np.array(classes)).mean())
    return RunPointing(accuracy, pointing_game(gradcam_heat, boxes), pointing_game(onnx_heat, boxes))

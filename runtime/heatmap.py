"""Where the model looks: a class activation map as a [0, 1] heatmap over the frame.

The exported graph's ``class_maps`` output (see the model card's ``output.class_maps``)
holds, per image, one (h, w) map per class. The heatmap of a class is its map with the
negative evidence cut off (ReLU, as in CAM and Grad-CAM), divided by its maximum, and
laid over the part of the frame the model saw (the whole frame when stretched, the
central window for ``center_crop``). numpy and OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

from .card import InputSpec, ResizeSpec
from .preprocess import _as_hwc, _to_uint8, crop_window, to_input_color

__all__ = ["CAM_HEADS", "blend_heatmap", "heatmap_for"]

# The classifiers `cnnport export` gives a class_maps output (see cnnport.export.cam).
CAM_HEADS = "global average pooling followed by a Dense layer"


def heatmap_for(
    class_map: np.ndarray, frame_size: tuple[int, int], spec: InputSpec, resize: ResizeSpec
) -> np.ndarray:
    """A float32 (height, width) heatmap in [0, 1] for one class map (h, w) of one image.

    Args:
        class_map: the map of the chosen class, from the ``class_maps`` output.
        frame_size: (height, width) of the frame the prediction was made on.
        spec: the card's input spec; resize: the card's resize rule (where the model looked).
    """
    height, width = frame_size
    positive = np.maximum(class_map.astype(np.float32), 0.0)
    peak = float(positive.max())
    normalized = positive / peak if peak > 0 else positive
    top, left, crop_h, crop_w = crop_window(height, width, spec, resize)
    heat = np.zeros((height, width), np.float32)
    # Bilinear, so a 7x7 map becomes a smooth field rather than blocks.
    heat[top : top + crop_h, left : left + crop_w] = cv2.resize(
        normalized, (crop_w, crop_h), interpolation=cv2.INTER_LINEAR
    )
    return np.clip(heat, 0.0, 1.0)


def blend_heatmap(frame_bgr: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``frame_bgr`` with the heatmap blended over it in the JET color map (red: strong).

    The frame is any image ``preprocess`` takes in BGR order: gray, BGRA (composited over
    white, as the model saw it) and 16-bit frames (scaled to 8 bits) are turned to 8-bit
    BGR first; a BGRA PNG failed to broadcast and a 16-bit one wrapped around."""
    colors = cv2.applyColorMap((heatmap * 255).astype(np.uint8), cv2.COLORMAP_JET)
    frame_bgr = _to_uint8(_as_hwc(np.asarray(frame_bgr), "the frame"), "the frame")
    if frame_bgr.shape[2] == 4:
        frame_bgr = cv2.cvtColor(to_input_color(frame_bgr, "RGB", "BGR"), cv2.COLOR_RGB2BGR)
    elif frame_bgr.shape[2] == 1:
        frame_bgr = cv2.cvtColor(frame_bgr[:, :, 0], cv2.COLOR_GRAY2BGR)
    weight = (alpha * heatmap)[..., None]
    blended = frame_bgr.astype(np.float32) * (1 - weight) + colors.astype(np.float32) * weight
    return blended.round().astype(np.uint8)

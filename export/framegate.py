"""The frame model's gate: the same frames through Python's preprocessing and through the graph.

Two checks, on frames made from the held-out images at the sizes cameras deliver
(640x480, 480x640 portrait, 320x240): the graph's preprocessing gives the tensor that
:func:`cnnport.runtime.preprocess` gives, at most one gray level apart (how many values
differ is reported); and the frame model's probabilities match the tensor model's on the
tensor Python made, top-1 identical. The first proves the skew rule holds outside Python;
the second that the frame model is the same classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnport.runtime import ModelCard, preprocess

from .frame import preprocessing_model
from .images import frames_from_images
from .parity import ParityReport, compare, merge, ort_runner

__all__ = ["FRAME_SIZES", "FrameGate", "gate_frame_model"]

# (height, width) of the gate's frames: landscape, portrait, small.
FRAME_SIZES = ((480, 640), (640, 480), (240, 320))
# Python's OpenCV resize works in fixed point, the graph in float: one level apart at most.
MAX_LEVELS = 1
# Rounding differences (OpenCV's fixed-point weights) touch up to about 13% of the values
# on the cards tried (tests/export/test_frame.py); a biased graph touches nearly all.
MAX_SHARE = 0.25
# A level's difference on a few percent of the pixels moves a probability by far less
# than this; a wrong crop, filter or channel order moves it by far more.
FRAME_TOLERANCE = 1e-2


@dataclass
class FrameGate:
    """What the frame gate measured: pixel agreement and the probability reports per size."""

    max_levels: int
    differing: int
    values: int
    reports: dict[str, ParityReport]

    @property
    def passed(self) -> bool:
        """Every check, pixels included, is a failure line of the merged report."""
        return self.reports["all"].passed

    def describe(self) -> str:
        share = self.differing / max(self.values, 1)
        return (
            f"input tensor: max {self.max_levels} gray level(s) from Python's preprocessing, "
            f"{self.differing:,} of {self.values:,} values differ ({share:.2%})"
        )


def gate_frame_model(
    tensor_runner: Any,
    frame_bytes: bytes,
    card: ModelCard,
    color: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    *,
    threshold: float | None = None,
    tolerance: float | None = None,
    budget: float | None = None,
) -> FrameGate:
    """Runs the gate; see the module docstring.

    Args:
        tensor_runner: the tensor model's parity runner (export.parity.ort_runner).
        frame_bytes: the serialized frame model.
        card: the tensor model's card (input, resize).
        images: held-out images at the model's input size, as the gate has them.
        labels: their classes, when known (accuracy on frames is reported).
        threshold: a multi-label head's threshold (answers compared class by class).
        tolerance: largest accepted probability difference (fp32 models).
        budget: for a reduced-precision model, whose probabilities move in quantization
            steps, the share of frames (in points) whose answer may differ instead.
    """
    import onnxruntime as ort

    pixels = ort.InferenceSession(
        preprocessing_model(card, color).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    frame_runner = ort_runner(frame_bytes)
    worst = differing = values = 0
    reports = {}
    for height, width in FRAME_SIZES:
        frames = frames_from_images(images, card.input.color, color, height, width)
        # Python's preprocessing of the very frames the graph gets (a GRAY frame is gray
        # for both, whatever the model's color).
        python = preprocess(
            list(frames), card.input, card.resize, color="RGB" if color[:3] == "RGB" else "BGR"
        )
        graph = pixels.run(None, {"frame": frames})[0]
        gap = np.abs(graph.astype(np.int32) - python.astype(np.int32))
        worst = max(worst, int(gap.max()))
        differing, values = differing + int((gap > 0).sum()), values + gap.size
        reports[f"frames {width}x{height}"] = compare(
            tensor_runner(python),
            frame_runner(frames),
            names=("tensor model, Python preprocessing", f"frame model {color}"),
            labels=labels,
            tolerance=tolerance,
            threshold=threshold,
        )
    reports["all"] = merge(list(reports.values()))
    disagree = 100 * (1 - reports["all"].top1_agreement)
    if budget is not None and disagree > budget:
        reports["all"].failures.append(
            f"answers differ on {disagree:.2f}% of frames > budget {budget:g} points"
        )
    if worst > MAX_LEVELS:
        reports["all"].failures.append(f"the graph's input tensor is {worst} gray levels from Python's")
    if differing > MAX_SHARE * values:
        reports["all"].failures.append(
            f"{differing / values:.1%} of the graph's input values differ from Python's (accepted: {MAX_SHARE:.0%})"
        )
    return FrameGate(worst, differing, values, reports)

"""Bench and check rows for frame models: a camera frame in, the answer out.

``engine-predict`` is what an app does today with a tensor model: ``Engine.predict`` on a
640x480 BGR frame, OpenCV's preprocessing in Python and then the model. ``engine-frame``
gives the same frame to the frame model beside it (``MODEL.frame-bgr.onnx``, written by
``cnnport export --frame BGR``), whose graph preprocesses. Both time ``predict`` on the
same frames, so the two rows of one `cnnport bench` run compare like for like.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from cnnport.runtime import UnsupportedError

from .backends import RUNNERS, Runner, Target, open_engine
from .frame import frame_path
from .parity import Outputs

__all__ = ["BENCH_FRAME_SIZE", "bench_frames"]

# (height, width) of the frames these rows are fed: a webcam's usual size.
BENCH_FRAME_SIZE = (480, 640)


def bench_frames(batch: np.ndarray) -> list[np.ndarray]:
    """Model-input images (RGB or GRAY) enlarged into 640x480 BGR frames (untimed)."""
    height, width = BENCH_FRAME_SIZE
    frames = []
    for image in batch.astype(np.uint8):
        frame = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        gray = frame.ndim == 2 or frame.shape[2] == 1
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if gray else cv2.COLOR_RGB2BGR))
    return frames


def _predict_runner(engine) -> Runner:
    def check(frames: np.ndarray) -> Outputs:
        return Outputs(np.stack([p.scores for p in engine.predict(bench_frames(frames))]))

    return Runner(lambda frames: engine.predict(frames), prepare=bench_frames, keep=engine, check=check)


@RUNNERS.register("engine-predict")
def engine_predict_runner(target: Target) -> Runner:
    """``Engine.predict`` on 640x480 BGR frames: Python preprocessing, then the model."""
    engine = open_engine(target)
    if engine.frame is not None:
        raise UnsupportedError(
            f"{target.onnx} is a frame model; give the tensor model (engine-frame times this)"
        )
    return _predict_runner(engine)


@RUNNERS.register("engine-frame")
def engine_frame_runner(target: Target) -> Runner:
    """``Engine.predict`` on the same frames through MODEL.frame-bgr.onnx: the graph preprocesses."""
    path = frame_path(target.onnx, "BGR")
    if not path.is_file():
        raise UnsupportedError(
            f"no frame model {str(path)!r} beside it (cnnport export --frame BGR writes it)"
        )
    return _predict_runner(open_engine(replace(target, onnx=path)))

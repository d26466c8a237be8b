"""The video clip the webcam benchmarks play: the same frames for every run and script."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLIP_SIZE", "make_video"]

CLIP_SIZE = (640, 480)  # (width, height), a webcam's usual frame


def make_video(path: Path, frames: int) -> Path:
    """A 640x480 MJPG video of moving shapes on noise (JPEG decoding cost like a camera's)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, CLIP_SIZE)
    background = rng.integers(0, 255, (CLIP_SIZE[1], CLIP_SIZE[0], 3), np.uint8)
    for i in range(frames):
        frame = cv2.GaussianBlur(background, (5, 5), 0)
        cv2.circle(frame, (40 + (i * 7) % 560, 240), 60, (0, 0, 255), -1)
        cv2.putText(frame, str(i % 10), (300, 300), cv2.FONT_HERSHEY_SIMPLEX, 5, (255, 255, 255), 12)
        writer.write(frame)
    writer.release()
    return path

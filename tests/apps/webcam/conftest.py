"""Fixtures for the webcam app: a digits model trained without TensorFlow, a video of
held-out digits standing in for the camera, and fake cameras for failure modes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from cnnport.runtime import InputSpec, ModelCard, OutputSpec, ResizeSpec, preprocess
from tests.models import build_classifier

SPEC = InputSpec(height=32, width=32, channels=1, color="GRAY")
RESIZE = ResizeSpec(mode="stretch", interpolation="area")
FRAME_SIZE = (640, 480)  # width, height
VIDEO_FRAMES = 40


@dataclass(frozen=True)
class DigitsModel:
    path: Path
    accuracy: float  # held-out accuracy of the classifier itself


@dataclass(frozen=True)
class DigitsVideo:
    path: Path
    labels: list[int]  # true digit per frame


def _digit_frame(image8x8: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """A BGR frame (640x480 by default) of one 8x8 digits image, bright ink on black."""
    gray = (image8x8 * (255.0 / 16.0)).astype(np.uint8)
    big = cv2.resize(gray, size, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory, digits_split) -> DigitsModel:
    """A logistic regression on 32x32 gray pixels, written as an ONNX graph with a card.

    The training images go through the runtime's own preprocessing, from the same
    640x480 frames the video shows, so the test exercises the real serving path.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    train_x, test_x, train_y, test_y = digits_split
    # Frames of 64x48 have the 640x480 frames' 4:3 pixel cells, so the runtime's area
    # resize gives the same 32x32 input at a tenth of the cost.
    small = (64, 48)
    features = preprocess([_digit_frame(x, small) for x in train_x], SPEC, RESIZE).reshape(len(train_x), -1)
    held_out = preprocess([_digit_frame(x, small) for x in test_x], SPEC, RESIZE).reshape(len(test_x), -1)
    features, held_out = features / 255.0, held_out / 255.0
    # One BLAS thread: on a 2-core runner OpenBLAS threads fight and the fit takes
    # 10 s instead of 0.3 s.
    with threadpool_limits(1):
        classifier = LogisticRegression(max_iter=500, C=1.0).fit(features, train_y)
    path = tmp_path_factory.mktemp("webcam_model") / "digits.onnx"
    card = ModelCard(
        labels=tuple(str(i) for i in range(10)),
        input=SPEC,
        resize=RESIZE,
        output=OutputSpec(name="probabilities", logits_name="logits"),
    )
    build_classifier(
        path, height=32, width=32, channels=1, labels=card.labels, card=card,
        weights=classifier.coef_.T.astype(np.float32), bias=classifier.intercept_.astype(np.float32),
    )  # fmt: skip
    return DigitsModel(path, float(classifier.score(held_out, test_y)))


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FRAME_SIZE)
    assert writer.isOpened(), "this OpenCV cannot write MJPG .avi"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def digits_video(tmp_path_factory: pytest.TempPathFactory, digits_split) -> DigitsVideo:
    """An MJPG .avi of held-out digits, one per frame, 640x480 BGR."""
    _, test_x, _, test_y = digits_split
    path = tmp_path_factory.mktemp("webcam_video") / "digits.avi"
    write_video(path, [_digit_frame(x) for x in test_x[:VIDEO_FRAMES]])
    return DigitsVideo(path, [int(y) for y in test_y[:VIDEO_FRAMES]])


@pytest.fixture(scope="session")
def digit_frames(digits_split) -> tuple[list[np.ndarray], list[int]]:
    """Held-out digit frames in memory, for fake cameras."""
    _, test_x, _, test_y = digits_split
    return [_digit_frame(x) for x in test_x[:VIDEO_FRAMES]], [int(y) for y in test_y[:VIDEO_FRAMES]]


class FakeCamera:
    """The cv2.VideoCapture interface over a frame function, with failure modes.

    Args:
        frame_at: the image for read number i (None: the read fails).
        delay_s: time each read takes (a camera's frame interval).
        hang_after: reads after which read() blocks until released.
    """

    def __init__(
        self,
        frame_at: Callable[[int], np.ndarray | None],
        *,
        delay_s: float = 0.0,
        hang_after: int | None = None,
    ) -> None:
        self.frame_at, self.delay_s, self.hang_after = frame_at, delay_s, hang_after
        self.reads = 0
        self.released = threading.Event()
        self.last_read_at = 0.0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's spelling
        return not self.released.is_set()

    def read(self):
        if self.hang_after is not None and self.reads >= self.hang_after:
            self.released.wait(5.0)  # a hung driver; bounded so a buggy test cannot hang
            return False, None
        if self.delay_s:
            time.sleep(self.delay_s)
        image = self.frame_at(self.reads)
        self.reads += 1
        self.last_read_at = time.monotonic()
        return (image is not None), image

    def release(self) -> None:
        self.released.set()

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return False


class FakeOpener:
    """An opener handing out cameras from a factory, recording each attempt."""

    def __init__(self, make: Callable[[int], FakeCamera]) -> None:
        self.make = make
        self.cameras: list[FakeCamera] = []

    def __call__(self, spec) -> FakeCamera:
        camera = self.make(len(self.cameras))
        self.cameras.append(camera)
        return camera

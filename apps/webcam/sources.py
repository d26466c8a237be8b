"""Where frames come from: a registry of source kinds and how each one is opened.

A ``--source`` string is parsed into a :class:`SourceSpec` by the first registered
kind that claims it (camera index, stream URL, folder of images, video file). Opening
goes through an *opener*, a callable with the :class:`cv2.VideoCapture` interface, so
tests inject fake sources without a camera.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from cnnport.runtime import IMAGE_SUFFIXES, CnnportError, Registry, decode_image
from cnnport.runtime.errors import ImageDecodeError

__all__ = [
    "SOURCE_KINDS",
    "CaptureLike",
    "FolderCapture",
    "SourceError",
    "SourceOpenError",
    "SourceSpec",
    "open_source",
    "parse_source",
]

logger = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(CnnportError):
    """A frame source failed: it ended without a frame, or gave up reconnecting."""


class SourceOpenError(SourceError):
    """A frame source cannot be opened; the message lists what was tried."""


class CaptureLike(Protocol):
    """The part of :class:`cv2.VideoCapture` the app uses (fakes implement it too)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's spelling
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``.

    Attributes:
        kind: the registered kind: "camera", "url", "folder" or "file".
        target: what OpenCV opens (an int for a camera, else a string).
        live: a live source keeps only its newest frame and is reconnected when it
            stops; a recorded one is read frame by frame until it ends.
        text: the string the user gave, for messages.
    """

    kind: str
    target: int | str
    live: bool
    text: str

    def describe(self) -> str:
        """A short human description, e.g. "camera 0" or "video file 'a.avi'"."""
        names = {"camera": "camera", "url": "stream", "folder": "image folder", "file": "video file"}
        target = self.target if self.kind == "camera" else repr(self.target)
        return f"{names.get(self.kind, self.kind)} {target}"


# Each kind is a parser: the spec when it claims the text, else None. Order matters:
# "0" is a camera even if a file named "0" exists (pass ./0 for the file).
SOURCE_KINDS: Registry[Callable[[str], SourceSpec | None]] = Registry("source kind")


@SOURCE_KINDS.register("camera")
def _camera(text: str) -> SourceSpec | None:
    return SourceSpec("camera", int(text), True, text) if text.strip().isdigit() else None


# How long FFmpeg waits for a stream to open, and for each frame of it, before the read
# fails (and the watchdog reconnects): longer than a slow camera's frame interval.
STREAM_OPEN_TIMEOUT_MS = 10_000
STREAM_READ_TIMEOUT_MS = 5_000


@SOURCE_KINDS.register("url")
def _url(text: str) -> SourceSpec | None:
    return SourceSpec("url", text, True, text) if text.lower().startswith(URL_SCHEMES) else None


@SOURCE_KINDS.register("folder")
def _folder(text: str) -> SourceSpec | None:
    return SourceSpec("folder", text, False, text) if Path(text).is_dir() else None


@SOURCE_KINDS.register("file")
def _file(text: str) -> SourceSpec | None:
    return SourceSpec("file", text, False, text) if Path(text).is_file() else None


def parse_source(text: str | int) -> SourceSpec:
    """The :class:`SourceSpec` for a ``--source`` value.

    Raises:
        SourceOpenError: no kind claims the text (e.g. a path that does not exist).

    Example:
        >>> parse_source("0").describe()
        'camera 0'
    """
    text = str(text)
    for name in SOURCE_KINDS:
        spec = SOURCE_KINDS.get(name)(text)
        if spec is not None:
            return spec
    raise SourceOpenError(
        f"cannot use source {text!r}: it is not a camera index (0, 1, ...), a stream URL "
        f"({', '.join(s.rstrip(':/') for s in URL_SCHEMES)}), an existing video file, "
        "or an existing folder of images"
    )


class FolderCapture:
    """A folder of images read in name order, with the VideoCapture interface.

    An image that cannot be decoded is skipped with a warning, as a camera's bad
    frame would be: one bad file must not stop the run.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self._paths = sorted(
            p
            for p in Path(folder).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        self._next = 0
        self.last_name: str | None = None  # the file the last read returned (JSON lines say it)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's spelling
        return bool(self._paths)

    def read(self) -> tuple[bool, np.ndarray | None]:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            try:
                image = decode_image(path)
            except ImageDecodeError as exc:
                logger.warning("skipping %s", exc)
                continue
            self.last_name = path.name
            return True, image
        return False, None

    def release(self) -> None:
        self._next = len(self._paths)

    def get(self, prop: int) -> float:
        return float(len(self._paths)) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def set(self, prop: int, value: float) -> bool:
        return False


Opener = Callable[[SourceSpec], CaptureLike]

# What is tried for each kind, in order: (name shown in messages, OpenCV API preference).
_BACKENDS = {
    "camera": (("default backend", cv2.CAP_ANY), ("V4L2", cv2.CAP_V4L2)),
    "url": (("FFmpeg", cv2.CAP_FFMPEG), ("default backend", cv2.CAP_ANY)),
    "file": (("FFmpeg", cv2.CAP_FFMPEG), ("default backend", cv2.CAP_ANY)),
}


def open_source(spec: SourceSpec, frame_size: tuple[int, int] | None = None) -> CaptureLike:
    """Opens ``spec`` with OpenCV, trying each backend that fits its kind.

    Args:
        spec: the parsed source.
        frame_size: (width, height) to ask a camera or stream for; the device may
            choose another size, which is logged.

    Raises:
        SourceOpenError: nothing opened; the message lists every attempt.
    """
    if spec.kind == "folder":
        capture = FolderCapture(spec.target)
        if not capture.isOpened():
            raise SourceOpenError(
                f"cannot open {spec.describe()}: it holds no images (accepted: {' '.join(IMAGE_SUFFIXES)})"
            )
        return capture
    tried = []
    for name, api in _BACKENDS[spec.kind]:
        with _quiet_opencv():
            if spec.kind == "url" and api == cv2.CAP_FFMPEG:
                # Without a read timeout a stream that stops sending but keeps its socket
                # open blocks read() for good (see capture._retire_reader).
                timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_OPEN_TIMEOUT_MS]
                timeouts += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_READ_TIMEOUT_MS]
                capture = cv2.VideoCapture(spec.target, api, timeouts)
            else:
                capture = cv2.VideoCapture(spec.target, api)
            opened = capture.isOpened() and _first_frame_ok(capture, spec)
        if opened:
            _apply_size(capture, spec, frame_size)
            return capture
        capture.release()
        tried.append(f"OpenCV VideoCapture with {name}")
    hint = _open_hint(spec)
    raise SourceOpenError(f"cannot open {spec.describe()}; tried: {'; '.join(tried)}{hint}")


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silences OpenCV's own log while probing backends (unless we log at debug).

    A failed probe makes OpenCV print several warnings and C++ exception texts; the
    SourceOpenError that follows says the same thing once, in our words.
    """
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _first_frame_ok(capture: cv2.VideoCapture, spec: SourceSpec) -> bool:
    # A corrupt file can "open" (the container parses) yet decode nothing; checking
    # one frame here turns that into an open error instead of an empty run. Files
    # are rewound; live sources just lose one frame.
    if spec.kind != "file":
        return True
    ok, frame = capture.read()
    if not ok or frame is None or frame.size == 0:
        return False
    if not capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
        # Some containers cannot seek; the first frame is then simply skipped.
        logger.warning("could not rewind %s; its first frame is skipped", spec.describe())
    return True


def _apply_size(capture: CaptureLike, spec: SourceSpec, frame_size: tuple[int, int] | None) -> None:
    if frame_size is None or not spec.live:
        return
    width, height = frame_size
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if got != (width, height):
        logger.warning("%s gives %dx%d frames; asked for %dx%d", spec.describe(), *got, width, height)


def _open_hint(spec: SourceSpec) -> str:
    if spec.kind == "camera":
        device = Path(f"/dev/video{spec.target}")
        found = sorted(str(p) for p in Path("/dev").glob("video*")) if Path("/dev").is_dir() else []
        if os.name == "posix" and not device.exists():
            return f" ({device} does not exist; video devices found: {', '.join(found) or 'none'})"
        return " (is another program using it, or is permission missing?)"
    if spec.kind == "file":
        size = Path(spec.target).stat().st_size
        return f" (the file is {size} bytes; it is empty, corrupt, or in a format this OpenCV cannot decode)"
    return " (is the URL right and the stream reachable?)"

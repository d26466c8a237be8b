"""Headless outputs: the annotated video and the JSON-lines prediction log."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cnnport.runtime import InputError, OutputError
from cnnport.runtime.files import unwritable

__all__ = ["AnnotatedVideo", "JsonLines"]

logger = logging.getLogger(__name__)

# Codecs this OpenCV build writes without extra libraries.
FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG", ".mov": "mp4v"}


class AnnotatedVideo:
    """Writes frames to a video in a background thread; every frame is kept, in order.

    Encoding (MJPG/mp4v) costs more than a small model's inference, so it runs beside
    the app loop; a bounded queue makes the loop wait rather than drop a frame when
    the encoder falls behind. The file is opened on the first frame and keeps its
    size; a later frame of another size (a camera that renegotiated) is resized.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, queue_size: int = 8) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise InputError(f"--save must end in one of {', '.join(FOURCC)}; received {str(path)!r}")
        if not self.path.parent.is_dir():
            raise InputError(f"cannot write {str(path)!r}: folder {str(self.path.parent)!r} does not exist")
        reason = unwritable(self.path)
        # OpenCV writes the video in place: an existing file it may write is enough.
        if reason is not None and not (self.path.is_file() and os.access(self.path, os.W_OK)):
            raise OutputError(f"cannot write --save {str(path)!r}: {reason}")
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.frames = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=queue_size)
        self._error: InputError | None = None
        self._thread: threading.Thread | None = None

    def write(self, image: np.ndarray) -> None:
        """Queues one frame; raises the writer's error if it failed."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._encode, name="video-writer", daemon=True)
            self._thread.start()
        self._queue.put(image)
        self.frames += 1

    def close(self) -> None:
        """Writes what is queued and closes the file."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _encode(self) -> None:
        writer: cv2.VideoWriter | None = None
        size: tuple[int, int] | None = None
        try:
            while (image := self._queue.get()) is not None:
                if writer is None:
                    size = (image.shape[1], image.shape[0])
                    writer = self._open(size)
                if (image.shape[1], image.shape[0]) != size:
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                writer.write(image)
        except Exception as exc:  # the thread boundary: report it to the app, never die silently
            self._error = (
                exc
                if isinstance(exc, InputError)
                else InputError(f"writing {str(self.path)!r} failed: {exc}")
            )
            while self._queue.get() is not None:
                pass  # drain, so the app never blocks on a dead writer
        finally:
            if writer is not None:
                writer.release()

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        codec = FOURCC[self.path.suffix.lower()]
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, size)
        if not writer.isOpened():
            raise InputError(f"OpenCV cannot write video {str(self.path)!r} with codec {codec}")
        return writer


class JsonLines:
    """One JSON object a line, flushed per line so a killed run keeps what it wrote."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()

"""`cnnport collect`: a live preview where keys 1-9 save frames into class folders.

The result, ``DATASET_DIR/<class>/*.jpg``, is the folder-of-class-subfolders layout
that `cnnport train` reads. Holding a key keeps saving (the keyboard's auto-repeat
sends the key again), one image per new frame, so a burst never stores the same frame
twice.

Example:
    >>> config = CollectConfig("data", parse_classes("cat,dog"), source="0")
    >>> Collector(config).run()                                   # doctest: +SKIP
    {'cat': 40, 'dog': 38}
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cnnport.runtime import IMAGE_SUFFIXES, InputError

from .capture import CaptureState, FrameCapture, Watchdog
from .overlay import OverlayState, draw_counts, draw_overlay
from .sources import Opener, parse_source
from .window import Display, KeyHook, WindowDisplay

__all__ = ["CollectConfig", "Collector", "parse_classes"]

logger = logging.getLogger(__name__)

MAX_CLASSES = 9  # one digit key per class
_SAFE_NAME = re.compile(r"^[\w][\w .+-]*$")


def parse_classes(text: str) -> tuple[str, ...]:
    """Class names from "a,b,c", checked to be usable as folder names.

    Raises:
        InputError: empty, duplicated, unsafe, or more than nine names.

    Example:
        >>> parse_classes("cat, dog")
        ('cat', 'dog')
    """
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise InputError(f"--classes needs at least one name, like cat,dog; received {text!r}")
    if len(names) > MAX_CLASSES:
        raise InputError(f"--classes takes at most {MAX_CLASSES} names (keys 1-9); received {len(names)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"--classes names must be unique; repeated: {', '.join(duplicates)}")
    for name in names:
        if not _SAFE_NAME.match(name) or name in (".", ".."):
            raise InputError(
                f"class name {name!r} cannot be a folder name; accepted: letters, digits, "
                "space, and _ . + - (not first)"
            )
    return names


@dataclass(frozen=True)
class CollectConfig:
    """What `cnnport collect` was asked to do."""

    dataset_dir: str
    classes: tuple[str, ...]
    source: str = "0"
    mirror: bool = False
    frame_size: tuple[int, int] | None = None
    max_frames: int = 0
    suffix: str = ".jpg"
    watchdog: Watchdog = field(default_factory=Watchdog)


class Collector:
    """The collect app.

    Args:
        config: what to do.
        display: where the preview goes (default a window).
        keys: a key hook consulted when the display reports no key (tests script it).
        opener: opens the source; tests inject fakes.
    """

    def __init__(
        self,
        config: CollectConfig,
        *,
        display: Display | None = None,
        keys: KeyHook | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.config = config
        self.mirror = config.mirror
        self.root = Path(config.dataset_dir)
        self.counts = {name: _existing(self.root / name) for name in config.classes}
        self.saved: dict[str, int] = dict.fromkeys(config.classes, 0)
        self.last_rendered: np.ndarray | None = None
        self._display, self._keys, self._opener = display, keys, opener
        self._image: np.ndarray | None = None
        self._image_index = -1
        self._saved_index: dict[str, int] = dict.fromkeys(config.classes, -1)
        self._flash = ""

    def run(self) -> dict[str, int]:
        """Runs until q/Esc, the window closes, the source ends, or max frames.

        Returns:
            Images saved this run, per class.
        """
        capture = FrameCapture(
            parse_source(self.config.source),
            opener=self._opener,
            watchdog=self.config.watchdog,
            frame_size=self.config.frame_size,
        )
        capture.start()  # an unopenable source fails before any folder is made
        display = None
        try:
            # The window first: without a display it fails before any folder is made.
            display = self._display or WindowDisplay(
                "cnnport collect", headless_hint="collect saves frames on key presses, so it needs a window"
            )
            for name in self.config.classes:
                (self.root / name).mkdir(parents=True, exist_ok=True)
            self._loop(capture, display)
        finally:
            capture.stop()
            if display is not None:
                display.close()
        return self.saved

    def _loop(self, capture: FrameCapture, display: Display) -> None:
        frames = 0
        while True:
            frame = capture.read(timeout=0.1)
            status = "reconnecting" if capture.state is CaptureState.RECONNECTING else ""
            if frame is not None:
                frames += 1
                image = frame.image
                self._image = cv2.flip(image, 1) if self.mirror else image
                self._image_index = frame.index
            elif capture.finished:
                return
            self._render(display, status)
            if not self._handle_key(display.poll_key(1)) or display.closed:
                return
            if self.config.max_frames and frames >= self.config.max_frames:
                return

    def _render(self, display: Display, status: str) -> None:
        if self._image is None:
            return
        image = draw_counts(self._image, self.config.classes, self.counts, self._flash)
        if status:
            image = draw_overlay(image, OverlayState(status=status))
        self.last_rendered = image
        display.show(image)
        self._flash = ""

    def _handle_key(self, key: int) -> bool:
        """Acts on one key; False means quit."""
        if key == -1 and self._keys is not None:
            key = self._keys(1)
        if key in (ord("q"), 27):
            return False
        if key == ord("m"):
            self.mirror = not self.mirror
        elif ord("1") <= key <= ord("9") and key - ord("1") < len(self.config.classes):
            self._save(self.config.classes[key - ord("1")])
        return True

    def _save(self, name: str) -> None:
        # One image per frame per class: a held key must not store duplicates.
        if self._image is None or self._saved_index[name] == self._image_index:
            return
        folder = self.root / name
        path = folder / f"{name}_{time.strftime('%Y%m%d-%H%M%S')}_{self.counts[name]:05d}{self.config.suffix}"
        if not cv2.imwrite(str(path), self._image):
            logger.warning("could not write %s", path)
            return
        self._saved_index[name] = self._image_index
        self.counts[name] += 1
        self.saved[name] += 1
        self._flash = name


def _existing(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

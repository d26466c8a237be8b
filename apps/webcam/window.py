"""Where frames are shown and keys come from: an OpenCV window, or nothing (headless).

The app talks to a *display* (show, poll_key, closed, close) and optionally a *key
hook*; both are seams, so tests drive the app with scripted keys and no window.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import cv2
import numpy as np

from cnnport.runtime import CnnportError

__all__ = [
    "Display",
    "HeadlessDisplay",
    "KeyHook",
    "NoDisplayError",
    "ScriptedKeys",
    "WindowDisplay",
    "has_display",
    "key_code",
]

logger = logging.getLogger(__name__)

NO_KEY = -1
KeyHook = Callable[[int], int]
"""Called once per loop turn with the wait in milliseconds; returns a key code or -1."""


def key_code(key: str | int) -> int:
    """The code the app compares against: ``ord`` of a character, or an int as is."""
    return ord(key) if isinstance(key, str) else int(key)


class Display(Protocol):
    """What the app needs from a screen."""

    def show(self, image: np.ndarray) -> None: ...
    def poll_key(self, delay_ms: int) -> int: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...


class HeadlessDisplay:
    """No window: nothing is shown and no key is ever pressed."""

    closed = False

    def show(self, image: np.ndarray) -> None:
        """Discards the frame."""

    def poll_key(self, delay_ms: int) -> int:
        return NO_KEY

    def close(self) -> None:
        """Nothing to close."""


def has_display() -> bool:
    """Whether a window can open here: not Linux, or $DISPLAY / $WAYLAND_DISPLAY set."""
    return not sys.platform.startswith("linux") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


class NoDisplayError(CnnportError):
    """A window was asked for on a machine without a display."""


class WindowDisplay:
    """An OpenCV HighGUI window; closing it with the mouse ends the app."""

    def __init__(self, title: str = "cnnport", headless_hint: str = "") -> None:
        """Raises NoDisplayError on Linux without $DISPLAY or $WAYLAND_DISPLAY, where OpenCV's
        Qt would abort the process (SIGABRT, "could not connect to display")."""
        if not has_display():
            raise NoDisplayError(
                f"no display to open the {title} window on ($DISPLAY and $WAYLAND_DISPLAY are not set)"
                + (f"; {headless_hint}" if headless_hint else "")
                + "; or run it under a virtual X server: xvfb-run -a cnnport ..."
            )
        self.title = title
        self._shown = False
        # GUI_NORMAL: no Qt toolbar over the overlay; NORMAL: the user may resize.
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        if not self._shown:
            # Start at the frame's own size (Qt picks a small default otherwise).
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self._shown = True

    def poll_key(self, delay_ms: int) -> int:
        # waitKey also runs the GUI event loop, so it is called every turn.
        key = cv2.waitKey(max(1, delay_ms))
        return NO_KEY if key == -1 else key & 0xFF

    @property
    def closed(self) -> bool:
        if not self._shown:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # the window is already gone
            return True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error as exc:
            logger.debug("window already closed: %s", exc)


class ScriptedKeys:
    """A key hook that plays a fixed sequence, one entry per loop turn.

    Entries are characters, key codes, or None for "no key this turn". After the
    script, ``then`` is returned forever (default: q, so a test always ends).

    Example:
        >>> keys = ScriptedKeys(["1", None, "q"])
        >>> [keys(1) for _ in range(4)]
        [49, -1, 113, 113]
    """

    def __init__(self, script: Iterable[str | int | None], then: str | int | None = "q") -> None:
        self._script: Iterator[str | int | None] = iter(script)
        self._then = then
        self.turns = 0

    def __call__(self, delay_ms: int) -> int:
        self.turns += 1
        key = next(self._script, self._then)
        return NO_KEY if key is None else key_code(key)

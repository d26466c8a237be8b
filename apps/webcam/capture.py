"""Threaded frame capture with a watchdog.

A live source (camera, stream) keeps only its newest frame, so a slow consumer sees
the present rather than a growing backlog. A recorded source (file, folder) hands
over every frame in order, the reader waiting while the consumer is busy.

A live source that stops delivering — read fails, reads hang, or the same frame
comes back again and again — is reconnected with exponential back-off. A read that
hangs inside OpenCV cannot be interrupted, so its reader thread is abandoned (it
releases its capture if the read ever returns) and a new connection is opened.

Example:
    >>> capture = FrameCapture(parse_source("0"))          # doctest: +SKIP
    >>> with capture:                                       # doctest: +SKIP
    ...     frame = capture.read(timeout=1.0)
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .sources import CaptureLike, Opener, SourceError, SourceSpec, open_source

__all__ = ["CaptureState", "Frame", "FrameCapture", "Watchdog"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One frame: its position in the source's stream, when it was read, the image."""

    index: int
    timestamp: float
    image: np.ndarray
    name: str | None = None  # the file it came from, for an image folder


@dataclass(frozen=True)
class Watchdog:
    """When a live source counts as stopped, and how reconnecting backs off.

    Attributes:
        stale_after_s: no new frame (or only identical ones) for this long means the
            source stopped; this catches unplugged cameras, dropped streams and hung
            reads alike. For a recorded source a hang this long is an error.
        backoff_s: first wait before reconnecting; doubled after each failed try.
        backoff_max_s: the longest wait between tries.
        max_reconnects: tries before giving up; None retries forever (a server). The
            count starts again only once the source has delivered new frames for a full
            ``stale_after_s`` after reconnecting: a stream that reopens but freezes again
            at once spends the same budget.
    """

    stale_after_s: float = 3.0
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    max_reconnects: int | None = None

    def __post_init__(self) -> None:
        if self.stale_after_s <= 0 or self.backoff_s <= 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError(f"watchdog times must be positive with backoff_max_s >= backoff_s; got {self}")


class CaptureState(str, enum.Enum):
    """Where the capture stands; the overlay shows it."""

    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


class FrameCapture:
    """Reads a source in background threads and hands frames to one consumer.

    Args:
        spec: the parsed source.
        opener: opens the source (default :func:`open_source`); tests inject fakes.
        watchdog: stall detection and reconnect back-off.
        realtime: play a recorded source at its own frame rate, keeping only the
            newest frame, as if it were live.
        frame_size: (width, height) to ask a camera for.
        queue_size: frames buffered for a recorded source.
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        opener: Opener | None = None,
        watchdog: Watchdog | None = None,
        realtime: bool = False,
        frame_size: tuple[int, int] | None = None,
        queue_size: int = 4,
    ) -> None:
        self.spec = spec
        self.watchdog = watchdog or Watchdog()
        self.latest_only = spec.live or realtime
        self._realtime = realtime and not spec.live
        self._opener = opener or (lambda s: open_source(s, frame_size))
        self._queue: deque[Frame] = deque()
        self._queue_size = max(1, queue_size)
        self._latest: Frame | None = None
        self._taken = -1
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._generation = 0
        self._next_index = 0
        self._last_new_at = time.monotonic()
        self._previous_sample: np.ndarray | None = None
        self._stopped_reason: str | None = None
        self._blocked_on_consumer = False
        self._reader: tuple[threading.Thread, CaptureLike] | None = None
        self._supervisor: threading.Thread | None = None
        self.state = CaptureState.LIVE
        self.error: SourceError | None = None
        self.dropped = 0
        self.reconnects = 0
        self._spent = 0  # reconnect attempts since the source last ran well (see Watchdog)
        self._live_since = 0.0  # when the last reconnect succeeded
        self.frame_count = 0.0  # frames in a recorded source, when it says (0: unknown)
        self.source_fps = 0.0  # the source's nominal rate, when it says (0: unknown)

    # -- consumer side -------------------------------------------------------------

    def start(self) -> FrameCapture:
        """Opens the source and starts reading.

        Raises:
            SourceOpenError: the source cannot be opened; nothing is left running.
        """
        capture = self._opener(self.spec)
        self.frame_count = _frame_count(capture)
        self.source_fps = _fps(capture)
        self._start_reader(capture)
        self._supervisor = threading.Thread(target=self._supervise, name="capture-watchdog", daemon=True)
        self._supervisor.start()
        return self

    def read(self, timeout: float) -> Frame | None:
        """The next frame, or None when none came within ``timeout`` seconds.

        Raises:
            SourceError: the source failed for good (gave up reconnecting, or a
                recorded source delivered nothing / hung).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._take()
                if frame is not None:
                    return frame
                if self.error is not None:
                    raise self.error
                left = deadline - time.monotonic()
                if self.state is CaptureState.ENDED or left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def finished(self) -> bool:
        """True once a recorded source has ended and every frame was read."""
        with self._cond:
            return self.state is CaptureState.ENDED and not self._queue and not self._pending_latest()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops the threads; each reader releases its capture on its way out."""
        self._stop.set()
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        self._retire_reader(timeout)

    def __enter__(self) -> FrameCapture:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _take(self) -> Frame | None:
        if not self.latest_only:
            if self._queue:
                self._cond.notify_all()  # the reader may be waiting for room
                return self._queue.popleft()
            return None
        if self._pending_latest():
            self._taken = self._latest.index
            return self._latest
        return None

    def _pending_latest(self) -> bool:
        return self._latest is not None and self._latest.index > self._taken

    # -- reader side ---------------------------------------------------------------

    def _start_reader(self, capture: CaptureLike) -> None:
        with self._cond:
            self._generation += 1
            generation = self._generation
            self._stopped_reason = None
            self._previous_sample = None
            self._last_new_at = time.monotonic()
        reader = threading.Thread(
            target=self._read_loop, args=(capture, generation), name="capture-reader", daemon=True
        )
        self._reader = (reader, capture)
        reader.start()

    def _retire_reader(self, timeout: float) -> None:
        """Waits for the current reader to leave; releases its capture if it is hung.

        Releasing from this thread while the reader is blocked in ``read`` is the only
        way to unblock a hung driver, and a camera must be released before it can be
        reopened; the reader releases again on its way out, which is harmless. A stream's
        capture is never released here (see below).
        """
        if self._reader is None:
            return
        thread, capture = self._reader
        self._reader = None
        thread.join(timeout)
        if not thread.is_alive():
            return
        if self.spec.kind == "url":
            # FFmpeg crashes the process (SIGSEGV) when its capture is released from another
            # thread during a read. A stream's reads end by themselves (the read timeout it
            # is opened with, sources.STREAM_READ_TIMEOUT_MS), and the reader then releases
            # its capture on its way out; a new one opens meanwhile.
            logger.warning(
                "%s: a read is blocked; leaving it to time out and opening anew", self.spec.describe()
            )
            return
        logger.warning("%s: a read is blocked; releasing its capture to unblock it", self.spec.describe())
        _safe_release(capture, self.spec)

    def _current(self, generation: int) -> bool:
        return not self._stop.is_set() and generation == self._generation

    def _read_loop(self, capture: CaptureLike, generation: int) -> None:
        period = 1.0 / self.source_fps if self._realtime and self.source_fps > 0 else 0.0
        next_due = time.monotonic()
        try:
            while self._current(generation):
                ok, image = _safe_read(capture, self.spec)
                if not self._current(generation):
                    return
                if not ok:
                    self._source_stopped(generation, "returned no frame")
                    return
                if image is None or not isinstance(image, np.ndarray) or image.size == 0:
                    time.sleep(0.001)  # a broken driver must not spin a core
                    continue
                self._publish(image, generation, getattr(capture, "last_name", None))
                if period:
                    next_due += period
                    time.sleep(max(0.0, next_due - time.monotonic()))
        finally:
            _safe_release(capture, self.spec)

    def _publish(self, image: np.ndarray, generation: int, name: str | None = None) -> None:
        with self._cond:
            if generation != self._generation:
                return
            now = time.monotonic()
            if self.latest_only:
                if self._is_repeat(image):
                    return  # a stale repeat is never classified; the watchdog times it
                self._last_new_at = now
                if self._pending_latest():
                    self.dropped += 1
                self._latest = Frame(self._next_index, now, image, name)
            else:
                while len(self._queue) >= self._queue_size and self._current(generation):
                    self._blocked_on_consumer = True
                    self._cond.wait(0.1)
                self._blocked_on_consumer = False
                self._last_new_at = time.monotonic()
                self._queue.append(Frame(self._next_index, now, image, name))
            self._next_index += 1
            self._cond.notify_all()

    def _is_repeat(self, image: np.ndarray) -> bool:
        # A sparse grid is enough: live sensors add noise everywhere, so a bit-exact
        # match of the grid means the driver is replaying its last buffer.
        if image.ndim < 2:
            return False  # not an image; the app reports it as a bad frame
        sample = image[:: max(1, image.shape[0] // 24), :: max(1, image.shape[1] // 32)].copy()
        repeat = self._previous_sample is not None and np.array_equal(sample, self._previous_sample)
        self._previous_sample = sample
        return repeat

    def _source_stopped(self, generation: int, reason: str) -> None:
        with self._cond:
            if generation != self._generation:
                return
            if self.latest_only and not self._realtime:
                self._stopped_reason = reason
            elif self._next_index == 0:
                self._fail(f"{self.spec.describe()} opened but delivered no frames (corrupt or empty?)")
            else:
                self._end()
            self._cond.notify_all()

    def _end(self) -> None:
        self.state = CaptureState.ENDED
        if self.frame_count and self._next_index < self.frame_count:
            logger.warning(
                "%s ended after %d of its %d frames (truncated or corrupt?)",
                self.spec.describe(),
                self._next_index,
                int(self.frame_count),
            )

    def _fail(self, message: str) -> None:
        self.state = CaptureState.FAILED
        self.error = SourceError(message)
        logger.error("%s", message)

    # -- watchdog ------------------------------------------------------------------

    def _supervise(self) -> None:
        poll = min(0.05, self.watchdog.stale_after_s / 4)
        while not self._stop.wait(poll):
            reason = self._health()
            if reason is None:
                continue
            if not self.latest_only or self._realtime:
                with self._cond:
                    self._fail(f"{self.spec.describe()} {reason}")
                    self._cond.notify_all()
                return
            if not self._reconnect(reason):
                return

    def _health(self) -> str | None:
        with self._cond:
            if self.state in (CaptureState.ENDED, CaptureState.FAILED):
                return None
            if self._stopped_reason:
                return self._stopped_reason
            idle = time.monotonic() - self._last_new_at
            if idle > self.watchdog.stale_after_s and not self._blocked_on_consumer:
                return f"delivered no new frame for {idle:.1f} s (hung, or repeating a stale frame)"
            if self._spent and self._last_new_at > self._live_since + self.watchdog.stale_after_s:
                self._spent = 0  # new frames a full window after the reconnect: it runs again
        return None

    def _reconnect(self, reason: str) -> bool:
        with self._cond:
            self.state = CaptureState.RECONNECTING
            self._generation += 1  # the old reader, hung or not, is now obsolete
            self._cond.notify_all()
        logger.warning("%s %s; reconnecting", self.spec.describe(), reason)
        self._retire_reader(min(1.0, self.watchdog.backoff_s))
        delay, attempt = self.watchdog.backoff_s, self._spent
        while not self._stop.is_set():
            if self.watchdog.max_reconnects is not None and attempt >= self.watchdog.max_reconnects:
                with self._cond:
                    self._fail(
                        f"{self.spec.describe()} {reason}; gave up after {attempt} reconnect attempt(s)"
                    )
                    self._cond.notify_all()
                return False
            attempt += 1
            if self._stop.wait(delay):
                return False
            try:
                capture = self._opener(self.spec)
            except SourceError as exc:
                logger.info("reconnect attempt %d failed: %s", attempt, exc)
                delay = min(delay * 2, self.watchdog.backoff_max_s)
                continue
            self._start_reader(capture)
            with self._cond:
                self.state = CaptureState.LIVE
                self.reconnects += 1
                self._spent, self._live_since = attempt, time.monotonic()
            logger.info("%s reconnected after %d attempt(s)", self.spec.describe(), attempt)
            return True
        return False


def _safe_read(capture: CaptureLike, spec: SourceSpec) -> tuple[bool, np.ndarray | None]:
    # The thread boundary: an exception here would kill the reader silently, so a
    # failing read is logged and treated as "no frame" (which the watchdog handles).
    try:
        ok, image = capture.read()
    except Exception as exc:
        logger.warning("%s: read failed: %s", spec.describe(), exc)
        return False, None
    return bool(ok), image


def _safe_release(capture: CaptureLike, spec: SourceSpec) -> None:
    try:
        capture.release()
    except Exception as exc:
        logger.warning("%s: release failed: %s", spec.describe(), exc)


def _frame_count(capture: CaptureLike) -> float:
    try:
        return max(0.0, float(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    except Exception:  # fakes and some backends do not implement get
        return 0.0


def _fps(capture: CaptureLike) -> float:
    try:
        return max(0.0, float(capture.get(cv2.CAP_PROP_FPS)))
    except Exception:  # as above: the rate is optional information
        return 0.0

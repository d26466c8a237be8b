"""The live classifier loop: capture → engine → smoothing → overlay → window/outputs.

Example:
    >>> from cnnport.runtime import Engine
    >>> engine = Engine("model.onnx", spinning=False)                   # doctest: +SKIP
    >>> config = WebcamConfig(source="clip.avi", headless=True, jsonl="p.jsonl")
    >>> WebcamApp(engine, config).run().frames                           # doctest: +SKIP
    120
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cnnport.runtime import CnnportError, Engine, InputError, Prediction

from .capture import CaptureState, Frame, FrameCapture, Watchdog
from .outputs import AnnotatedVideo, JsonLines
from .overlay import OverlayState, draw_overlay
from .smoothing import Decision, ScoreSmoother, decide
from .sources import Opener, parse_source
from .window import Display, HeadlessDisplay, KeyHook, WindowDisplay

__all__ = ["RunSummary", "WebcamApp", "WebcamConfig"]

logger = logging.getLogger(__name__)

ESC = 27
THRESHOLD_STEP = 0.05


@dataclass(frozen=True)
class WebcamConfig:
    """What `cnnport webcam` was asked to do (filled from its flags).

    Attributes:
        source: camera index, video file, stream URL or image folder.
        top_k: classes listed with bars.
        threshold: below this smoothed score the app says "uncertain".
        smoothing: weight of the newest frame in the moving average (1 = off).
        mirror: flip frames left-right (a selfie view).
        frame_size: (width, height) asked of a camera.
        max_frames: stop after this many processed frames (0 = no limit).
        headless: no window; write ``save`` and/or ``jsonl`` instead.
        save: annotated video path (.avi or .mp4).
        jsonl: prediction log path, one JSON object per frame.
        realtime: play a video file at its own speed, dropping frames like a camera.
        snapshot_dir: where the s key saves images and their predictions.
        watchdog: stall detection and reconnect back-off.
        heatmap: blend where the model looks (its class activation map) over the frame;
            the h key toggles it.
    """

    source: str = "0"
    top_k: int = 3
    threshold: float = 0.5
    smoothing: float = 0.4
    mirror: bool = False
    frame_size: tuple[int, int] | None = None
    max_frames: int = 0
    headless: bool = False
    save: str | None = None
    jsonl: str | None = None
    realtime: bool = False
    snapshot_dir: str = "snapshots"
    watchdog: Watchdog = field(default_factory=Watchdog)
    heatmap: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"--top-k must be at least 1; received {self.top_k}")
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"--threshold must be in [0, 1]; received {self.threshold}")
        if not 0.0 < self.smoothing <= 1.0:
            raise InputError(f"--smoothing must be in (0, 1] (1 = off); received {self.smoothing}")
        if self.max_frames < 0:
            raise InputError(f"--max-frames must be 0 (no limit) or more; received {self.max_frames}")


@dataclass(frozen=True)
class RunSummary:
    """What a run did, for the CLI's last line and for tests."""

    frames: int
    bad_frames: int
    dropped: int
    reconnects: int
    seconds: float
    end: str  # "source ended", "quit", "window closed", "max frames", "stopped"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class FpsMeter:
    """Frames per second over the last ``window`` frames."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self) -> float:
        self._times.append(time.perf_counter())
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(1e-9, self._times[-1] - self._times[0])


class WebcamApp:
    """The live classifier.

    Args:
        engine: a loaded engine (build it with ``spinning=False`` for live use).
        config: what to do.
        display: where frames go; default a window, or nothing when headless.
        keys: a key hook consulted when the display reports no key (tests script it).
        opener: opens the source; tests inject fake cameras here.
    """

    def __init__(
        self,
        engine: Engine,
        config: WebcamConfig,
        *,
        display: Display | None = None,
        keys: KeyHook | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.engine = engine
        # What the overlay shows as the provider, e.g. "CPU" or "CUDA".
        self._provider = engine.providers[0].replace("ExecutionProvider", "")
        self.config = config
        self.threshold = config.threshold
        self.mirror = config.mirror
        if config.heatmap:
            engine.require_class_maps("--heatmap")
        self.heatmap = config.heatmap
        self.paused = False
        self.last_rendered: np.ndarray | None = None
        self._display = display
        self._keys = keys
        self._opener = opener
        self._smoother = ScoreSmoother(config.smoothing)
        self._fps = FpsMeter()
        self._last_frame: np.ndarray | None = None
        self._end: str | None = None
        self._frames = self._bad = self._snapshots = 0
        self._started = time.monotonic()
        self._actions = {
            ord("q"): self._quit,
            ESC: self._quit,
            ord(" "): self._toggle_pause,
            ord("s"): self._snapshot,
            ord("m"): self._toggle_mirror,
            ord("h"): self._toggle_heatmap,
            ord("+"): lambda: self._nudge_threshold(THRESHOLD_STEP),
            ord("="): lambda: self._nudge_threshold(THRESHOLD_STEP),  # + without shift
            ord("-"): lambda: self._nudge_threshold(-THRESHOLD_STEP),
        }

    def run(self) -> RunSummary:
        """Runs until the source ends, q/Esc, the window closes, or max frames.

        Raises:
            SourceOpenError: the source cannot be opened.
            SourceError: the source failed for good while running.
        """
        capture = FrameCapture(
            parse_source(self.config.source),
            opener=self._opener,
            watchdog=self.config.watchdog,
            realtime=self.config.realtime,
            frame_size=self.config.frame_size,
        )
        # Before the reader starts: a frame's timestamp (its capture time) minus this is
        # never negative (the first frames of a video file were, by a millisecond).
        self._started = time.monotonic()
        capture.start()  # an unopenable source fails here, before any window or file
        video = jsonl = display = None
        try:
            with _stop_on_sigterm(self):
                # The window first: without a display it fails before any file is made.
                display = self._display or (
                    HeadlessDisplay()
                    if self.config.headless
                    else WindowDisplay(headless_hint="pass --headless (with --save VIDEO or --jsonl FILE)")
                )
                video = (
                    AnnotatedVideo(self.config.save, capture.source_fps or 30.0) if self.config.save else None
                )
                jsonl = JsonLines(self.config.jsonl) if self.config.jsonl else None
                self._loop(capture, display, video, jsonl)
        finally:
            capture.stop()  # releases the camera, also on Ctrl-C
            for closable in (video, jsonl, display):
                if closable is not None:
                    closable.close()
        return RunSummary(
            self._frames,
            self._bad,
            capture.dropped,
            capture.reconnects,
            time.monotonic() - self._started,
            self._end or "stopped",
        )

    def _loop(self, capture: FrameCapture, display: Display, video, jsonl) -> None:
        # Headless without --save nobody sees the pixels: skip drawing (a third of
        # the loop's own time on a small model).
        draw = video is not None or not isinstance(display, HeadlessDisplay)
        while self._end is None:
            if self.paused:
                self._show(display, self._render_idle("paused"))
            else:
                frame = capture.read(timeout=0.1)
                if frame is not None:
                    image = self._process(frame, video, jsonl, draw)
                    self._show(display, image)
                elif capture.finished:
                    self._end = "source ended"
                    break
                elif capture.state is CaptureState.RECONNECTING:
                    self._smoother.reset()
                    self._show(display, self._render_idle("reconnecting"))
            self._handle_key(display.poll_key(30 if self.paused else 1))
            if self._end is None and display.closed:
                self._end = "window closed"
            if self.config.max_frames and self._frames >= self.config.max_frames and self._end is None:
                self._end = "max frames"

    def _show(self, display: Display, image: np.ndarray | None) -> None:
        if image is not None:
            self.last_rendered = image
            display.show(image)

    def _handle_key(self, key: int) -> None:
        if key == -1 and self._keys is not None:
            key = self._keys(1)
        action = self._actions.get(key)
        if action is not None:
            action()

    # -- one frame -----------------------------------------------------------------

    def _process(
        self, frame: Frame, video: AnnotatedVideo | None, jsonl: JsonLines | None, draw: bool = True
    ) -> np.ndarray | None:
        """Classifies one frame, logs it, and draws it when someone will see the pixels."""
        record = {"frame": frame.index, "timestamp": round(frame.timestamp - self._started, 6)}
        if frame.name is not None:
            record["file"] = frame.name  # an image folder's file: a line says which image it is
        image = _displayable(frame.image)
        if image is not None and self.mirror:
            image = cv2.flip(image, 1)
        try:
            if image is None:
                raise InputError(f"frame {frame.index} is not an image ({_describe(frame.image)})")
            started = time.perf_counter()
            prediction = self.engine.predict(image, top_k=self.config.top_k, heatmap=self.heatmap)
            latency_ms = (time.perf_counter() - started) * 1000.0
        except (CnnportError, cv2.error, ValueError) as exc:
            # A long-running app must survive one bad frame; it is logged and counted.
            self._bad += 1
            logger.warning("frame %d skipped: %s", frame.index, exc)
            record["error"] = str(exc)
            rendered = self._render_bad(image) if draw else None
        else:
            self._last_frame = image
            state = self._overlay(prediction, latency_ms)
            record.update(_record(prediction, latency_ms, state.decision))
            rendered = draw_overlay(image, state) if draw else None
        self._frames += 1
        if video is not None and rendered is not None:
            video.write(rendered)
        if jsonl is not None:
            jsonl.write(record)
        return rendered

    def _overlay(self, prediction: Prediction, latency_ms: float, status: str = "") -> OverlayState:
        smoothed = self._smoother.update(prediction.scores)
        return OverlayState(
            top_k=prediction.top_k,
            decision=decide(smoothed, self.engine.labels, self.threshold, multilabel=self.engine.multilabel),
            threshold=self.threshold,
            fps=self._fps.tick(),
            latency_ms=latency_ms,
            provider=self._provider,
            status=status,
            notes=["mirror"] if self.mirror else [],
            heatmap=prediction.heatmap,
            smoothing=self.config.smoothing,
        )

    def _render_idle(self, status: str) -> np.ndarray | None:
        if self._last_frame is None:
            return None
        return draw_overlay(
            self._last_frame,
            OverlayState(threshold=self.threshold, provider=self._provider, status=status),
        )

    def _render_bad(self, image: np.ndarray | None) -> np.ndarray:
        base = image if image is not None else self._last_frame
        if base is None:
            base = np.zeros((480, 640, 3), np.uint8)
        return draw_overlay(base, OverlayState(threshold=self.threshold, status="bad frame"))

    # -- keys ----------------------------------------------------------------------

    def _quit(self) -> None:
        self._end = "quit"

    def _toggle_pause(self) -> None:
        self.paused = not self.paused

    def _toggle_mirror(self) -> None:
        self.mirror = not self.mirror

    def _toggle_heatmap(self) -> None:
        if self.engine.has_class_maps:
            self.heatmap = not self.heatmap

    def _nudge_threshold(self, step: float) -> None:
        self.threshold = round(min(1.0, max(0.0, self.threshold + step)), 2)

    def _snapshot(self) -> None:
        if self._last_frame is None:
            return
        folder = Path(self.config.snapshot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"snapshot_{time.strftime('%Y%m%d-%H%M%S')}_{self._snapshots:03d}"
        self._snapshots += 1
        prediction = self.engine.predict(self._last_frame, top_k=self.config.top_k)
        if not cv2.imwrite(str(stem.with_suffix(".png")), self._last_frame):
            logger.warning("could not write snapshot %s", stem.with_suffix(".png"))
            return
        stem.with_suffix(".json").write_text(json.dumps(prediction.to_dict(), indent=2))
        logger.info("snapshot saved: %s.png (%s %.2f)", stem, prediction.label, prediction.score)


def _record(prediction: Prediction, latency_ms: float, decision: Decision | None) -> dict:
    """The JSON-lines fields of one classified frame."""
    return {
        "label": prediction.label,
        "score": round(prediction.score, 6),
        "top_k": [{"label": c.label, "score": round(c.score, 6)} for c in prediction.top_k],
        "present": [c.label for c in prediction.present],
        "smoothed": None
        if decision is None
        else {"label": decision.label, "score": round(decision.score, 6), "uncertain": decision.uncertain},
        "latency_ms": round(latency_ms, 3),
    }


def _displayable(image: object) -> np.ndarray | None:
    """``image`` as a 3-channel uint8 BGR array for drawing, or None if it is not an image."""
    if not isinstance(image, np.ndarray) or image.size == 0 or image.ndim not in (2, 3):
        return None
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        return None
    if image.dtype != np.uint8:
        if image.dtype != np.uint16:
            return None
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if image.shape[2] == 4 else image


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


class _stop_on_sigterm:  # noqa: N801 - used as a context manager like contextlib's
    """SIGTERM (a service manager stopping us) ends the loop like q, so outputs close."""

    def __init__(self, app: WebcamApp) -> None:
        self._app = app
        self._previous = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self._app._quit())

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

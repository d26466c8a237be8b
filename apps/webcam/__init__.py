"""cnnport.apps.webcam: the live classifier and dataset collection on a camera.

Imports the runtime only (numpy, onnxruntime, OpenCV), never TensorFlow.

Example:
    >>> from cnnport.runtime import Engine
    >>> from cnnport.apps.webcam import WebcamApp, WebcamConfig
    >>> engine = Engine("model.onnx", spinning=False)                  # doctest: +SKIP
    >>> WebcamApp(engine, WebcamConfig(source="0")).run()              # doctest: +SKIP
"""

from __future__ import annotations

from .app import RunSummary, WebcamApp, WebcamConfig
from .capture import CaptureState, Frame, FrameCapture, Watchdog
from .collect import CollectConfig, Collector, parse_classes
from .overlay import OverlayState, draw_counts, draw_overlay
from .smoothing import Decision, ScoreSmoother, decide
from .sources import (
    SOURCE_KINDS,
    FolderCapture,
    SourceError,
    SourceOpenError,
    SourceSpec,
    open_source,
    parse_source,
)
from .window import HeadlessDisplay, ScriptedKeys, WindowDisplay

__all__ = [
    "SOURCE_KINDS",
    "CaptureState",
    "CollectConfig",
    "Collector",
    "Decision",
    "FolderCapture",
    "Frame",
    "FrameCapture",
    "HeadlessDisplay",
    "OverlayState",
    "RunSummary",
    "ScoreSmoother",
    "ScriptedKeys",
    "SourceError",
    "SourceOpenError",
    "SourceSpec",
    "Watchdog",
    "WebcamApp",
    "WebcamConfig",
    "WindowDisplay",
    "decide",
    "draw_counts",
    "draw_overlay",
    "open_source",
    "parse_classes",
    "parse_source",
]

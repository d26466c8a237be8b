"""`cnnport webcam` and `cnnport collect`: the live classifier and dataset capture.

Both import the runtime only; `cnnport webcam model.onnx` never loads TensorFlow.

Example:
    $ cnnport webcam model.onnx --source 0
    $ cnnport webcam model.onnx --source clip.avi --headless --save out.avi --jsonl preds.jsonl
    $ cnnport collect data/ --classes cat,dog --source 0
"""

from __future__ import annotations

import argparse
import logging
import sys

from cnnport.runtime import InputError

from .command import Command, command
from .predict import add_engine_arguments, engine_from_args

logger = logging.getLogger(__name__)


def _frame_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 640x480 (width x height); received {text!r}") from None
    if width < 1 or height < 1:
        raise InputError(f"--size must be positive; received {text!r}")
    return width, height


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="0",
        help="camera index, video file, stream URL (rtsp://, http://) or folder of images",
    )
    parser.add_argument("--mirror", action="store_true", help="flip frames left-right (selfie view)")
    parser.add_argument(
        "--size", default=None, metavar="WxH", help="frame size to ask a camera for, e.g. 640x480"
    )
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=3.0,
        help="seconds without a new frame before a live source is reconnected",
    )
    parser.add_argument(
        "--reconnects",
        type=int,
        default=None,
        help="reconnect attempts before giving up (None: retry forever)",
    )


def _watchdog(args: argparse.Namespace):
    from .webcam import Watchdog

    try:
        return Watchdog(stale_after_s=args.stale_after, max_reconnects=args.reconnects)
    except ValueError as exc:
        raise InputError(f"--stale-after must be positive; received {args.stale_after}") from exc


@command
class Webcam(Command):
    name = "webcam"
    help = "classify a camera, video file, stream or image folder live, with an overlay"
    description = (
        "The live classifier. Keys: q/Esc quit, space pause, s snapshot, m mirror, +/- threshold. "
        "With --headless no window opens; write --save VIDEO and/or --jsonl FILE instead."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the .onnx model (with its embedded card)")
        _add_source_arguments(parser)
        parser.add_argument("-k", "--top-k", type=int, default=3, help="classes shown with bars")
        parser.add_argument(
            "--threshold", type=float, default=0.5, help="smoothed score below which the app says uncertain"
        )
        parser.add_argument(
            "--smoothing", type=float, default=0.4, help="weight of the newest frame in the average (1: off)"
        )
        parser.add_argument("--headless", action="store_true", help="no window (servers, CI)")
        parser.add_argument("--save", default=None, help="write the annotated video here (.avi or .mp4)")
        parser.add_argument("--jsonl", default=None, help="write one JSON line of predictions per frame here")
        parser.add_argument(
            "--realtime", action="store_true", help="play a video file at its own speed, dropping late frames"
        )
        parser.add_argument("--snapshots", default="snapshots", help="folder for images saved with the s key")
        parser.add_argument(
            "--heatmap",
            action="store_true",
            help="blend where the model looks (its class activation map) over the frame; key h toggles; "
            "--save includes it",
        )
        add_engine_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from .webcam import WebcamApp, WebcamConfig

        if args.headless and not (args.save or args.jsonl):
            logger.warning("--headless without --save or --jsonl: predictions are computed but not kept")
        config = WebcamConfig(
            source=args.source,
            top_k=args.top_k,
            threshold=args.threshold,
            smoothing=args.smoothing,
            mirror=args.mirror,
            frame_size=_frame_size(args.size),
            max_frames=args.max_frames,
            headless=args.headless,
            save=args.save,
            jsonl=args.jsonl,
            realtime=args.realtime,
            snapshot_dir=args.snapshots,
            watchdog=_watchdog(args),
            heatmap=args.heatmap,
        )
        engine = engine_from_args(args, spinning=False)  # an idle live app must not burn a core
        summary = WebcamApp(engine, config).run()
        print(
            f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} FPS), "
            f"{summary.bad_frames} bad, {summary.dropped} dropped, {summary.reconnects} reconnects; "
            f"ended: {summary.end}",
            file=sys.stderr,
        )
        return 0


@command
class Collect(Command):
    name = "collect"
    help = "capture labelled images from a camera into DATASET_DIR/<class>/ (keys 1-9)"
    description = (
        "Live preview; keys 1-9 save the current frame into that class's folder (hold for a burst), "
        "m mirror, q/Esc quit. The folder is what `cnnport train` reads."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("dataset_dir", help="dataset folder; one subfolder per class is made")
        parser.add_argument(
            "--classes", required=True, help="comma-separated class names, at most 9: cat,dog"
        )
        parser.add_argument("--format", default="jpg", choices=["jpg", "png"], help="image file format")
        _add_source_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from .webcam import CollectConfig, Collector, parse_classes

        config = CollectConfig(
            dataset_dir=args.dataset_dir,
            classes=parse_classes(args.classes),
            source=args.source,
            mirror=args.mirror,
            frame_size=_frame_size(args.size),
            max_frames=args.max_frames,
            suffix=f".{args.format}",
            watchdog=_watchdog(args),
        )
        saved = Collector(config).run()
        print("saved: " + ", ".join(f"{name} {count}" for name, count in saved.items()), file=sys.stderr)
        return 0

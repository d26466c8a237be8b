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

from ..arguments import (
    add_engine_arguments,
    add_source_arguments,
    engine_from_args,
    frame_size,
    watchdog_from_args,
)
from ..command import Command, command

logger = logging.getLogger(__name__)


@command
class Webcam(Command):
    name = "webcam"
    help = "classify a camera, video file, stream or image folder live, with an overlay"
    description = (
        "The live classifier. Keys: q/Esc quit, space pause, s snapshot, m mirror, h heatmap, +/- threshold. "
        "With --headless no window opens; write --save VIDEO and/or --jsonl FILE instead."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the .onnx model (with its embedded card)")
        add_source_arguments(parser)
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
        from ..webcam import WebcamApp, WebcamConfig

        if args.headless and not (args.save or args.jsonl):
            logger.warning("--headless without --save or --jsonl: predictions are computed but not kept")
        config = WebcamConfig(
            source=args.source,
            top_k=args.top_k,
            threshold=args.threshold,
            smoothing=args.smoothing,
            mirror=args.mirror,
            frame_size=frame_size(args.size),
            max_frames=args.max_frames,
            headless=args.headless,
            save=args.save,
            jsonl=args.jsonl,
            realtime=args.realtime,
            snapshot_dir=args.snapshots,
            watchdog=watchdog_from_args(args),
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

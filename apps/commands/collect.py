"""`cnnport collect`: capture labelled images from a camera into a dataset folder."""

from __future__ import annotations

import argparse
import sys

from ..arguments import add_source_arguments, frame_size, watchdog_from_args
from ..command import Command, command


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
        add_source_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from ..webcam import CollectConfig, Collector, parse_classes

        config = CollectConfig(
            dataset_dir=args.dataset_dir,
            classes=parse_classes(args.classes),
            source=args.source,
            mirror=args.mirror,
            frame_size=frame_size(args.size),
            max_frames=args.max_frames,
            suffix=f".{args.format}",
            watchdog=watchdog_from_args(args),
        )
        saved = Collector(config).run()
        print("saved: " + ", ".join(f"{name} {count}" for name, count in saved.items()), file=sys.stderr)
        return 0

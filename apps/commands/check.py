"""`cnnport check`: the same images through several runtime backends, compared pairwise."""

from __future__ import annotations

import argparse
import json
import sys

from cnnport.export.crosscheck import DEFAULT_RUNTIMES
from cnnport.runtime import InputError, require
from cnnport.runtime.files import atomic_write_text, require_writable

from ..arguments import add_custom_objects_argument
from ..command import Command, command


@command
class Check(Command):
    name = "check"
    help = (
        "parity of an .onnx across runtimes (Keras, ORT CPU/CUDA, the ORT format, Node.js, the browser, "
        "OpenCV DNN, OpenVINO) on the same images"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the .onnx (with its card)")
        parser.add_argument(
            "--keras",
            default=None,
            help="the .keras (or SavedModel folder) it came from (for the keras runtime)",
        )
        add_custom_objects_argument(parser)
        parser.add_argument("--data", default=None, help="images: folder of class subfolders or .npz (x, y)")
        parser.add_argument(
            "--runtimes",
            default=",".join(DEFAULT_RUNTIMES),
            help="comma list: keras, or a backend (engine, ort, ort-format, opencv, openvino, ...) with an "
            "optional -PROVIDER (cpu, cuda, tensorrt; openvino, openvino-bf16 for the engine), e.g. ort-cpu,ort-cuda,"
            "engine-openvino; one that cannot run here is "
            "listed as unsupported with the reason",
        )
        parser.add_argument("--samples", type=int, default=64, help="random images when no --data is given")
        parser.add_argument(
            "--json",
            default=None,
            metavar="FILE|-",
            help="also write the result as JSON to FILE; - writes it to standard output (the table then "
            "goes to standard error)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.export.backends import runtime_target

        runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
        if not runtimes:
            raise InputError(f"--runtimes needs at least one name, e.g. {','.join(DEFAULT_RUNTIMES)}")
        for name in runtimes:
            runtime_target(name)
        if args.samples < 1 and not args.data:
            raise InputError(f"--samples must be at least 1; received {args.samples}")
        if args.json and args.json != "-":  # before every runtime has run, not after
            require_writable(args.json, "--json")
        require("onnx", extra="train", purpose="cnnport check")
        if "keras" in runtimes and args.keras:
            require("tensorflow", extra="train", purpose="cnnport check --keras")
        from cnnport.export.crosscheck import cross_check, format_matrix
        from cnnport.export.images import frames_from_images, held_out_images
        from cnnport.export.parity import random_images
        from cnnport.runtime import read_card

        card = read_card(args.model)
        if card is None:
            raise InputError(f"{args.model!r} has no cnnport card; export it with `cnnport export` first")
        if args.data:
            data = held_out_images(args.data, card)
            images, labels = data.x, data.y if data.labelled else None
        else:
            images, labels = random_images(card.input.shape, args.samples, 0), None
        if card.frame is not None:  # a frame model: every runtime gets the same camera-sized frames
            images = frames_from_images(images, card.input.color, card.frame.color, 480, 640)
        result = cross_check(
            args.model, card, images, labels, runtimes, args.keras, tuple(args.custom_objects)
        )
        print(format_matrix(result), file=sys.stderr if args.json == "-" else sys.stdout)
        body = {
            "model": args.model,
            "samples": result.samples,
            "runtimes": result.runtimes,
            # The document keys a pair "a|b"; in Python it is a tuple.
            "pairs": {f"{a}|{b}": r.to_dict() for (a, b), r in result.pairs.items()},
        }
        if args.json == "-":
            json.dump(body, sys.stdout, indent=2)
            print()
        elif args.json:
            atomic_write_text(args.json, json.dumps(body, indent=2) + "\n")
        return 0

"""`cnnport export` and `cnnport check`: Keras -> ONNX with the parity gate, and cross-runtime parity.

TensorFlow, tf2onnx and onnx are imported inside ``run`` only: building the parser
must stay as light as `cnnport predict`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cnnport.runtime import InputError, require

from .command import Command, command

_RUNTIME_NAMES = ("keras", "ort-cpu", "ort-cuda", "opencv")


def _require_export_stack(purpose: str) -> None:
    for module in ("tensorflow", "keras", "tf2onnx", "onnx"):
        require(module, extra="train", purpose=purpose)


@command
class Export(Command):
    name = "export"
    help = "run directory or .keras -> .onnx with its card, graph checks and the parity gate"
    description = (
        "Converts a Keras image classifier to ONNX (tf2onnx), checks the graph, compares it with "
        "Keras on held-out and random images, and writes MODEL.onnx plus MODEL.parity.json. "
        "Exit status 1 when the gate or a variant budget fails."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "source", help="a run directory (model.keras + card.json + data/) or a .keras file"
        )
        parser.add_argument(
            "-o", "--output", default=None, help="the .onnx to write (default: SOURCE/model.onnx)"
        )
        parser.add_argument("--opset", type=int, default=17, help="ONNX opset (13..18)")
        parser.add_argument(
            "--input-dtype",
            choices=["uint8", "float32"],
            default="uint8",
            help="dtype of the raw-pixel input",
        )
        parser.add_argument("--tolerance", type=float, default=1e-4, help="max fp32 probability difference")
        parser.add_argument(
            "--labels", default=None, help="class names, one a line (for a .keras without card)"
        )
        parser.add_argument(
            "--data", default=None, help="held-out images: a folder of class subfolders or .npz (x, y)"
        )
        parser.add_argument(
            "--simplify", action="store_true", help="simplify with onnxslim (parity checked after)"
        )
        parser.add_argument(
            "--fp16", action="store_true", help="also write MODEL.fp16.onnx (budget 0.2 points)"
        )
        parser.add_argument("--int8", action="store_true", help="also write MODEL.int8.onnx (budget 1 point)")
        parser.add_argument(
            "--keep-failed", action="store_true", help="write the .onnx even when the gate fails"
        )
        parser.add_argument(
            "--parity-limit", type=int, default=None, help="use at most this many held-out images"
        )

    def run(self, args: argparse.Namespace) -> int:
        _require_export_stack("cnnport export")
        from cnnport.export import ExportConfig, export_model, format_table, load_source, report_path

        config = ExportConfig(
            opset=args.opset,
            input_dtype=args.input_dtype,
            tolerance=args.tolerance,
            simplify=args.simplify,
            fp16=args.fp16,
            int8=args.int8,
            keep_failed=args.keep_failed,
            parity_limit=args.parity_limit,
        )
        source = load_source(args.source, args.labels)
        if args.data:
            source.test = _held_out(args.data, source.card)
        default = Path(args.source) / "model.onnx" if Path(args.source).is_dir() else Path(args.source)
        output = Path(args.output) if args.output else default.with_suffix(".onnx")
        result = export_model(source, output, config)
        for kind, path in result.paths.items():
            print(f"{kind}: {path}  (report: {report_path(path)})")
            print(format_table(result.reports[kind]))
        return 0


def _held_out(data: str, card):
    """Held-out images at model input size from an .npz (x, y) or a folder of class subfolders."""
    from cnnport.export import LabelledImages

    path = Path(data)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise InputError(f"{data!r} has no array x (images at model input size)")
            x = arrays["x"]
            y = arrays["y"].astype(np.int64) if "y" in arrays else np.full(len(x), -1, np.int64)
        return LabelledImages(x, y)
    if not path.is_dir():
        raise InputError(f"--data must be an .npz or a folder of class subfolders; received {data!r}")
    from cnnport.runtime import preprocess

    from .predict import iter_images

    images, labels = [], []
    for label_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        index = card.labels.index(label_dir.name) if label_dir.name in card.labels else -1
        for image in iter_images([str(label_dir)], recursive=True):
            images.append(preprocess(image, card.input, card.resize)[0])
            labels.append(index)
    if not images:
        raise InputError(f"folder {data!r} holds no class subfolders with images")
    return LabelledImages(np.stack(images).astype(np.uint8), np.array(labels, np.int64))


@command
class Check(Command):
    name = "check"
    help = "parity of an .onnx across runtimes (Keras, ORT CPU, ORT CUDA, OpenCV DNN) on the same images"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the .onnx (with its card)")
        parser.add_argument("--keras", default=None, help="the .keras it came from (for the keras runtime)")
        parser.add_argument("--data", default=None, help="images: folder of class subfolders or .npz (x, y)")
        parser.add_argument(
            "--runtimes", default=",".join(_RUNTIME_NAMES), help=f"comma list of {', '.join(_RUNTIME_NAMES)}"
        )
        parser.add_argument("--samples", type=int, default=64, help="random images when no --data is given")
        parser.add_argument("--json", default=None, help="also write the result as JSON to this file")

    def run(self, args: argparse.Namespace) -> int:
        runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
        unknown = [r for r in runtimes if r not in _RUNTIME_NAMES]
        if unknown or not runtimes:
            raise InputError(f"unknown runtime(s) {unknown}; accepted: {', '.join(_RUNTIME_NAMES)}")
        require("onnx", extra="train", purpose="cnnport check")
        if "keras" in runtimes and args.keras:
            require("tensorflow", extra="train", purpose="cnnport check --keras")
        from cnnport.export.crosscheck import cross_check, format_matrix
        from cnnport.export.parity import random_images
        from cnnport.runtime import read_card

        card = read_card(args.model)
        if card is None:
            raise InputError(f"{args.model!r} has no cnnport card; export it with `cnnport export` first")
        if args.data:
            data = _held_out(args.data, card)
            images, labels = data.x, data.y if data.labelled else None
        else:
            images, labels = random_images(card.input.shape, args.samples, 0), None
        result = cross_check(args.model, card, images, labels, runtimes, args.keras)
        print(format_matrix(result))
        body = {
            "model": args.model,
            "samples": result["samples"],
            "runtimes": result["runtimes"],
            "pairs": {k: r.to_dict() for k, r in result["pairs"].items()},
        }
        if args.json:
            from cnnport.runtime.files import atomic_write_text

            atomic_write_text(args.json, json.dumps(body, indent=2) + "\n")
        else:
            json.dump(body, sys.stdout)
            print()
        return 0

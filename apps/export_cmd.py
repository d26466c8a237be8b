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

from cnnport.export.crosscheck import DEFAULT_RUNTIMES
from cnnport.export.heads import HEAD_CHOICES  # numpy only: the parser stays light
from cnnport.export.variants import VARIANTS
from cnnport.runtime import InputError, require

from .command import Command, command
from .predict import parse_size


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
        for spec in (VARIANTS.get(name) for name in VARIANTS if name != "fp32"):
            # Each variant flag adds its name to args.variants, in the order given.
            parser.add_argument(
                f"--{spec.name}",
                dest="variants",
                action="append_const",
                const=spec.name,
                help=f"also write MODEL{spec.suffix}.onnx (budget {spec.budget:g} points of top-1 accuracy)",
            )
        parser.add_argument(
            "--keep-failed", action="store_true", help="write the .onnx even when the gate fails"
        )
        parser.add_argument(
            "--parity-limit", type=int, default=None, help="use at most this many held-out images"
        )
        parser.add_argument(
            "--no-cam",
            dest="cam",
            action="store_false",
            help="leave out the class_maps output (class activation maps) that models ending in global "
            "average pooling + Dense get",
        )
        parser.add_argument(
            "--calibration",
            default=None,
            metavar="DIR|FILE.npz",
            help="int8 calibration images (a folder, flat or of class subfolders, or .npz with x); "
            "default: the run directory's data/calibration.npz",
        )
        heads = parser.add_argument_group("the model's head and input (for models made outside cnnport)")
        heads.add_argument(
            "--head",
            choices=HEAD_CHOICES,
            default="auto",
            help="what the model ends in (default: found in its graph): softmax probabilities, logits of "
            "a softmax classifier, binary (one sigmoid or logit unit), multilabel (independent sigmoids)",
        )
        heads.add_argument(
            "--threshold", type=float, default=0.5, help="multilabel: a class is present at >= this"
        )
        heads.add_argument(
            "--input-size", default=None, metavar="HxW", help="fix the size of a model that takes any size"
        )
        heads.add_argument(
            "--input-range",
            default=None,
            metavar="LOW,HIGH",
            help="the model was trained on pixels scaled to LOW..HIGH outside it (e.g. 0,1; write "
            "--input-range=-1,1 for a negative LOW): put that scaling into the graph",
        )
        heads.add_argument(
            "--mean", default=None, metavar="M[,M,M]", help="subtract per channel, after --input-range"
        )
        heads.add_argument("--std", default=None, metavar="S[,S,S]", help="divide per channel, after --mean")

    def run(self, args: argparse.Namespace) -> int:
        _require_export_stack("cnnport export")
        from cnnport.export import ExportConfig, export_model, format_table, load_source, report_path

        config = ExportConfig(
            opset=args.opset,
            input_dtype=args.input_dtype,
            tolerance=args.tolerance,
            simplify=args.simplify,
            variants=tuple(dict.fromkeys(args.variants or ())),
            keep_failed=args.keep_failed,
            parity_limit=args.parity_limit,
            head=args.head,
            threshold=args.threshold,
            input_range=_floats(args.input_range, "--input-range", 2),
            mean=_floats(args.mean, "--mean"),
            std=_floats(args.std, "--std"),
            cam=args.cam,
        )
        size = parse_size(args.input_size) if args.input_size else None
        source = load_source(args.source, args.labels, input_size=size)
        if args.data:
            source.test = _held_out(args.data, source.card)
        if args.calibration:
            source.calibration = _calibration(args.calibration, source.card)
        default = Path(args.source) / "model.onnx" if Path(args.source).is_dir() else Path(args.source)
        output = Path(args.output) if args.output else default.with_suffix(".onnx")
        result = export_model(source, output, config)
        output_spec = next(iter(result.cards.values())).output
        print(
            f"class_maps: {'yes (output 2)' if output_spec.class_maps else 'none'}"
            + (f" — {output_spec.class_maps_note}" if output_spec.class_maps_note else "")
        )
        for kind, path in result.paths.items():
            print(f"{kind}: {path}  (report: {report_path(path)})")
            print(format_table(result.reports[kind]))
        return 0


def _floats(text: str | None, flag: str, count: int | None = None) -> tuple[float, ...] | None:
    """``"0,1"`` -> (0.0, 1.0); an InputError naming ``flag`` for anything else."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        shape = "LOW,HIGH" if count == 2 else "one number, or one per channel, comma-separated"
        raise InputError(f"{flag} must be {shape}; received {text!r}")
    return values


def _folder_images(path: Path, card, *, labelled: bool):
    """Images of a folder at model input size, and their class index by subfolder name (-1: none)."""
    from cnnport.runtime import preprocess

    from .predict import iter_images

    images, labels = [], []
    folders = sorted(p for p in path.iterdir() if p.is_dir()) if labelled else [path]
    for folder in folders:
        index = card.labels.index(folder.name) if labelled and folder.name in card.labels else -1
        for image in iter_images([str(folder)], recursive=True):
            images.append(preprocess(image, card.input, card.resize)[0])
            labels.append(index)
    return images, labels


def _calibration(data: str, card) -> np.ndarray:
    """int8 calibration images from an .npz (x) or a folder of images (flat or class subfolders)."""
    path = Path(data)
    if path.suffix == ".npz" and path.is_file():
        return _npz_images(path, card).x
    if not path.is_dir():
        raise InputError(f"--calibration must be a folder of images or an .npz holding x; received {data!r}")
    images, _ = _folder_images(path, card, labelled=False)
    return np.stack(images).astype(np.uint8)


def _npz_images(path: Path, card):
    from cnnport.export import LabelledImages

    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise InputError(f"{str(path)!r} has no array x (images at model input size)")
            x = arrays["x"]
            y = arrays["y"].astype(np.int64) if "y" in arrays else np.full(len(x), -1, np.int64)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from None
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != card.input.shape:
        raise InputError(
            f"{str(path)!r} holds x of {x.dtype} {x.shape}; accepted: uint8 (N, {card.input.height}, "
            f"{card.input.width}, {card.input.channels}), images at the model's input size"
        )
    return LabelledImages(x, y)


def _held_out(data: str, card):
    """Held-out images at model input size from an .npz (x, y) or a folder of class subfolders."""
    from cnnport.export import LabelledImages

    path = Path(data)
    if path.suffix == ".npz" and path.is_file():
        return _npz_images(path, card)
    if not path.is_dir():
        raise InputError(f"--data must be an .npz or a folder of class subfolders; received {data!r}")
    images, labels = _folder_images(path, card, labelled=True)
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
            "--runtimes",
            default=",".join(DEFAULT_RUNTIMES),
            help="comma list: keras, or a backend (engine, ort, opencv, ...) with an optional -PROVIDER "
            "(cpu, cuda, tensorrt), e.g. ort-cpu,ort-cuda",
        )
        parser.add_argument("--samples", type=int, default=64, help="random images when no --data is given")
        parser.add_argument("--json", default=None, help="also write the result as JSON to this file")

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.export.backends import runtime_target

        runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
        if not runtimes:
            raise InputError(f"--runtimes needs at least one name, e.g. {','.join(DEFAULT_RUNTIMES)}")
        for name in runtimes:
            runtime_target(name)
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
            "samples": result.samples,
            "runtimes": result.runtimes,
            # The document keys a pair "a|b"; in Python it is a tuple.
            "pairs": {f"{a}|{b}": r.to_dict() for (a, b), r in result.pairs.items()},
        }
        if args.json:
            from cnnport.runtime.files import atomic_write_text

            atomic_write_text(args.json, json.dumps(body, indent=2) + "\n")
        else:
            json.dump(body, sys.stdout)
            print()
        return 0

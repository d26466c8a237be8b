"""`cnnport export`: Keras -> ONNX with the card, the graph checks and the parity gate.

TensorFlow, tf2onnx and onnx are imported inside ``run`` only: building the parser
must stay as light as `cnnport predict`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnport.export.deploy import DEPLOY_TARGETS  # numpy only: the parser stays light
from cnnport.export.heads import HEAD_CHOICES, PREPROCESS_MODES
from cnnport.export.variants import VARIANTS
from cnnport.runtime import FRAME_COLORS

from ..arguments import add_custom_objects_argument, parse_floats, parse_size, require_export_stack
from ..command import Command, command


@command
class Export(Command):
    name = "export"
    help = "run directory, .keras or SavedModel -> .onnx with its card, graph checks and the parity gate"
    description = (
        "Converts a Keras image classifier (a run directory, a .keras file, or a TensorFlow SavedModel "
        "folder as model.export(DIR) writes it) to ONNX (tf2onnx), checks the graph, compares it with "
        "Keras on held-out and random images, and writes MODEL.onnx plus MODEL.parity.json. "
        "Exit status 1 when the gate or a variant budget fails."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "source",
            help="a run directory (model.keras + card.json + data/), a .keras file, or a TensorFlow "
            "SavedModel folder (what model.export(DIR) writes; needs none of the model's Python code)",
        )
        add_custom_objects_argument(parser)
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
        targets = parser.add_argument_group("deployment targets (each written from every gated model)")
        for spec in (DEPLOY_TARGETS.get(name) for name in DEPLOY_TARGETS):
            targets.add_argument(
                f"--{spec.name}", dest="targets", action="append_const", const=spec.name, help=spec.help
            )
        targets.add_argument(
            "--triton-repository",
            default=None,
            metavar="DIR",
            help="the Triton model repository --triton writes into (default: triton/ beside the .onnx)",
        )
        targets.add_argument(
            "--triton-max-batch",
            type=int,
            default=32,
            metavar="N",
            help="max_batch_size of the Triton config: the largest batch its dynamic batcher forms",
        )
        parser.add_argument(
            "--frame",
            dest="frames",
            action="append",
            type=str.upper,
            choices=FRAME_COLORS,
            metavar="COLOR",
            help="also write MODEL.frame-COLOR.onnx, which takes the decoded camera frame itself (uint8, "
            "any size) in this channel order and does the card's color conversion, crop and resize in "
            f"the graph: {', '.join(FRAME_COLORS)} (a browser canvas gives RGBA, OpenCV BGR); repeatable",
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
        heads.add_argument(
            "--preprocess",
            choices=list(PREPROCESS_MODES),
            default=None,
            help="the model expects keras.applications' preprocess_input(x, mode=...) outside it: put that "
            "into the graph (caffe: RGB->BGR and the ImageNet means, as ResNet50 and VGG16; tf: -1..1; "
            "torch: 0..1 and the ImageNet mean and std, as DenseNet); instead of --input-range/--mean/--std",
        )

    def run(self, args: argparse.Namespace) -> int:
        require_export_stack("cnnport export")
        from cnnport.export import (
            ExportConfig,
            check_output,
            export_model,
            format_table,
            load_source,
            report_path,
        )
        from cnnport.export.images import calibration_images, held_out_images
        from cnnport.runtime import card_path

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
            input_range=parse_floats(args.input_range, "--input-range", 2),
            mean=parse_floats(args.mean, "--mean"),
            std=parse_floats(args.std, "--std"),
            cam=args.cam,
            frames=tuple(dict.fromkeys(args.frames or ())),
            preprocess=args.preprocess,
            targets=tuple(dict.fromkeys(args.targets or ())),
            triton_repository=args.triton_repository,
            triton_max_batch_size=args.triton_max_batch,
        )
        size = parse_size(args.input_size) if args.input_size else None
        default = Path(args.source) / "model.onnx" if Path(args.source).is_dir() else Path(args.source)
        output = check_output(Path(args.output) if args.output else default.with_suffix(".onnx"), config)
        source = load_source(args.source, args.labels, input_size=size, custom_objects=args.custom_objects)
        if args.data:
            source.test = held_out_images(args.data, source.card)
        if args.calibration:
            source.calibration = calibration_images(args.calibration, source.card)
        result = export_model(source, output, config)
        output_spec = next(iter(result.cards.values())).output
        print(
            f"class_maps: {'yes (output 2)' if output_spec.class_maps else 'none'}"
            + (f" — {output_spec.class_maps_note}" if output_spec.class_maps_note else "")
        )
        for kind, path in result.paths.items():
            print(f"{kind}: {path}  (report: {report_path(path)}, card: {card_path(path)})")
            print(format_table(result.reports[kind]))
        for done in result.deployed:
            if not done.reports:
                print(f"{done.kind}: {', '.join(str(f) for f in done.files)}")
        return 0

"""`cnnport explain`: what a Keras model looks at on given images, as PNG files and one HTML page.

TensorFlow is imported inside ``run`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnport.runtime import InputError, find_images, require

from ..arguments import add_custom_objects_argument, parse_size
from ..command import Command, command


@command
class Explain(Command):
    name = "explain"
    help = (
        "what a Keras model looks at: feature maps stage by stage, first-layer filters, Grad-CAM (PNG + HTML)"
    )
    description = (
        "For each image: the walk-through (the input, then every convolution, activation and pooling "
        "stage with its first feature maps, captioned with kind, filters x kernel, stride, padding and "
        "output shape), the first convolution's filters, and Grad-CAM for the predicted class (and "
        "--class), blended over the image. Writes PNG files and OUT/explain.html."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", help="a run directory or a .keras file")
        add_custom_objects_argument(parser)
        parser.add_argument("images", nargs="+", help="image files and/or folders of images")
        parser.add_argument("--out", default="explain", help="folder for the PNG files and explain.html")
        parser.add_argument(
            "--class", dest="class_label", default=None, help="also show Grad-CAM for this class label"
        )
        parser.add_argument("--maps", type=int, default=8, help="feature maps shown per stage")
        parser.add_argument(
            "--labels", default=None, help="class names, one a line (for a .keras without card)"
        )
        parser.add_argument(
            "--input-size", default=None, metavar="HxW", help="for a model that takes any size"
        )
        parser.add_argument(
            "--input-range",
            default=None,
            metavar="LOW,HIGH",
            help="the model was trained on pixels scaled to LOW..HIGH outside it (as in cnnport export)",
        )

    def run(self, args: argparse.Namespace) -> int:
        if args.maps < 1:
            raise InputError(f"--maps must be at least 1; received {args.maps}")
        paths = list(find_images(args.images, recursive=False))
        require("tensorflow", extra="train", purpose="cnnport explain")
        from cnnport.explain import explain_images, find_feature_map
        from cnnport.export import load_source
        from cnnport.export.heads import InputScaling
        from cnnport.runtime import preprocess
        from cnnport.runtime.files import require_writable

        from ..arguments import parse_floats

        require_writable(args.out, "--out", folder=True)  # before the model loads
        size = parse_size(args.input_size) if args.input_size else None
        source = load_source(args.source, args.labels, input_size=size, custom_objects=args.custom_objects)
        card = source.card
        if find_feature_map(source.model) is None:
            raise InputError(
                f"cannot explain {args.source!r}: Grad-CAM needs a convolutional feature map (N, h, w, C) "
                "in the model's Keras graph before its output, and it has none (a subclassed Model or a "
                "SavedModel is one opaque call; a transformer has no 4-D map); accepted: a functional or "
                "Sequential CNN, custom layers included (--custom-objects)"
            )
        class_index = None
        if args.class_label is not None:
            if args.class_label not in card.labels:
                raise InputError(
                    f"--class {args.class_label!r} is not a label of this model; accepted: {', '.join(card.labels)}"
                )
            class_index = card.labels.index(args.class_label)
        value_range = parse_floats(args.input_range, "--input-range", 2)
        scaling = InputScaling(range=value_range) if value_range else InputScaling()
        images = [(str(path), preprocess(str(path), card.input, card.resize)[0]) for path in paths]
        page = explain_images(
            source.model,
            card,
            images,
            Path(args.out),
            class_index=class_index,
            maps=args.maps,
            scale=scaling.apply,
        )
        print(f"wrote {page} ({len(images)} image(s))")
        return 0

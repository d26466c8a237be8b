"""`cnnport predict`: classify image files or folders with an exported model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnport.runtime import Engine, ImageDecodeError, InputError, find_images
from cnnport.runtime.files import require_writable

from ..arguments import add_engine_arguments, engine_from_args
from ..command import Command, command


@command
class Predict(Command):
    name = "predict"
    help = (
        "classify image files or folders; prints a table, or JSON lines with --json, and the "
        "accuracy where folders are named after the classes"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the .onnx model (with its embedded card)")
        parser.add_argument("images", nargs="+", help="image files and/or folders of images")
        parser.add_argument(
            "-k", "--top-k", type=int, default=3, help="how many best classes to show per image"
        )
        parser.add_argument(
            "--json", action="store_true", help="write one JSON object per image instead of a table"
        )
        parser.add_argument(
            "-r", "--recursive", action="store_true", help="also look in subfolders of folders"
        )
        parser.add_argument("--batch-size", type=int, default=32, help="images sent to the model at once")
        parser.add_argument(
            "--heatmap",
            default=None,
            metavar="DIR",
            help="also write each image with where the model looks blended over it into DIR",
        )
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="multi-label models: a class is present at >= this (default: the card's, 0.5)",
        )
        add_engine_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.top_k < 1 or args.batch_size < 1:
            raise InputError("--top-k and --batch-size must be at least 1")
        if args.threshold is not None and not 0 < args.threshold < 1:
            raise InputError(f"--threshold must be between 0 and 1; received {args.threshold}")
        engine = engine_from_args(args)
        paths = list(find_images(args.images, args.recursive))
        if args.heatmap:  # before the table's header: a refusal is the only output
            engine.require_class_maps("--heatmap")
            require_writable(args.heatmap, "--heatmap", folder=True)
        failures = 0
        if not args.json:
            what = f"present (>= {args.threshold or engine.threshold:g})" if engine.multilabel else "label"
            print(f"{'image':<40} {what:<16} {'score':>7}  top-{args.top_k}")
        tally = _Tally(engine)
        if args.heatmap:
            return _write_heatmaps(engine, paths, Path(args.heatmap), args, tally)
        for start in range(0, len(paths), args.batch_size):
            batch = paths[start : start + args.batch_size]
            for path, result in self._classify(engine, batch, args.top_k, args.threshold):
                failures += isinstance(result, str)
                _emit(path, result, args.json, engine.multilabel)
                tally.add(path, result)
        tally.report(sys.stderr if args.json else sys.stdout)
        if failures:
            print(f"error: {failures} of {len(paths)} image(s) could not be read", file=sys.stderr)
        return 1 if failures else 0

    @staticmethod
    def _classify(engine: Engine, paths: list[Path], top_k: int, threshold: float | None = None):
        """Pairs of (path, Prediction) or (path, error text) for one batch."""
        import numpy as np

        from cnnport.runtime.preprocess import decode_image

        images, ok = [], []
        results: dict[Path, object] = {}
        for path in paths:
            try:
                # A frame model gets the decoded image itself; a tensor model's batch holds
                # only model-size tensors (a batch of full photos would hold gigabytes).
                images.append(decode_image(path) if engine.frame is not None else engine.preprocess(path)[0])
                ok.append(path)
            except ImageDecodeError as exc:
                results[path] = str(exc)
        if ok:
            if engine.frame is not None:
                predictions = engine.predict(images, top_k=top_k, threshold=threshold)
            else:
                predictions = engine.predict_tensor(np.stack(images), top_k=top_k, threshold=threshold)
            results.update(zip(ok, predictions, strict=True))
        return [(path, results[path]) for path in paths]


class _Tally:
    """Accuracy over the images whose folder is named after one of the model's classes
    (a labelled folder such as a validation split, read with -r), per class too. Not for
    multi-label models, whose folders cannot name every class present."""

    def __init__(self, engine: Engine) -> None:
        labels = () if engine.multilabel else engine.labels
        self.counts = {label: [0, 0] for label in labels}  # right, seen

    def add(self, path: Path, result: object) -> None:
        truth = path.parent.name
        if truth in self.counts and not isinstance(result, str):
            self.counts[truth][0] += result.label == truth
            self.counts[truth][1] += 1

    def report(self, stream) -> None:
        seen = {label: c for label, c in self.counts.items() if c[1]}
        if not seen:
            return
        right, total = sum(c[0] for c in seen.values()), sum(c[1] for c in seen.values())
        classes = ", ".join(f"{label} {c[0]}/{c[1]}" for label, c in seen.items())
        print(
            f"accuracy: {right} of {total} ({right / total:.1%}) of the images in folders named after "
            f"a class: {classes}",
            file=stream,
        )


def _write_heatmaps(
    engine: Engine, paths: list[Path], folder: Path, args: argparse.Namespace, tally: _Tally
) -> int:
    """Classifies each image with its heatmap and writes the blended overlay as DIR/NAME.png."""
    import cv2

    from cnnport.runtime.files import atomic_path
    from cnnport.runtime.heatmap import blend_heatmap
    from cnnport.runtime.preprocess import decode_image

    folder.mkdir(parents=True, exist_ok=True)  # checked writable before the table's header
    failures = 0
    for index, path in enumerate(paths):
        try:
            image = decode_image(path)
        except ImageDecodeError as exc:
            failures += 1
            _emit(path, str(exc), args.json, engine.multilabel)
            continue
        prediction = engine.predict(image, top_k=args.top_k, threshold=args.threshold, heatmap=True)
        target = folder / f"{index:04d}_{path.stem}.png"
        with atomic_path(target) as tmp:  # the temporary name keeps .png for OpenCV
            if not cv2.imwrite(str(tmp), blend_heatmap(image, prediction.heatmap)):
                raise InputError(f"cannot write {str(target)!r}")
        _emit(path, prediction, args.json, engine.multilabel)
        tally.add(path, prediction)
    tally.report(sys.stderr if args.json else sys.stdout)
    if failures:
        print(f"error: {failures} of {len(paths)} image(s) could not be read", file=sys.stderr)
    return 1 if failures else 0


def _emit(path: Path, result: object, as_json: bool, multilabel: bool = False) -> None:
    if as_json:
        record = (
            {"path": str(path), "error": result}
            if isinstance(result, str)
            else {"path": str(path), **result.to_dict()}
        )
        print(json.dumps(record))
    elif isinstance(result, str):
        print(f"{path!s:<40} error: {result}")
    else:
        others = ", ".join(f"{c.label} {c.score:.3f}" for c in result.top_k)
        label = ",".join(c.label for c in result.present) or "-" if multilabel else result.label
        print(f"{path!s:<40} {label:<16} {result.score:>7.3f}  {others}")

"""`cnnport train`: flags generated from TrainConfig, so the CLI and the config agree."""

from __future__ import annotations

import argparse
import logging
import sys

from cnnport.runtime import CnnportError

from ..command import Command, command

logger = logging.getLogger("cnnport")


def _flag_type(annotation: str):
    text = str(annotation)
    if "bool" in text:
        return "bool"
    if "float" in text:
        return float
    if "int" in text:
        return int
    return str


# The run directory is -o, as export's and web's output.
SHORT_FLAGS = {"out": ["-o"]}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    # cnnport.train.config imports no TensorFlow, so `cnnport --help` stays fast.
    from cnnport.train.config import TrainConfig

    for name, annotation, default, help_text in TrainConfig.cli_fields():
        flags = [*SHORT_FLAGS.get(name, []), "--" + name.replace("_", "-")]
        kind = _flag_type(annotation)
        if kind == "bool":
            parser.add_argument(
                *flags, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        else:
            parser.add_argument(*flags, type=kind, default=default, help=help_text)


@command
class Train(Command):
    name = "train"
    help = "train a registered CNN architecture on a data set into a run directory"
    description = (
        "Train a classifier. --data is digits (offline, default), mnist, fashion_mnist, cifar10 "
        "(need internet once), a folder of class subfolders, or a folder of split folders (train/ "
        "with optional val/ or validation/ and test/) of class subfolders. Writes runs/NAME/ with "
        "model.keras, card.json, config.json, curves, confusion matrix and metrics."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_config_flags(parser)
        parser.add_argument(
            "--list-models", action="store_true", help="list the registered architectures and exit"
        )

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.runtime import require
        from cnnport.train.architectures import ARCHITECTURES  # no TensorFlow at import
        from cnnport.train.config import TrainConfig

        if args.list_models:
            for name in ARCHITECTURES:
                arch = ARCHITECTURES.get(name)
                kind = "  (keras.applications backbone)" if arch.pretrained else ""
                print(f"{name:<20} {arch.size}x{arch.size} {arch.color}{kind}")
            return 0
        # Bad flags and unknown names fail here, before the slow TensorFlow import.
        ARCHITECTURES.get(args.model)
        config = TrainConfig(**{name: getattr(args, name) for name, *_ in TrainConfig.cli_fields()})
        require("tensorflow", purpose="cnnport train")
        from cnnport.train import fit

        try:
            run = fit(config)
        except KeyboardInterrupt:
            _resume_hint(config)
            raise
        if run.role.is_chief:  # the other workers of a multi-worker run write nothing
            _write_report(run)
        _summary(run)
        return 1 if run.stopped or (run.at_chance and not config.keep_at_chance) else 0


def _resume_hint(config) -> None:
    """After Ctrl-C: how to go on, where an epoch was saved to go on from."""
    checkpoints = config.run_dir / "checkpoints"
    if any(checkpoints.glob("backup-*")) and (config.run_dir / "config.json").exists():
        print(
            f"the run is kept in {config.run_dir}: continue it from its last finished epoch with\n"
            f"  cnnport train --out {config.run_dir} --resume",
            file=sys.stderr,
        )


def _write_report(run) -> None:
    """report.html beside the run's other reports (its figures are the run's own). The run
    is complete without it: a report that cannot be made is a warning saying why."""
    from cnnport.explain import report_for_run

    try:
        report_for_run(run.directory)
    except (OSError, ValueError, CnnportError) as exc:
        logger.warning("report.html was not written: %s: %s", type(exc).__name__, exc)


def _summary(run) -> None:
    if not run.role.is_chief:
        # Its weights were the chief's at every step; the chief alone writes the run.
        print(f"worker {run.role.worker} of {run.role.workers}: done in {run.seconds:.1f} s; "
              f"the chief (worker 0) writes the run to {run.directory}")  # fmt: skip
        if run.stopped:
            print(f"error: {run.stopped}", file=sys.stderr)
        return
    m = run.metrics
    lines = [
        "",
        f"run: {run.directory}",
        f"  test accuracy {m['test_accuracy']:.4f} on {m['test_samples']} images; "
        f"validation {m['val_accuracy']:.4f}; {m['epochs_run']} epochs"
        + (f", {run.seconds:.1f} s in this resumed part" if run.config.resume else f" in {run.seconds:.1f} s")
        + (f" on {run.replicas} replicas" if run.replicas > 1 else ""),
        f"  model:   {run.model_path}",
        f"  card:    {run.directory / 'card.json'}",
        f"  report:  {run.directory / 'report.html'} (curves, confusion matrix, per-class metrics, "
        "misclassified images, filters, Grad-CAM)",
        "  also:    curves.png, confusion.png, metrics.json, history.csv, logs/ (TensorBoard)",
    ]
    if run.skipped:
        lines.append(
            f"  skipped: {len(run.skipped)} file(s) or folder(s) not used, listed in {run.directory / 'skipped.txt'}"
        )
    lines.append(f"  next:    cnnport export {run.directory}")
    print("\n".join(lines))
    if run.stopped:
        print(f"error: {run.stopped}", file=sys.stderr)
    if run.overfitting:
        print(f"warning: {run.overfitting}", file=sys.stderr)
    if run.at_chance:
        kept = "warning" if run.config.keep_at_chance else "error"
        print(f"{kept}: {run.at_chance}", file=sys.stderr)

"""`cnnport bench`: latency and throughput per variant, provider and batch size, side by side.

Example:
    $ cnnport bench digits.onnx --keras runs/digits/model.keras --batch-sizes 1,32 --json bench.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnport.runtime import InputError

from .command import Command, command

VARIANTS = ("fp32", "fp16", "int8")
DEFAULT_RUNNERS = ("engine", "ort", "keras-function", "keras-predict", "opencv")


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise InputError(
            f"{flag} takes positive integers separated by commas, e.g. 1,8,32; received {text!r}"
        )
    return values


def _names(text: str, known: list[str] | tuple[str, ...], flag: str) -> tuple[str, ...]:
    from difflib import get_close_matches

    names = tuple(v.strip() for v in text.split(",") if v.strip())
    for name in names:
        if name not in known:
            close = get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{flag}: unknown name {name!r}{hint} Accepted: {', '.join(known)}")
    if not names:
        raise InputError(f"{flag} needs at least one of: {', '.join(known)}")
    return names


def variant_path(model: Path, variant: str) -> Path:
    """``digits.onnx`` -> ``digits.int8.onnx`` (the names `cnnport export` writes)."""
    stem = model.stem
    for kind in VARIANTS[1:]:
        stem = stem.removesuffix(f".{kind}")
    return model.with_name(f"{stem}.onnx" if variant == "fp32" else f"{stem}.{variant}.onnx")


def _default_providers() -> str:
    from cnnport.runtime import available_providers

    return "cpu,cuda" if "CUDAExecutionProvider" in available_providers() else "cpu"


@command
class Bench(Command):
    name = "bench"
    help = "latency, throughput, first inference and memory: Engine vs bare onnxruntime, Keras, OpenCV"
    description = (
        "Times the model per variant x provider x runner x batch size, all in one process so the "
        "rows compare, and prints one table (median and p95 latency, throughput, first inference, "
        "load time, peak memory) and the ratios the performance targets are stated in."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .benchmark import RUNNERS

        parser.add_argument("model", help="the fp32 .onnx; its .fp16/.int8 siblings are the variants")
        parser.add_argument("--keras", default=None, help="the .keras it was exported from (Keras rows)")
        parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes")
        parser.add_argument(
            "--providers",
            default=None,
            help="comma-separated: cpu, cuda, tensorrt (default: cpu, +cuda if built in)",
        )
        parser.add_argument(
            "--variants",
            default=None,
            help="comma-separated fp32,fp16,int8 (default: those files that exist)",
        )
        parser.add_argument(
            "--runners",
            default=",".join(DEFAULT_RUNNERS),
            help=f"comma-separated, in table order; known: {', '.join(RUNNERS.names())}",
        )
        parser.add_argument(
            "--repeats",
            type=int,
            default=50,
            help="at least this many timed calls per row (a fast model gets more: each interleaved block runs at least 50 ms)",
        )
        parser.add_argument(
            "--rounds",
            type=int,
            default=5,
            help="interleaved rounds the timed calls are split into (more rounds spread bursts of other load "
            "evenly over the rows; each block is followed by a 0.1 s pause)",
        )
        parser.add_argument("--warmup", type=int, default=5, help="untimed calls per row after the first one")
        parser.add_argument(
            "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its choice)"
        )
        parser.add_argument(
            "--no-spinning",
            action="store_true",
            help="onnxruntime threads sleep instead of spinning when idle",
        )
        parser.add_argument("--device-id", type=int, default=0, help="GPU index for cuda/tensorrt")
        parser.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from .benchmark import (
            KERAS_RUNNERS,
            RUNNERS,
            BenchConfig,
            Row,
            Target,
            bench_rows,
            format_ratios,
            format_table,
            memory_method,
            ratios,
            to_json,
        )

        model = Path(args.model)
        if not model.is_file():
            raise InputError(f"model file not found: {args.model!r}")
        if args.repeats < 1 or args.warmup < 0 or args.rounds < 1:
            raise InputError("--repeats and --rounds must be at least 1 and --warmup at least 0")
        config = BenchConfig(batch_sizes=_int_list(args.batch_sizes, "--batch-sizes"), repeats=args.repeats,
                             warmup=args.warmup, rounds=min(args.rounds, args.repeats))  # fmt: skip
        runners = _names(args.runners, RUNNERS.names(), "--runners")
        providers = _names(args.providers or _default_providers(), ["cpu", "cuda", "tensorrt"], "--providers")
        variants = (
            _names(args.variants, VARIANTS, "--variants")
            if args.variants
            else tuple(v for v in VARIANTS if variant_path(model, v).is_file())
        ) or ("fp32",)
        keras = Path(args.keras) if args.keras else None
        targets = [
            (v, Target(variant_path(model, v), p, keras, args.threads, not args.no_spinning, args.device_id))
            for v in variants
            for p in providers
        ]
        shape = _input_shape(model)
        # Keras has no fp16/int8 form of the model: its rows appear under fp32 only.
        present = [
            (v, t, runners if v == "fp32" else tuple(r for r in runners if r not in KERAS_RUNNERS))
            for v, t in targets
            if t.onnx.is_file()
        ]
        missing = [
            Row(v, t.provider, "-", config.batch_sizes[0], status=f"unsupported: no file {str(t.onnx)!r}")
            for v, t in targets
            if not t.onnx.is_file()
        ]
        rows = bench_rows(present, shape, config) + missing
        memory = memory_method()
        print(f"model: {model}  input {shape}  repeats {config.repeats}  memory: {memory}")
        print(format_table(rows))
        print("\nratios of median latency, same run:")
        print(format_ratios(ratios(rows)))
        if args.json:
            cfg = {**vars(args), "batch_sizes": list(config.batch_sizes), "handler": None}
            document = to_json(rows, model=str(model), config=cfg, memory=memory)
            Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        return 0


def _input_shape(model: Path) -> tuple[int, int, int]:
    """(H, W, C) of the model input, from its card (the Engine's own check runs per row)."""
    from cnnport.runtime import read_card

    card = read_card(model)
    if card is None:
        raise InputError(f"{str(model)!r} has no model card; cnnport bench needs an exported model")
    return card.input.shape

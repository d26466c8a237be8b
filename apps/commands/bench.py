"""`cnnport bench`: latency and throughput per variant, provider and batch size, side by side.

Example:
    $ cnnport bench digits.onnx --keras runs/digits/model.keras --batch-sizes 1,32 --json bench.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnport.runtime import InputError

from ..arguments import INT8_GEMM, add_custom_objects_argument, add_int8_gemm_argument
from ..command import Command, command


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


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma list; the names are checked by their registries when the plan runs."""
    if text is None:
        return None
    return tuple(v.strip() for v in text.split(",") if v.strip())


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
        from cnnport.export.variants import VARIANTS
        from cnnport.runtime import PROVIDERS

        from ..benchmark import RUNNERS
        from ..benchmark.plan import DEFAULT_RUNNERS

        parser.add_argument("model", help="the fp32 .onnx; its .fp16/.int8 siblings are the variants")
        parser.add_argument("--keras", default=None, help="the .keras it was exported from (Keras rows)")
        add_custom_objects_argument(parser)
        parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes")
        parser.add_argument(
            "--providers",
            default=None,
            help=f"comma-separated: {', '.join(PROVIDERS.names())} (default: cpu, +cuda if built in)",
        )
        parser.add_argument(
            "--variants",
            default=None,
            help=f"comma-separated {','.join(VARIANTS.names())} (default: those files that exist)",
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
        add_int8_gemm_argument(parser, " (engine rows; off: the direct kernels, as before)")
        parser.add_argument("--device-id", type=int, default=0, help="GPU index for cuda/tensorrt")
        parser.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from cnnport.runtime.files import atomic_write_text

        from ..benchmark import BenchConfig, format_ratios, format_table, memory_method, ratios, to_json
        from ..benchmark.plan import BenchPlan, run_plan

        if args.repeats < 1 or args.warmup < 0 or args.rounds < 1:
            raise InputError("--repeats and --rounds must be at least 1 and --warmup at least 0")
        config = BenchConfig(batch_sizes=_int_list(args.batch_sizes, "--batch-sizes"), repeats=args.repeats,
                             warmup=args.warmup, rounds=min(args.rounds, args.repeats))  # fmt: skip
        plan = BenchPlan(
            model=Path(args.model),
            variants=_names(args.variants),
            providers=_names(args.providers or _default_providers()) or (),
            runners=_names(args.runners) or (),
            keras=Path(args.keras) if args.keras else None,
            threads=args.threads,
            spinning=not args.no_spinning,
            device_id=args.device_id,
            int8_gemm=INT8_GEMM[args.int8_gemm],
            custom_objects=tuple(args.custom_objects),
        )
        if not plan.providers or not plan.runners:
            raise InputError("--providers and --runners need at least one name each")
        rows = run_plan(plan, config)
        memory = memory_method()
        print(f"model: {plan.model}  input {plan.input_shape()}  repeats {config.repeats}  memory: {memory}")
        print(format_table(rows))
        found = ratios(rows)
        if found:
            print("\nratios of median latency, same run:")
            print(format_ratios(found))
        if args.json:
            cfg = {**vars(args), "batch_sizes": list(config.batch_sizes), "handler": None}
            document = to_json(rows, model=str(plan.model), config=cfg, memory=memory)
            atomic_write_text(args.json, json.dumps(document, indent=2) + "\n")
        return 0

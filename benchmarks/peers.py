"""cnnport's Engine against the runtimes a Keras user could deploy with instead, on one CPU.

For each model (cnnport.apps.benchmark.peer_models: LeNet-5, convnet at 96, MobileNetV2 and
ResNet50 at 224, exported by ``cnnport export`` and converted by Keras to LiteRT), fp32
and int8, it times the Engine, bare onnxruntime, LiteRT (XNNPACK) on Keras' own .tflite,
and the OpenVINO runtime on the same .onnx (f32, and its own default: bf16 where the
CPU has it), at batch 1 with 1 and with 2 threads, and at batch 32 with 2 threads.

How (the method of issue 22): every runtime x variant runs in its own fresh process
(cnnport.apps.benchmark.peers). The workers of one model and thread count are started together and
timed in rounds: each round gives every worker a block of calls (one untimed call
first), in an order that rotates from round to round and is reversed every other
round, with a pause after each block so a runtime's spinning threads go idle before
the next one is timed. So load from other programs hits every row alike, and each
ratio in the table is of two medians measured side by side in one run. Figures: the
median over all timed calls, and the spread of the per-round medians (min-max).

The FLOP limit of a model is its FLOPs (2 x multiply-accumulates of Conv, depthwise
Conv and Dense layers) over the CPU's peak: cores x vector lanes x FLOP per lane per
cycle x clock (the figures are printed with the table); ``reached`` is the limit over
the measured time.

    python benchmarks/peers.py [--quick] [--models a,b] [--cache DIR] [--rounds 5] [--json out.json]

``--quick``: LeNet-5 and MobileNetV2, batch 1 only, 3 rounds (a few minutes once built).
Needs ``pip install -e ".[train,peers]"`` (ai-edge-litert, openvino).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cnnport.apps.benchmark.peer_models import MODELS, is_built
from cnnport.apps.benchmark.peers import PeerTiming, Setting, peak_gops, time_group
from cnnport.apps.benchmark.report import cpu_name, machine_info

RUNTIMES = ("engine", "ort", "litert", "openvino-f32", "openvino")
VARIANTS = ("fp32", "int8")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _ratio(cells, key, reference: str) -> str:
    mine, theirs = cells.get(key), cells.get((reference, *key[1:]))
    if not mine or not theirs or mine.median_ms is None or theirs.median_ms is None:
        return "-"
    return f"{mine.median_ms / theirs.median_ms:.2f}x"


def _limit_ms(macs: int, variant: str, cores: int, args) -> float:
    per_lane = args.int8_ops_per_lane if variant == "int8" else args.fp32_ops_per_lane
    return 2 * macs / (peak_gops(cores, args.ghz, args.lanes, per_lane) * 1e9) * 1000


def format_model(name: str, meta: dict, cells: dict, settings: list[Setting], args) -> list[str]:
    """The table of one model: one line per runtime x variant, one column group per setting."""
    columns = [(s.threads, b) for s in settings for b in s.batches]
    gflop = 2 * meta["macs"] / 1e9
    lines = [
        f"### {name}: {meta['macs'] / 1e6:.1f} M MACs = {gflop:.3f} GFLOP per image, "
        f"input {'x'.join(map(str, meta['input']))}",
        "",
        "| runtime | variant | "
        + " | ".join(f"b{b} {t}T ms [round spread] | vs LiteRT" for t, b in columns)
        + " | 2T/1T gain b1 | FLOP limit 2T ms/img | reached b1 2T | reached b32 2T |",
        "|---|---|" + "---|---|" * len(columns) + "---|---|---|---|",
    ]
    for variant in args.variants:
        for runtime in args.runtimes:
            row = [runtime, variant]
            for threads, batch in columns:
                cell = cells.get((runtime, variant, threads, batch))
                if cell is None or cell.status != "ok":
                    row += [cell.status if cell else "-", "-"]
                    continue
                per_image = f"{cell.median_ms:.4g}" if batch == 1 else f"{cell.median_ms / batch:.4g}/img"
                row += [
                    f"{per_image} [{cell.spread()}]",
                    _ratio(cells, (runtime, variant, threads, batch), "litert"),
                ]
            one, two = (cells.get((runtime, variant, t, 1)) for t in (1, 2))
            gain = (
                f"{one.median_ms / two.median_ms:.2f}x"
                if one and two and one.median_ms and two.median_ms
                else "-"
            )
            limit = _limit_ms(meta["macs"], variant, 2, args)
            reached = []
            for batch in (1, 32):
                cell = cells.get((runtime, variant, 2, batch))
                reached.append(f"{limit / (cell.median_ms / batch):.1%}" if cell and cell.median_ms else "-")
            row += [gain, f"{limit:.4g}", *reached]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _settings(args) -> list[Setting]:
    big = () if args.quick else (32,)
    return [Setting(1, (1,)), Setting(2, (1, *big))]


def _header(args) -> list[str]:
    info = machine_info()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    peers = []
    for dist in ("ai-edge-litert", "openvino"):
        from importlib import metadata

        try:
            peers.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            peers.append(f"{dist} missing")
    fp32 = peak_gops(os.cpu_count() or 1, args.ghz, args.lanes, args.fp32_ops_per_lane)
    int8 = peak_gops(os.cpu_count() or 1, args.ghz, args.lanes, args.int8_ops_per_lane)
    return [
        f"command: python benchmarks/peers.py {' '.join(sys.argv[1:])}",
        f"machine: {cpu_name()}, {os.cpu_count()} cores, flags {', '.join(info['cpu_flags'])}; {versions}; "
        + ", ".join(peers),
        f"peak: fp32 {os.cpu_count()} cores x {args.lanes} lanes x {args.fp32_ops_per_lane:g} FLOP/lane/cycle x "
        f"{args.ghz:g} GHz = {fp32:.0f} GFLOP/s; int8 x {args.int8_ops_per_lane:g} op/lane/cycle = {int8:.0f} GOP/s",
        f"method: fresh process per runtime x variant, {args.rounds} interleaved rounds, blocks of >= "
        f"{args.calls} calls and >= {args.min_block_s:g} s (<= {args.max_block_s:g} s), {args.settle_s:g} s pause "
        "after each; median of all calls [min-max of the per-round medians]; ratios side by side in one run",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="LeNet-5 and MobileNetV2, batch 1, 3 rounds")
    parser.add_argument("--models", default=None, help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated runtimes")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: fp32, int8")
    parser.add_argument("--cache", default="bench-models/peers", help="where the models are built and reused")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--calls", type=int, default=30, help="calls per block, at least")
    parser.add_argument("--min-block-s", type=float, default=0.2)
    parser.add_argument("--max-block-s", type=float, default=2.0)
    parser.add_argument("--settle-s", type=float, default=0.1, help="pause after each block")
    parser.add_argument("--ghz", type=float, default=2.6, help="clock for the FLOP limit (TSC of this VM)")
    parser.add_argument("--lanes", type=int, default=16, help="fp32 lanes of a vector (AVX-512: 16)")
    parser.add_argument(
        "--fp32-ops-per-lane",
        type=float,
        default=2.0,
        help="FLOP per lane per cycle: 2 = one 512-bit FMA a cycle (Zen 4: two 256-bit FMA pipes)",
    )
    parser.add_argument(
        "--int8-ops-per-lane",
        type=float,
        default=8.0,
        help="int8 ops per 32-bit lane per cycle: 8 = one 512-bit VNNI vpdpbusd (4 MACs a lane) a cycle",
    )
    parser.add_argument("--json", default=None, help="also write every cell's times here")
    return parser


def main() -> None:
    args = _parser().parse_args()
    args.rounds = args.rounds or (3 if args.quick else 5)
    names = (
        args.models.split(",")
        if args.models
        else (["lenet5", "mobilenet_v2-224"] if args.quick else list(MODELS))
    )
    args.runtimes, args.variants = args.runtimes.split(","), args.variants.split(",")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not is_built(cache / name):
            print(f"building {name} into {cache / name} (cnnport export + Keras LiteRT) ...", flush=True)
            subprocess.run([sys.executable, "-m", "cnnport.apps.benchmark.peer_models", str(cache), name],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print("\n".join(_header(args)), flush=True)
    document = {"header": _header(args), "models": {}}
    settings = _settings(args)
    with open(cache / "workers.log", "w") as log:
        for name in names:
            folder = cache / name
            meta = json.loads((folder / "meta.json").read_text())
            cells, loads = {}, []
            for setting in settings:
                before = _loadavg()
                keys = [(runtime, variant) for variant in args.variants for runtime in args.runtimes]
                timing = PeerTiming(
                    args.rounds, args.calls, args.min_block_s, args.max_block_s, args.settle_s
                )
                for key, cell in time_group(folder, setting, keys, timing, log).items():
                    cells[(key[0], key[1], setting.threads, key[2])] = cell
                loads.append(f"{setting.threads}T: {before} -> {_loadavg()}")
            print("\n" + "\n".join(format_model(name, meta, cells, settings, args)))
            print(f"\n/proc/loadavg before -> after each group: {'; '.join(loads)}", flush=True)
            document["models"][name] = {
                "meta": meta,
                "loadavg": loads,
                "cells": {"/".join(map(str, k)): {"status": c.status, "median_ms": c.median_ms,
                          "round_medians_ms": [r * 1000 for r in c.rounds], "calls": len(c.times)}
                          for k, c in cells.items()},
            }  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What the class_maps output costs: the Engine at batch 1 with and without heatmaps.

Exports keras.applications MobileNetV2 (cnnport's ``mobilenet_v2``, weights=None, random
weights: latency does not depend on them) at 224x224 twice, with the class_maps output
(the default) and with ``--no-cam``, and times side by side in one bench run, with
`cnnport bench`'s interleaving:

- ``engine`` on the --no-cam graph: the baseline, no maps in the graph;
- ``engine`` on the default graph: maps in the graph, not asked for;
- ``engine-maps`` on the default graph: probabilities and maps (what a heatmap needs).

    .venv/bin/python benchmarks/heatmap_cost.py [--size 224] [--repeats 200] [--rounds 20] [--runs 3]

Target (issue 14): at most 10% on the Engine's batch-1 latency.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _export(folder: Path, size: int) -> tuple[Path, Path]:
    import keras

    from cnnport.apps.cli import main as cnnport
    from cnnport.runtime import InputSpec
    from cnnport.train import TrainConfig, build_model

    keras.utils.set_random_seed(0)
    spec = InputSpec(height=size, width=size, channels=3)
    model = build_model("mobilenet_v2", spec, 10, TrainConfig(model="mobilenet_v2"))
    model.save(folder / "m.keras")
    for name, extra in (("cam.onnx", []), ("nocam.onnx", ["--no-cam"])):
        if cnnport(["-q", "export", str(folder / "m.keras"), "-o", str(folder / name), *extra]) != 0:
            raise SystemExit(f"export of {name} failed")
    return folder / "cam.onnx", folder / "nocam.onnx"


def _one_run(cam: Path, nocam: Path, size: int, repeats: int, rounds: int) -> dict[str, float]:
    from cnnport.apps.benchmark.measure import BenchConfig, bench_rows
    from cnnport.export.backends import Target

    plan = [("no-cam", Target(nocam), ["engine"]), ("cam", Target(cam), ["engine", "engine-maps"])]
    config = BenchConfig(batch_sizes=(1,), repeats=repeats, rounds=rounds)
    rows = bench_rows(plan, (size, size, 3), config)
    return {f"{row.variant} {row.runner}": row.median_ms for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnport-heatmap-") as folder:
        cam, nocam = _export(Path(folder), args.size)
        runs = [_one_run(cam, nocam, args.size, args.repeats, args.rounds) for _ in range(args.runs)]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; batch 1, {args.size}x{args.size}"
    )
    print(f"{'row':<22} {'median ms (each run)':<34} {'vs no-cam engine':>18}")
    base = [r["no-cam engine"] for r in runs]
    for name in ("no-cam engine", "cam engine", "cam engine-maps"):
        values = [r[name] for r in runs]
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"{name:<22} {shown:<34} {statistics.median(ratios):>8.3f} [{', '.join(f'{x:.3f}' for x in ratios)}]"
        )
    worst = statistics.median(r["cam engine-maps"] / r["no-cam engine"] for r in runs)
    print(
        f"heatmap cost: {100 * (worst - 1):+.1f}% (target: at most +10%): {'met' if worst <= 1.10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

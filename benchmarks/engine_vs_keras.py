"""The README's benchmark tables: `cnnport bench` on the demo model and on mobilenet_v2.

Builds both models first (see cnnport.apps.benchmark.models: LeNet-5 trained on digits, and
MobileNetV2 weights=None trained on digits at 224x224), then runs ``cnnport bench`` on
each with every runner (Engine, bare session.run, Keras tf.function, Keras predict,
OpenCV DNN) and every variant, and checks the issue's targets on the ratios of that
same run.

    python benchmarks/engine_vs_keras.py [--cache DIR] [--repeats 200] [--rounds 20] [--runs 3] [--json-dir DIR]

Each target is a ratio of two medians measured side by side in one bench run; the whole
run is repeated --runs times and the summary gives the median ratio and its range, since
single runs of a 20 µs model on a shared machine move by 10-30%.

Without --cache the models are built into a temporary folder (about 9 minutes on 2
cores, mostly training mobilenet_v2); with it they are built once and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import NamedTuple

from cnnport.apps.benchmark.models import digits_lenet, digits_mobilenet_v2, keras_path
from cnnport.apps.cli import main as cnnport
from cnnport.runtime import read_card


class Goal(NamedTuple):
    ratio: str  # as `cnnport bench` names it
    variant: str
    batch: int
    at_most: bool  # True: ratio <= limit; False: ratio >= limit
    limit: float
    what: str
    models: tuple[str, ...] | None = None  # the models it is a target for (None: all)


TARGETS = (
    Goal("engine/ort", "fp32", 1, True, 1.10, "Engine within 10% of bare session.run, batch 1"),
    Goal(
        "keras-function/engine", "fp32", 1, False, 3.0, "Engine >= 3x faster than Keras tf.function, batch 1"
    ),
    Goal("fp32/int8", "int8", 1, False, 1.8, "int8 >= 1.8x faster than fp32, batch 1", ("mobilenet_v2-224",)),
)


def _ratio(document: dict, ratio: str, variant: str, batch: int) -> float | None:
    for r in document["ratios"]:
        if (r["ratio"], r["variant"], r["batch"], r["provider"]) == (ratio, variant, batch, "cpu"):
            return r["value"]
    return None


def _summary(name: str, documents: list[dict], onnx_path: Path) -> list[str]:
    lines = []
    for goal in TARGETS:
        values = [
            v for v in (_ratio(d, goal.ratio, goal.variant, goal.batch) for d in documents) if v is not None
        ]
        if not values:
            continue
        middle = statistics.median(values)
        if goal.models is not None and name not in goal.models:
            verdict = "(not a target for this model)"
        else:
            verdict = "MET" if (middle <= goal.limit if goal.at_most else middle >= goal.limit) else "MISSED"
        spread = ", ".join(f"{v:.2f}" for v in values)
        sign = "<=" if goal.at_most else ">="
        lines.append(
            f"{name}: {goal.what}: {goal.ratio} median {middle:.2f} over {len(values)} run(s) [{spread}] "
            f"({sign} {goal.limit}) {verdict}"
        )
    int8 = onnx_path.with_name(f"{onnx_path.stem}.int8.onnx")
    if int8.is_file():
        change = read_card(int8).variant.accuracy_change
        accuracy = "unknown" if change is None else f"{change * 100:+.2f} points (budget -1)"
        lines.append(f"{name}: int8 accuracy change on the held-out set: {accuracy}")
    return lines


def _latency_table(name: str, documents: list[dict]) -> list[str]:
    """Median over runs of each row's median latency, one line per variant x runner."""
    cells: dict[tuple[str, str, int], list[float]] = {}
    for document in documents:
        for row in document["rows"]:
            if row["median_ms"] is not None:
                cells.setdefault((row["variant"], row["runner"], row["batch"]), []).append(row["median_ms"])
    lines = [f"{name}: median ms over {len(documents)} run(s)"]
    for (variant, runner, batch), values in cells.items():
        lines.append(f"  {variant:<5} {runner:<15} batch {batch:>3}  {statistics.median(values):9.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="folder to build the models into and reuse")
    parser.add_argument("--repeats", type=int, default=200, help="at least this many timed calls per row")
    parser.add_argument(
        "--runs", type=int, default=3, help="whole bench runs; the summary gives median ratios"
    )
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds per bench run")
    parser.add_argument("--json-dir", default=None, help="write bench-MODEL-RUN.json files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        models = {
            "digits-lenet5": (digits_lenet(folder), "1,32"),
            "mobilenet_v2-224": (digits_mobilenet_v2(folder), "1,8"),
        }
        documents: dict[str, list[dict]] = {name: [] for name in models}
        for run in range(1, args.runs + 1):
            for name, (onnx_path, batches) in models.items():
                out = Path(args.json_dir or folder) / f"bench-{name}-{run}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                print(
                    f"\n## run {run}/{args.runs}, {name}: cnnport bench {onnx_path.name} "
                    f"--keras {keras_path(onnx_path).name} --batch-sizes {batches}"
                )
                argv = ["bench", str(onnx_path), "--keras", str(keras_path(onnx_path)), "--providers", "cpu",
                        "--batch-sizes", batches, "--repeats", str(args.repeats), "--rounds", str(args.rounds),
                        "--json", str(out)]  # fmt: skip
                if cnnport(argv) != 0:
                    raise SystemExit(f"cnnport bench failed on {onnx_path}")
                documents[name].append(json.loads(out.read_text()))
        print(
            f"\n## targets (each a ratio of medians measured side by side in one run; median over {args.runs} runs)"
        )
        for name, (onnx_path, _) in models.items():
            print("\n".join(_summary(name, documents[name], onnx_path)))
        print()
        for name in models:
            print("\n".join(_latency_table(name, documents[name])))


if __name__ == "__main__":
    main()

"""The README's benchmark tables: `cnnport bench` on the demo model and on mobilenet_v2.

Builds both models first (see bench_models.py: LeNet-5 trained on digits, and
MobileNetV2 weights=None trained on digits at 224x224), then runs ``cnnport bench`` on
each with every runner (Engine, bare session.run, Keras tf.function, Keras predict,
OpenCV DNN) and every variant, and checks the issue's targets on the ratios of that
same run.

    python benchmarks/engine_vs_keras.py [--cache DIR] [--repeats 50] [--json-dir DIR]

Without --cache the models are built into a temporary folder (about 9 minutes on 2
cores, mostly training mobilenet_v2); with it they are built once and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import digits_lenet, digits_mobilenet_v2, keras_path

from cnnport.apps.cli import main as cnnport
from cnnport.runtime import read_card

TARGETS = (
    ("engine/ort", "fp32", 1, "<=", 1.10, "Engine within 10% of bare session.run, batch 1"),
    ("keras-function/engine", "fp32", 1, ">=", 3.0, "Engine >= 3x faster than Keras tf.function, batch 1"),
)


def _check(document: dict, name: str) -> list[str]:
    lines = []
    for ratio, variant, batch, op, limit, what in TARGETS:
        found = [
            r["value"]
            for r in document["ratios"]
            if (r["ratio"], r["variant"], r["batch"], r["provider"]) == (ratio, variant, batch, "cpu")
        ]
        if found:
            ok = found[0] <= limit if op == "<=" else found[0] >= limit
            lines.append(
                f"{name}: {what}: {ratio} = {found[0]:.2f} ({op} {limit}) {'MET' if ok else 'MISSED'}"
            )
    return lines


def _int8_line(document: dict, onnx_path: Path, name: str) -> str | None:
    found = [
        r["value"]
        for r in document["ratios"]
        if (r["ratio"], r["batch"], r["provider"]) == ("fp32/int8", 1, "cpu")
    ]
    int8 = onnx_path.with_name(f"{onnx_path.stem}.int8.onnx")
    if not found or not int8.is_file():
        return None
    change = read_card(int8).variant.accuracy_change
    accuracy = "unknown" if change is None else f"{change * 100:+.2f} points (budget -1)"
    verdict = "MET" if found[0] >= 1.8 else "MISSED"
    return f"{name}: int8 speed-up over fp32, batch 1: {found[0]:.2f}x (>= 1.8) {verdict}; accuracy change {accuracy}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="folder to build the models into and reuse")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per row")
    parser.add_argument("--json-dir", default=None, help="write bench-MODEL.json files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        models = {
            "digits-lenet5": (digits_lenet(folder), "1,32"),
            "mobilenet_v2-224": (digits_mobilenet_v2(folder), "1,8"),
        }
        summary = []
        for name, (onnx_path, batches) in models.items():
            out = Path(args.json_dir or folder) / f"bench-{name}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            print(
                f"\n## {name}: cnnport bench {onnx_path.name} --keras {keras_path(onnx_path).name} --batch-sizes {batches}"
            )
            argv = ["bench", str(onnx_path), "--keras", str(keras_path(onnx_path)), "--providers", "cpu",
                    "--batch-sizes", batches, "--repeats", str(args.repeats), "--json", str(out)]  # fmt: skip
            if cnnport(argv) != 0:
                raise SystemExit(f"cnnport bench failed on {onnx_path}")
            document = json.loads(out.read_text())
            summary += _check(document, name)
            summary.append(_int8_line(document, onnx_path, name) or f"{name}: no int8 figure")
        print("\n## targets (ratios of medians measured in the same run)")
        print("\n".join(summary))


if __name__ == "__main__":
    main()

"""Train on small generated folder sets with the defaults, as a user with their own folder would.

    python benchmarks/train_folders.py [--sets 3x100,10x150] [--models convnet,lenet5,alexnet,mobilenet_v2]
        [--img-size 96] [--cnnport PATH] [--label after] [--jsonl results.jsonl]

Each set is digits of the embedded scikit-learn set pasted at random places on
cluttered 96x96 canvases (cnnport.train.synthetic.cluttered_digits), CLASSESxPER_CLASS
images; a set named digitsCxN is the plain embedded digits as 32x32 PNGs (digit_folder);
a set named outside-KIND is made by one of the generators in benchmarks/outside, written
independently of cnnport's (docs/small-data.md): make.py's kinds with seeds 100 and 101,
photos.py's (real-photograph backgrounds) with seeds 200 and 201. Each row is one fresh `cnnport train --data SET --model M --img-size S`
process with every other flag at its default (--weights auto: convnet starts from its
embedded synthetic pretraining; --train-args "--weights none" trains from scratch); the seconds are the
whole command, TensorFlow import included. Reported per row: test accuracy, epochs
run, seconds, the first epoch whose validation accuracy exceeds twice chance, and
how many epochs validated below twice chance while training accuracy was above it.

--cnnport picks the `cnnport` executable, so the same script measures another
checkout (e.g. main, installed in its own environment) on the same generated data.
Targets (issue #15): no row validates below twice chance for more than 2 epochs while
training accuracy is above it; convnet on 10x150 reaches 0.85 test accuracy in under
10 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnport.train.folders import FOLDER_KINDS, small_folder
from cnnport.train.synthetic import cluttered_digits, digit_folder

MODELS = ("convnet", "lenet5", "alexnet", "mobilenet_v2")
# Generators cnnport did not write (benchmarks/outside/README.md): kind -> script.
_OUTSIDE = Path(__file__).resolve().parent / "outside"
OUTSIDE_KINDS = {
    **{kind: _OUTSIDE / "make.py" for kind in ("objects", "arrows", "rings", "glyphs")},
    **{kind: _OUTSIDE / "photos.py" for kind in ("suits", "faces", "plates")},
}


def _parse_set(text: str) -> tuple[int, int]:
    classes, _, per_class = text.removeprefix("digits").partition("x")
    return int(classes), int(per_class)


def _make_set(name: str, folder: Path, seed: int) -> int:
    """CLASSESxPER_CLASS: cluttered canvases; digitsCLASSESxPER_CLASS: the plain embedded digits;
    a kind of cnnport.train.folders (shapes, outlines, ...): 3 x 100 photo-like JPEGs at 160x120."""
    if name in FOLDER_KINDS:
        small_folder(folder, name, seed=seed)
        return len(FOLDER_KINDS.get(name).classes)
    if name.startswith("outside-"):
        # A generator cnnport did not write (benchmarks/outside): a folder per class.
        kind = name.removeprefix("outside-")
        if kind not in OUTSIDE_KINDS:
            raise SystemExit(f"unknown set {name!r}: the outside kinds are {', '.join(OUTSIDE_KINDS)}")
        script = OUTSIDE_KINDS[kind]
        subprocess.run([sys.executable, str(script), str(folder), "--kind", kind, "--seed", str(seed)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        return sum(1 for path in folder.iterdir() if path.is_dir())
    classes, per_class = _parse_set(name)
    if name.startswith("digits"):
        digit_folder(folder, classes=classes, per_class=per_class, size=32)
    else:
        cluttered_digits(folder, classes=classes, per_class=per_class, seed=seed)
    return classes


def _history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "history.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _row(label: str, name: str, model: str, run_dir: Path, seconds: float, classes: int, rc: int) -> dict:
    twice = 2.0 / classes if classes > 2 else 0.75
    history = _history(run_dir) if (run_dir / "history.csv").exists() else []
    above = [i + 1 for i, h in enumerate(history) if h["val_categorical_accuracy"] > twice]
    lagging = sum(
        1 for h in history if h["val_categorical_accuracy"] <= twice and h["categorical_accuracy"] > twice
    )
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    last = history[-1] if history else {}
    return {
        "label": label, "set": name, "model": model, "exit": rc,
        "test_accuracy": metrics.get("test_accuracy"), "epochs": len(history), "seconds": round(seconds, 1),
        "first_val_above_2x_chance": above[0] if above else None, "epochs_val_lagging": lagging,
        "last_train_accuracy": last.get("categorical_accuracy"),
        "last_val_accuracy": last.get("val_categorical_accuracy"),
        "overfitting": (metrics.get("overfitting") or {}).get("message"),
    }  # fmt: skip


def _train(cnnport: str, data: Path, model: str, img_size: int, out: Path, timeout: float,
           extra: list[str]) -> tuple[int, float]:  # fmt: skip
    command = [cnnport, "-q", "train", "--data", str(data), "--model", model, "--img-size", str(img_size),
               "--out", str(out), "--verbose", "0", "--no-tensorboard", *extra]  # fmt: skip
    started = time.perf_counter()
    try:
        rc = subprocess.run(command, stdout=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    return rc, time.perf_counter() - started


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        default="3x100,10x150",
        help="CLASSESxPER_CLASS (cluttered), digitsCxN (plain), a folder kind "
        f"({', '.join(FOLDER_KINDS)}) or outside-KIND, a kind of the generators cnnport did not write "
        f"({', '.join(OUTSIDE_KINDS)}; seeds 100 and 101 for make.py's, 200 and 201 for photos.py's), "
        "comma-separated",
    )
    parser.add_argument("--models", default=",".join(MODELS), help="architectures, comma-separated")
    parser.add_argument("--img-size", default="96", help="--img-size of the runs, comma-separated")
    beside = Path(sys.executable).parent / "cnnport"  # this environment's, whether or not it is on PATH
    parser.add_argument("--cnnport", default=str(beside) if beside.exists() else shutil.which("cnnport"),
                        help="cnnport executable (default: the one installed beside this Python)")  # fmt: skip
    parser.add_argument("--label", default="current", help="name of this checkout in the results")
    parser.add_argument("--jsonl", type=Path, default=None, help="append one JSON line per row here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run is abandoned")
    parser.add_argument("--seed", default="0", help="seed(s) of the generated images, comma-separated")
    parser.add_argument(
        "--train-args", default="", help="extra `cnnport train` flags of every run (ablations)"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"cnnport: {args.cnnport}; extra flags: {args.train_args or 'none'}", flush=True)  # fmt: skip
    print(f"{'label':<8} {'set':<12} {'px':>3} {'seed':>4} {'model':<13} {'test acc':>8} {'epochs':>6} "
          f"{'seconds':>8} {'val>2xchance at':>15} {'lagging':>7} {'train':>5} {'val':>5} exit load",
          flush=True)  # fmt: skip
    extra = args.train_args.split()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seed.split(",")):
            for name in args.sets.split(","):
                data = Path(tmp) / f"set{name}-{seed}"
                classes = _make_set(name, data, seed)
                for img_size, model in (
                    (int(i), m) for i in args.img_size.split(",") for m in args.models.split(",")
                ):
                    out = Path(tmp) / f"run-{name}-{seed}-{img_size}-{model}"
                    load = _loadavg()
                    rc, seconds = _train(args.cnnport, data, model, img_size, out, args.timeout, extra)
                    row = _row(args.label, name, model, out, seconds, classes, rc)
                    row.update(img_size=img_size, seed=seed, train_args=args.train_args,
                               loadavg=[load, _loadavg()])  # fmt: skip
                    _print(row)
                    if args.jsonl:
                        with open(args.jsonl, "a") as handle:
                            handle.write(json.dumps(row) + "\n")


def _loadavg() -> float:
    """The 1-minute load average: the machine may be shared (times then are not an idle machine's)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def _print(row: dict) -> None:
    acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
    first = row["first_val_above_2x_chance"] or "never"
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"{row['label']:<8} {row['set']:<12} {row['img_size']:>3} {row['seed']:>4} {row['model']:<13} "
          f"{acc:>8} {row['epochs']:>6} {row['seconds']:>8.1f} {first!s:>15} {row['epochs_val_lagging']:>7} "
          f"{fmt(row['last_train_accuracy']):>5} {fmt(row['last_val_accuracy']):>5} {row['exit']} "
          f"{row['loadavg'][0]:.1f}-{row['loadavg'][1]:.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

"""The figures that must not regress when training defaults change, before and after, from one script.

    .venv/bin/python benchmarks/defaults_before_after.py --before REV [--checks digits,pointing,3x100,digits3x100]
        [--jsonl results.jsonl] [--side-by-side]

The git revision REV is unpacked into a temporary folder and put first on PYTHONPATH
for its runs, so the same measuring code (this checkout's benchmarks/) trains with the
old defaults and with this checkout's. Checks (issue #23 point 4, targets in brackets):

- ``digits``: lenet5 on the embedded digits, `cnnport train` defaults (>= 98% in <= 120 s);
- ``pointing``: benchmarks/pointing_game.py: convnet on 10 classes x 150 cluttered digits
  at 96 px with the defaults (the test accuracy of that run: >= 85%), exported, and the
  pointing game of its Grad-CAM and class maps on 300 held-out images (>= 85%);
- ``3x100``, ``digits3x100``: the small-folder rows of docs/benchmarks.md for convnet
  (3 x 100 cluttered digits at 64 px; the plain digits at 32 px), via
  benchmarks/train_folders.py.

``--side-by-side`` runs the before and the after process of a check at the same time,
so both see the same load (each then runs slower than alone). Every row records the
1-minute load average before and after it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The subpackages of the one namespace, as pyproject.toml's [tool.setuptools.package-dir] maps them.
SUBPACKAGES = ("runtime", "train", "export", "explain", "apps")
CHECKS = ("digits", "pointing", "3x100", "digits3x100")


def unpack(rev: str, into: Path) -> Path:
    """``rev`` of this repository as an importable ``cnnport`` namespace; returns the PYTHONPATH entry."""
    archive = into / "source.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "source", filter="data")
    package = into / "path" / "cnnport"
    package.mkdir(parents=True)
    for name in SUBPACKAGES:
        (package / name).symlink_to(into / "source" / name)
    return into / "path"


def _loadavg() -> float:
    return os.getloadavg()[0]


def _command(check: str, work: Path) -> list[str]:
    python, bench = sys.executable, ROOT / "benchmarks"
    if check == "digits":
        return [python, str(bench / "train_digits.py"), "--repeats", "1"]
    if check == "pointing":
        return [python, str(bench / "pointing_game.py"), "--out", str(work)]
    sets, size = {"3x100": ("3x100", "64"), "digits3x100": ("digits3x100", "32")}[check]
    wrapper = work.parent / f"{work.name}-cnnport"
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" -m cnnport.apps "$@"\n')
    wrapper.chmod(0o755)
    return [python, str(bench / "train_folders.py"), "--sets", sets, "--img-size", size, "--models", "convnet",
            "--cnnport", str(wrapper), "--jsonl", str(work.parent / f"{work.name}.jsonl")]  # fmt: skip


def _figures(check: str, output: str, work: Path) -> dict:
    """The figures of one check from its output (and, for the pointing game, its run's metrics)."""
    if check == "digits":
        acc, epochs, seconds = re.search(r"^\s*0\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s*$", output, re.M).groups()
        return {"test_accuracy": float(acc), "epochs": int(epochs), "train_seconds": float(seconds)}
    if check == "pointing":
        metrics = json.loads((work / "run" / "metrics.json").read_text())
        seconds = re.search(r"trained with the defaults in (\d+) s", output)
        return {
            "test_accuracy": metrics["test_accuracy"], "epochs": metrics["epochs_run"],
            "train_seconds": float(seconds.group(1)) if seconds else None,
            "held_out_accuracy": _percent(output, "accuracy"),
            "pointing_grad_cam": _percent(output, "pointing game, Grad-CAM (Keras)"),
            "pointing_class_maps": _percent(output, "pointing game, class maps (ONNX)"),
        }  # fmt: skip
    row = json.loads((work.parent / f"{work.name}.jsonl").read_text().splitlines()[-1])
    return {"test_accuracy": row["test_accuracy"], "epochs": row["epochs"], "train_seconds": row["seconds"]}


def _percent(output: str, label: str) -> float | None:
    found = re.search(rf"^{re.escape(label)}\s+([\d.]+)%", output, re.M)
    return float(found.group(1)) / 100 if found else None


def _start(check: str, label: str, pythonpath: str | None, tmp: Path):
    work = tmp / f"{check}-{label}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    command = _command(check, work)
    started, load = time.perf_counter(), _loadavg()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, work, started, load


def _finish(check: str, label: str, started_process) -> dict:
    process, work, started, load = started_process
    output, _ = process.communicate()
    row = {"check": check, "label": label, "exit": process.returncode,
           "seconds": round(time.perf_counter() - started, 1), "loadavg": [round(load, 2), round(_loadavg(), 2)]}  # fmt: skip
    if process.returncode == 0:
        row.update(_figures(check, output, work))
    else:
        row["output_tail"] = output[-2000:]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision with the old defaults (e.g. main)")
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated, of {', '.join(CHECKS)}")
    parser.add_argument("--jsonl", type=Path, default=None, help="append one JSON line per row here")
    parser.add_argument("--side-by-side", action="store_true", help="run before and after of a check at once")
    args = parser.parse_args()
    checks = args.checks.split(",")
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        parser.error(f"--checks: unknown {unknown}; known: {', '.join(CHECKS)}")
    with tempfile.TemporaryDirectory(prefix="cnnport-before-after-") as tmp:
        before = str(unpack(args.before, Path(tmp)))
        print(
            f"before: {args.before} (unpacked to {before}); after: {ROOT}; {os.cpu_count()} cores", flush=True
        )
        for check in checks:
            sides = [("before", before), ("after", None)]
            if args.side_by_side:
                running = [(label, _start(check, label, path, Path(tmp))) for label, path in sides]
                rows = [_finish(check, label, started) for label, started in running]
            else:
                rows = [_finish(check, label, _start(check, label, path, Path(tmp))) for label, path in sides]
            for row in rows:
                print(json.dumps(row), flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as handle:
                        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

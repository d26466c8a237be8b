"""Training throughput with 1 process and with N worker processes on this machine.

Each configuration is a real `cnnport train` run (N workers: N processes with TF_CONFIG
naming 127.0.0.1 on free ports, sharing one --out), with the same global batch and
epochs. Throughput is the chief's own per-epoch log line (images of all replicas per
second of training steps, validation excluded); the first epoch (tracing) is left out
and the median of the rest is reported, with the wall time of the whole run and the
test accuracy.

    python benchmarks/multiworker.py [--workers 1,2] [--epochs 8] [--batch-size 64] [--model lenet5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCH_LINE = re.compile(r"epoch (\d+): trained on (\d+) images .* ([\d.]+) images/s")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(workers: int, args: argparse.Namespace, root: Path) -> dict:
    out = root / f"workers-{workers}"
    flags = ["--model", args.model, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
             "--patience", "0", "--no-tensorboard", "--verbose", "0", "--out", str(out)]  # fmt: skip
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    logs, procs = [], []
    started = time.perf_counter()
    for index in range(workers):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, "-m", "cnnport.apps", "train", *flags]
        if workers > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                           "task": {"type": "worker", "index": index}})  # fmt: skip
            command += ["--distribute", "multiworker"]
        logs.append(root / f"workers-{workers}-{index}.log")
        with open(logs[-1], "w") as log:
            procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"{workers} worker(s) failed ({codes}); see {logs}")
    rates = [float(m.group(3)) for m in EPOCH_LINE.finditer(logs[0].read_text()) if int(m.group(1)) > 1]
    metrics = json.loads((out / "metrics.json").read_text())
    return {"workers": workers, "images_per_s": statistics.median(rates), "per_epoch": rates,
            "wall_s": wall, "test_accuracy": metrics["test_accuracy"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="lenet5")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the runs")
    with tempfile.TemporaryDirectory(prefix="cnnport-mw-bench-") as root:
        for workers in (int(w) for w in args.workers.split(",")):
            r = run(workers, args, Path(root))
            print(f"{r['workers']} worker(s): {r['images_per_s']:.0f} images/s (median of epochs 2-{args.epochs}: "
                  f"{', '.join(f'{x:.0f}' for x in r['per_epoch'])}), whole run {r['wall_s']:.1f} s, "
                  f"test accuracy {r['test_accuracy']:.4f}", flush=True)  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} after the runs")


if __name__ == "__main__":
    main()
